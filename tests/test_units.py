"""Pure units: ring buffer, clip/feature spacing at several strides, debouncer, config validation."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.config import Config, ConfigError, from_dict, load_config, parse_override  # noqa: E402
from realtime.debounce import Debouncer  # noqa: E402
from realtime.engine import (  # noqa: E402
    InferenceEngine,
    due_clip_ends,
    first_clip_end,
    window_clip_ends,
    window_frames,
)
from realtime.ringbuffer import DropPolicy, FrameRing  # noqa: E402

LABELS = ["1_Finger_Click", "2_Fingers_Left", "2_Fingers_Right", "Shake_Hand", "no_gesture"]


def _crop(i: int, size: int = 4) -> np.ndarray:
    return np.full((size, size, 3), i % 256, np.uint8)


# ---------------------------------------------------------------------------------------------
# ring buffer
# ---------------------------------------------------------------------------------------------
class TestFrameRing:
    def test_preallocated_and_wraps_around(self):
        r = FrameRing(8, size=4)
        buf = r.frames
        for i in range(20):
            assert r.put(i, _crop(i), t=i * 0.1)
        assert r.frames is buf and r.frames.shape == (8, 4, 4, 3)  # never grows
        assert r.newest == 19 and r.written == 20
        frames, times = r.read(12, 8)
        assert [int(f[0, 0, 0]) for f in frames] == list(range(12, 20))
        np.testing.assert_allclose(times, np.arange(12, 20) * 0.1)

    def test_read_returns_none_for_overwritten_or_unwritten_frames(self):
        r = FrameRing(8, size=4)
        for i in range(12):
            r.put(i, _crop(i), t=float(i))
        assert r.read(3, 2) is None           # frame 3 overwritten by 11
        assert r.read(4, 8) is not None       # 4..11 all held
        assert r.read(10, 4) is None          # 12, 13 not written yet
        assert r.read(0, 9) is None           # more than capacity
        assert r.read(-1, 2) is None

    def test_read_into_preallocated_out(self):
        r = FrameRing(8, size=4)
        for i in range(8):
            r.put(i, _crop(i), t=float(i))
        out = np.zeros((3, 4, 4, 3), np.uint8)
        frames, _ = r.read(2, 3, out=out)
        assert frames is out and [int(f[0, 0, 0]) for f in out] == [2, 3, 4]

    def test_drop_oldest_counts_only_needed_frames(self):
        r = FrameRing(4, size=4, policy=DropPolicy.DROP_OLDEST)
        for i in range(4):
            r.put(i, _crop(i), t=0.0)
        r.release(2)                          # frames 0, 1 no longer needed
        r.put(4, _crop(4), t=0.0)             # overwrites 0: not needed -> no drop
        r.put(5, _crop(5), t=0.0)             # overwrites 1: not needed -> no drop
        assert r.dropped == 0
        r.put(6, _crop(6), t=0.0)             # overwrites 2: still needed -> a drop
        r.put(7, _crop(7), t=0.0)             # overwrites 3 -> a drop
        assert r.dropped == 2
        assert r.read(2, 1) is None

    def test_drop_oldest_never_blocks(self):
        r = FrameRing(4, size=4, policy=DropPolicy.DROP_OLDEST)
        t0 = time.monotonic()
        for i in range(50):
            assert r.put(i, _crop(i), t=0.0, timeout=5.0)
        assert time.monotonic() - t0 < 1.0
        assert r.dropped == 46

    @pytest.mark.timeout(10)
    def test_wait_blocks_until_release_with_timeout(self):
        r = FrameRing(4, size=4, policy=DropPolicy.WAIT)
        for i in range(4):
            assert r.put(i, _crop(i), t=0.0)
        t0 = time.monotonic()
        assert r.put(4, _crop(4), t=0.0, timeout=0.2) is False  # slot 0 still needed: times out
        assert 0.15 <= time.monotonic() - t0 < 2.0
        assert r.dropped == 0

        done = threading.Event()

        def producer():
            if r.put(4, _crop(4), t=0.0, timeout=5.0):
                done.set()

        th = threading.Thread(target=producer)
        th.start()
        time.sleep(0.1)
        assert not done.is_set()                 # still waiting
        r.release(1)                             # frame 0 done with
        th.join(5)
        assert done.is_set() and r.read(4, 1) is not None
        assert r.dropped == 0

    @pytest.mark.timeout(10)
    def test_close_wakes_waiters(self):
        r = FrameRing(2, size=4, policy=DropPolicy.WAIT)
        r.put(0, _crop(0), 0.0)
        r.put(1, _crop(1), 0.0)
        result = []
        th = threading.Thread(target=lambda: result.append(r.reserve(2, timeout=30)))
        th.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        r.close()
        th.join(5)
        assert result == [None] and time.monotonic() - t0 < 1.0
        assert r.wait_newer(5, timeout=30) == 1  # returns at once when closed

    @pytest.mark.timeout(10)
    def test_wait_newer(self):
        r = FrameRing(8, size=4)
        assert r.wait_newer(-1, timeout=0.05) == -1
        threading.Timer(0.05, lambda: r.put(0, _crop(0), 0.0)).start()
        assert r.wait_newer(-1, timeout=5) == 0

    def test_latest(self):
        r = FrameRing(8, size=4)
        frames, ids, times = r.latest(3)
        assert len(frames) == 0 and len(ids) == 0
        for i in range(11):
            r.put(i, _crop(i), t=float(i))
        frames, ids, times = r.latest(3)
        assert list(ids) == [8, 9, 10] and [int(f[0, 0, 0]) for f in frames] == [8, 9, 10]
        assert list(times) == [8.0, 9.0, 10.0]
        frames[0, 0, 0, 0] = 99
        assert r.frames[8 % 8, 0, 0, 0] == 8     # a copy
        _, ids, _ = r.latest(100)                # at most what is held
        assert list(ids) == list(range(3, 11))

    def test_bad_capacity(self):
        with pytest.raises(ValueError):
            FrameRing(0)


# ---------------------------------------------------------------------------------------------
# clip and window spacing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [16, 8, 4, 1])
def test_due_clip_ends(stride):
    assert first_clip_end(16) == 15
    assert due_clip_ends(15, 14, stride) == []
    assert due_clip_ends(15, 15, stride) == [15]
    ends = due_clip_ends(15, 63, stride)
    assert ends == list(range(15, 64, stride))
    assert all(b - a == stride for a, b in zip(ends, ends[1:]))


def test_due_clip_ends_incremental_equals_batch():
    """Asking in small steps gives the same ends as asking once (no clip is skipped or repeated)."""
    for stride in (16, 8, 4, 1):
        got, next_end = [], 15
        for newest in range(0, 300, 7):
            ends = due_clip_ends(next_end, newest, stride)
            if ends:
                got += ends
                next_end = ends[-1] + stride
        assert got == list(range(15, 295, stride))


@pytest.mark.parametrize("end", [127, 128, 131, 200])
def test_window_clip_ends(end):
    w = window_clip_ends(end, window=8, spacing=16)
    assert w == [end - 112 + 16 * k for k in range(8)]
    assert window_frames(end) == (end - 127, end)   # the last 128 frames


def test_window_clip_ends_at_every_stride_lands_on_computed_clips():
    for stride in (16, 8, 4, 1):
        computed = set(range(15, 400, stride))
        for end in range(127, 400, stride):
            assert set(window_clip_ends(end)) <= computed


# A real engine on a tiny model, fed a frame sequence as the worker would. Size 32 keeps it quick;
# the spacing logic does not depend on the crop size.
@pytest.fixture(scope="module")
def spacing_model():
    cfg = helpers.tiny_config(**{"pipeline.size": 32})
    return cfg, helpers.tiny_loaded(cfg, width=helpers.TINY_WIDTH, seed=1)


@pytest.mark.parametrize("stride,mirrored", [(16, False), (8, False), (4, False), (1, False), (4, True), (1, True)])
def test_engine_window_spacing(spacing_model, stride, mirrored):
    """Each decision's head window holds the features of the clips t-112 .. t, 16 apart; with
    ``pipeline.mirror_average`` also those of the same clips mirrored, and the probabilities are the two
    views' combination (the mirrored view's left and right swapped back)."""
    from realtime.mirror import combine, mirror_clips, swap_index

    cfg0, model = spacing_model
    cfg = cfg0.replace(**{"pipeline.stride": stride, "debounce.cooldown_s": 0.0,
                          "pipeline.mirror_average": "on" if mirrored else "off"})
    n = 128 + 16 + 3   # 147: frames arrive 3 at a time below and the last one (146) does arrive
    rng = np.random.default_rng(stride)
    crops = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    eng = InferenceEngine(model, cfg, fps=30.0)

    # Reference features of every clip, by end frame, from the backbone directly.
    from realtime.modelio import predict_fn
    from realtime.preprocess import to_model_input

    bb = predict_fn(model.backbone)
    all_ends = list(range(15, n, stride))
    clips = np.stack([crops[e - 15 : e + 1] for e in all_ends])
    ref = dict(zip(all_ends, bb(to_model_input(clips, cfg.preprocess))))
    ref_m = dict(zip(all_ends, bb(to_model_input(np.ascontiguousarray(mirror_clips(clips)), cfg.preprocess))))

    seen_windows = []
    real_head = eng._head

    def spy(win):
        seen_windows.append(np.array(win, copy=True))
        return real_head(win)

    eng._head = spy

    preds, computed, next_end = [], [], first_clip_end(16)
    for newest in range(2, n, 3):    # frames arrive 3 at a time (as when the worker is a little behind)
        ends = due_clip_ends(next_end, newest, stride)
        assert len(ends) <= cfg.pipeline.max_batch
        if not ends:
            continue
        computed += ends
        next_end = ends[-1] + stride
        eng.add_clips(ends, np.stack([crops[e - 15 : e + 1] for e in ends]))
        preds += eng.decide(ends, [float(e) for e in ends])

    assert computed == all_ends                     # a clip every `stride` frames
    decided = [p.frame_id for p in preds]
    assert decided == list(range(127, n, stride))   # first decision once 128 frames exist
    assert all(b - a == stride for a, b in zip(decided, decided[1:]))
    views = [ref, ref_m] if mirrored else [ref]
    plain, mirror_wins = [], []
    for batch in seen_windows:   # one head call per decide(): the plain windows, then the mirrored ones
        n = len(batch) // len(views)
        assert len(batch) == n * len(views)
        plain.append(batch[:n])
        mirror_wins.append(batch[n:])
    assert sum(map(len, plain)) == len(decided)
    for feats, wins in list(zip((ref, ref_m), (np.concatenate(plain), np.concatenate(mirror_wins))))[: len(views)]:
        for t, win in zip(decided, wins):
            want = np.stack([feats[e] for e in range(t - 112, t + 1, 16)])   # t-112 .. t, spaced 16
            np.testing.assert_allclose(win, want, rtol=1e-4, atol=1e-5)
    if mirrored:
        hp, hm = real_head(np.concatenate(plain)), real_head(np.concatenate(mirror_wins))
        want = combine(np.asarray(hp), np.asarray(hm), swap_index(model.labels))
        np.testing.assert_allclose(np.stack([p.probs for p in preds]), want, rtol=1e-4, atol=1e-6)
    # Old features are dropped: the bank stays bounded.
    assert max(eng.features) == all_ends[-1] and min(eng.features) >= all_ends[-1] - 128
    for p in preds:
        assert p.probs.shape == (5,) and abs(p.probs.sum() - 1) < 1e-4



def test_mirror_averaging_sees_a_mirrored_camera_as_the_same_gestures_swapped(spacing_model):
    """With ``pipeline.mirror_average`` on, the engine's answer for a mirrored video is its answer for the
    video itself with left and right swapped: a left-handed user gets the same decisions. Off, a
    (random) model gives no such symmetry, so the check has teeth."""
    from realtime.engine import InferenceEngine
    from realtime.mirror import mirror_clips, swap_index

    cfg0, model = spacing_model
    crops = np.random.default_rng(5).integers(0, 256, (128 + 16 * 4, 32, 32, 3), dtype=np.uint8)
    swap = swap_index(model.labels)
    assert sorted(swap) == list(range(5)) and list(swap) != list(range(5))

    def run(frames, setting):
        eng = InferenceEngine(model, cfg0.replace(**{"pipeline.stride": 16, "pipeline.mirror_average": setting}))
        out, all_ends = [], list(range(15, len(frames), 16))
        for i in range(0, len(all_ends), 2):  # two clips at a time, as the worker hands them over
            ends = all_ends[i : i + 2]
            eng.add_clips(ends, np.stack([frames[e - 15 : e + 1] for e in ends]))
            out += [p.probs for p in eng.decide(ends, [0.0] * len(ends))]
        return np.stack(out)

    flipped = np.ascontiguousarray(mirror_clips(crops))
    on, on_flipped = run(crops, "on"), run(flipped, "on")
    assert len(on) == 5
    np.testing.assert_allclose(on_flipped[:, swap], on, rtol=1e-4, atol=1e-6)
    off, off_flipped = run(crops, "off"), run(flipped, "off")
    assert np.abs(off_flipped[:, swap] - off).max() > 1e-3
    assert run(crops, "auto").tolist() == on.tolist()  # auto: on for a small backbone


def test_mirror_setting_reads_yaml_booleans_and_refuses_others(tmp_path):
    from realtime.config import ConfigError, load_config

    p = tmp_path / "c.yaml"
    for text, want in (("off", "off"), ("on", "on"), ("auto", "auto"), ("false", "off")):
        p.write_text(f"pipeline:\n  mirror_average: {text}\n")
        assert load_config(p).pipeline.mirror_average == want
    p.write_text("pipeline:\n  mirror_average: sometimes\n")
    with pytest.raises(ConfigError, match="mirror_average"):
        load_config(p)

# ---------------------------------------------------------------------------------------------
# debouncer
# ---------------------------------------------------------------------------------------------
def _p(label: str | None = None, value: float = 0.0) -> np.ndarray:
    """Probabilities with ``value`` on ``label`` and the rest on no_gesture."""
    p = np.zeros(5)
    if label is not None:
        p[LABELS.index(label)] = value
    p[-1] = 1.0 - p.sum()
    return p


class TestDebouncer:
    def test_docstring_example(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=1.0, smoothing=1)
        L = "2_Fingers_Left"
        assert d.update(_p(L, 0.2), 0.0).label is None
        ev = d.update(_p(L, 0.9), 0.5)
        assert ev.label == L and ev.confidence == pytest.approx(0.9)
        assert d.update(_p(L, 0.8), 1.0).label is None
        assert d.update(_p(L, 0.3), 2.0).label is None
        assert d.update(_p(L, 0.9), 2.5).label == L

    def test_hysteresis_no_refire_until_below_rearm(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.0, smoothing=1)
        L = "Shake_Hand"
        seq = [0.9, 0.5, 0.7, 0.45, 0.95, 0.41, 0.39, 0.8]   # dips to 0.5/0.45/0.41 do not re-arm
        fired = [d.update(_p(L, v), i).label for i, v in enumerate(seq)]
        assert fired == [L, None, None, None, None, None, None, L]

    def test_exactly_at_rearm_does_not_rearm(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.0, smoothing=1)
        L = "Shake_Hand"
        assert d.update(_p(L, 0.9), 0).label == L
        assert d.update(_p(L, 0.4), 1).label is None
        assert d.update(_p(L, 0.9), 2).label is None

    def test_cooldown_blocks_all_gestures(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=1.0, smoothing=1)
        assert d.update(_p("2_Fingers_Left", 0.9), 10.0).label == "2_Fingers_Left"
        assert d.update(_p("2_Fingers_Right", 0.9), 10.5).label is None   # other gesture, in cooldown
        assert d.update(_p("2_Fingers_Right", 0.9), 10.99).label is None
        assert d.update(_p("2_Fingers_Right", 0.9), 11.0).label == "2_Fingers_Right"

    def test_one_event_per_sustained_gesture(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.5, smoothing=2)
        probs = [_p()] * 5 + [_p("1_Finger_Click", 0.95)] * 40 + [_p()] * 10
        events = [d.update(p, i / 30 * 16) for i, p in enumerate(probs)]
        assert [e.label for e in events if e.label] == ["1_Finger_Click"]

    def test_two_gestures_two_events(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.5, smoothing=2)
        probs = ([_p()] * 3 + [_p("2_Fingers_Left", 0.9)] * 6 + [_p()] * 4
                 + [_p("2_Fingers_Left", 0.9)] * 6 + [_p()] * 3)
        events = [d.update(p, i * 0.5).label for i, p in enumerate(probs)]
        assert [e for e in events if e] == ["2_Fingers_Left", "2_Fingers_Left"]

    def test_return_stroke_of_a_swipe_is_swallowed(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.5, smoothing=1, opposite_s=1.5)
        L, R = "2_Fingers_Left", "2_Fingers_Right"
        assert d.update(_p(L, 0.9), 10.0).label == L
        assert d.update(_p(), 10.3).label is None
        r = d.update(_p(R, 0.95), 11.0)                   # the hand going back, 1 s later: no event
        assert r.label is None and r.confidence == pytest.approx(0.95)
        assert d.update(_p(R, 0.95), 11.6).label is None  # still the same stroke: disarmed, not re-fired
        assert d.update(_p(), 12.0).label is None
        assert d.update(_p(R, 0.9), 12.6).label == R     # a real swipe back, 2.6 s after the first
        assert d.update(_p(), 13.0).label is None
        assert d.update(_p("Shake_Hand", 0.9), 13.5).label == "Shake_Hand"  # other gestures are not affected
        assert d.update(_p(), 14.0).label is None
        assert d.update(_p(R, 0.9), 14.2).label == R     # the same direction again is not a return stroke

    def test_return_stroke_rule_off_and_custom_pairs(self):
        for d in (Debouncer(LABELS, cooldown_s=0.0, smoothing=1),  # off by default in the class
                  Debouncer(LABELS, cooldown_s=0.0, smoothing=1, opposite_s=5.0, opposites={})):
            assert d.update(_p("2_Fingers_Left", 0.9), 0.0).label == "2_Fingers_Left"
            assert d.update(_p("2_Fingers_Right", 0.9), 0.5).label == "2_Fingers_Right"
        with pytest.raises(ValueError):
            Debouncer(LABELS, opposite_s=-1)

    def test_smoothing_averages_last_k(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.0, smoothing=3)
        L = "1_Finger_Click"
        r1 = d.update(_p(L, 0.9), 0)        # mean 0.9 -> fires (history of one)
        assert r1.label == L
        d.reset()
        r = [d.update(_p(L, v), i) for i, v in enumerate([0.0, 0.0, 0.9])]
        assert r[-1].label is None and r[-1].smoothed[0] == pytest.approx(0.3)
        r = d.update(_p(L, 0.95), 3)        # mean(0, .9, .95) = 0.617 -> fires
        assert r.label == L and r.confidence == pytest.approx(1.85 / 3)
        np.testing.assert_allclose(r.smoothed.sum(), 1.0)

    def test_smoothing_suppresses_a_single_spike(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.0, smoothing=2)
        vals = [0.0, 0.9, 0.0, 0.0, 0.9, 0.0]
        assert all(d.update(_p("Shake_Hand", v), i).label is None for i, v in enumerate(vals))

    def test_background_never_fires(self):
        d = Debouncer(LABELS, threshold=0.6, rearm=0.4, cooldown_s=0.0, smoothing=1)
        for i in range(5):
            r = d.update(_p(), i)
            assert r.label is None and r.confidence == pytest.approx(1.0)

    def test_bad_arguments(self):
        with pytest.raises(ValueError):
            Debouncer(LABELS, threshold=0.4, rearm=0.4)
        with pytest.raises(ValueError):
            Debouncer(LABELS, smoothing=0)
        d = Debouncer(LABELS)
        with pytest.raises(ValueError):
            d.update(np.ones(3) / 3, 0.0)

    def test_from_config(self):
        cfg = Config().replace(**{"debounce.threshold": 0.7, "debounce.rearm": 0.2,
                                  "debounce.cooldown_s": 2.0, "debounce.smoothing": 3})
        d = Debouncer.from_config(LABELS, cfg.debounce)
        assert (d.threshold, d.rearm, d.cooldown_s, d._hist.maxlen) == (0.7, 0.2, 2.0, 3)


# ---------------------------------------------------------------------------------------------
# config validation
# ---------------------------------------------------------------------------------------------
class TestConfig:
    def test_repo_config_loads_and_matches_defaults(self):
        cfg = load_config()
        assert cfg.pipeline.stride == 4 and cfg.pipeline.span == 128
        assert cfg.pipeline == Config().pipeline and cfg.debounce == Config().debounce  # config.yaml states the defaults
        assert cfg.preprocess.resize == (171, 128) and cfg.preprocess.crop == (8, 29)
        assert cfg.preprocess.mean_bgr == (90.25, 97.66, 101.41)
        assert "no_gesture" in cfg.labels

    @pytest.mark.parametrize("raw, key", [
        ({"bogus": 1}, "bogus"),
        ({"pipeline": {"strid": 4}}, "pipeline.strid"),
        ({"debounce": {"treshold": 0.5}}, "debounce.treshold"),
    ])
    def test_unknown_key_is_named(self, raw, key):
        with pytest.raises(ConfigError, match=rf"unknown key '{key}'") as ei:
            from_dict(raw, source="my.yaml")
        assert "my.yaml" in str(ei.value) and "allowed" in str(ei.value)

    @pytest.mark.parametrize("raw, key", [
        ({"pipeline": {"stride": "4"}}, "pipeline.stride"),
        ({"pipeline": {"clip_len": 16.0}}, "pipeline.clip_len"),
        ({"pipeline": {"clip_len": True}}, "pipeline.clip_len"),
        ({"debounce": {"threshold": "high"}}, "debounce.threshold"),
        ({"capture": {"realtime": "yes"}}, "capture.realtime"),
        ({"labels": "no_gesture"}, "labels"),
        ({"preprocess": {"resize": [171]}}, "preprocess.resize"),
        ({"pipeline": 3}, "pipeline"),
        ({"keys": {"map": ["left"]}}, "keys.map"),
    ])
    def test_wrong_types(self, raw, key):
        with pytest.raises(ConfigError, match=rf"'{key}"):
            from_dict(raw)

    @pytest.mark.parametrize("raw, key", [
        ({"pipeline": {"stride": 3}}, "pipeline.stride"),
        ({"pipeline": {"precision": "fp16"}}, "pipeline.precision"),
        ({"debounce": {"threshold": 0.0}}, "debounce.threshold"),
        ({"debounce": {"threshold": 1.5}}, "debounce.threshold"),
        ({"debounce": {"smoothing": 0}}, "debounce.smoothing"),
        ({"debounce": {"cooldown_s": -1}}, "debounce.cooldown_s"),
        ({"capture": {"buffer_frames": 100}}, "capture.buffer_frames"),
        ({"pipeline": {"max_batch": 0}}, "pipeline.max_batch"),
    ])
    def test_out_of_range(self, raw, key):
        with pytest.raises(ConfigError, match=rf"'{key}'"):
            from_dict(raw)

    def test_stride_choices_listed(self):
        with pytest.raises(ConfigError, match=r"one of \[1, 2, 4, 8, 16\]"):
            from_dict({"pipeline": {"stride": 5}})

    def test_rearm_must_be_below_threshold(self):
        with pytest.raises(ConfigError, match="debounce.rearm"):
            from_dict({"debounce": {"threshold": 0.5, "rearm": 0.5}})
        with pytest.raises(ConfigError, match="debounce.rearm"):
            from_dict({"debounce": {"threshold": 0.5, "rearm": 0.7}})
        assert from_dict({"debounce": {"threshold": 0.5, "rearm": 0.49}}).debounce.rearm == 0.49

    def test_stride_must_divide_spacing(self):
        with pytest.raises(ConfigError, match=r"'pipeline.stride' \(8\) must divide 'pipeline.feature_spacing' \(12\)"):
            from_dict({"pipeline": {"stride": 8, "feature_spacing": 12}})
        assert from_dict({"pipeline": {"stride": 4, "feature_spacing": 12}}).pipeline.stride == 4

    def test_buffer_must_hold_window_and_a_clip(self):
        with pytest.raises(ConfigError, match="capture.buffer_frames"):
            from_dict({"pipeline": {"window": 10}, "capture": {"buffer_frames": 150}})

    def test_keys_map_label_unknown(self):
        with pytest.raises(ConfigError, match=r"'keys.map.Wave'"):
            from_dict({"keys": {"map": {"Wave": "left"}}})
        cfg = from_dict({"keys": {"map": {"Shake_Hand": "ctrl+z"}}})
        assert cfg.keys.map == {"Shake_Hand": "ctrl+z"}

    def test_labels_need_background(self):
        with pytest.raises(ConfigError, match="no_gesture"):
            from_dict({"labels": ["a", "b"]})
        with pytest.raises(ConfigError, match="duplicates"):
            from_dict({"labels": ["a", "a", "no_gesture"]})

    def test_crop_must_fit_resize(self):
        with pytest.raises(ConfigError, match="preprocess.crop"):
            from_dict({"preprocess": {"crop": [20, 29]}})

    def test_replace(self):
        cfg = Config()
        c2 = cfg.replace(**{"pipeline.stride": 16, "debounce.threshold": 0.7})
        assert c2.pipeline.stride == 16 and c2.debounce.threshold == 0.7
        assert cfg.pipeline.stride == 4                            # the original is untouched (frozen)
        with pytest.raises(Exception):
            cfg.pipeline.stride = 4                                # frozen dataclass
        with pytest.raises(ConfigError, match="unknown key 'pipeline.nope'"):
            cfg.replace(**{"pipeline.nope": 1})
        with pytest.raises(ConfigError, match="unknown key 'nope.stride'"):
            cfg.replace(**{"nope.stride": 1})
        with pytest.raises(ConfigError, match="pipeline.stride"):
            cfg.replace(**{"pipeline.stride": 3})                   # re-validated
        with pytest.raises(ConfigError, match="debounce.rearm"):
            cfg.replace(**{"debounce.threshold": 0.3})             # cross-check re-run (rearm 0.4)
        assert cfg.replace(**{"capture.realtime": True}).capture.realtime is True
        assert cfg.replace(**{"recorder.seconds": 3}).recorder.seconds == 3.0

    def test_parse_override(self):
        assert parse_override("pipeline.stride=4") == ("pipeline.stride", 4)
        assert parse_override("debounce.threshold=0.05") == ("debounce.threshold", 0.05)
        assert parse_override("model.path=null") == ("model.path", None)
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            parse_override("pipeline.stride")

    def test_load_config_errors_name_the_file(self, tmp_path):
        with pytest.raises(ConfigError, match="not found"):
            load_config(tmp_path / "missing.yaml")
        bad = tmp_path / "bad.yaml"
        bad.write_text("pipeline: {stride: [\n")
        with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
            load_config(bad)
        unk = tmp_path / "unk.yaml"
        unk.write_text("pipeline:\n  stride: 4\n  colour: red\n")
        with pytest.raises(ConfigError, match=r"unk.yaml: unknown key 'pipeline.colour'"):
            load_config(unk)


@pytest.mark.parametrize("argv, flag", [
    (["train", "--meta", "m.csv", "--out", "o", "--epochs", "-2"], "--epochs"),
    (["train", "--meta", "m.csv", "--out", "o", "--val-split", "1"], "--val-split"),
    (["train", "--meta", "m.csv", "--out", "o", "--batch", "0"], "--batch"),
    (["train", "--meta", "m.csv", "--out", "o", "--minutes", "nan"], "--minutes"),
    (["train", "--meta", "m.csv", "--out", "o", "--label-delay", "17"], "--label-delay"),
    (["train", "--meta", "m.csv", "--out", "o", "--label-delay", "-1"], "--label-delay"),
    (["synth", "clips", "--out", "d", "--per-class", "-1"], "--per-class"),
    (["synth", "stream", "--out", "s.mp4", "--minutes", "-1"], "--minutes"),
    (["synth", "stream", "--out", "s.mp4", "--minutes", "1", "--seed", "-3"], "--seed"),
    (["live", "--seconds", "0"], "--seconds"),
    (["record", "--label", "Shake_Hand", "--count", "zero"], "--count"),
    (["bench", "--stride", "0"], "--stride"),
])
def test_bad_numbers_are_refused_by_name_before_any_work(argv, flag, tmp_path, capsys, monkeypatch):
    """A count, size or duration out of range is argparse's usage error naming the flag, and nothing is written
    (a negative --per-class once ended as numpy's OverflowError, a negative --minutes wrote a 1-frame stream)."""
    from realtime.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}" in last and "expected" in last
    assert list(tmp_path.iterdir()) == []


def test_good_numbers_still_parse():
    from realtime.cli import build_parser

    a = build_parser().parse_args(["train", "--meta", "m.csv", "--out", "o", "--epochs", "3", "--val-split", "0",
                                   "--minutes", "0.05", "--width", "0.03", "--seed", "0", "--label-delay", "16"])
    assert (a.epochs, a.val_split, a.minutes, a.width, a.seed, a.label_delay) == (3, 0.0, 0.05, 0.03, 0, 16)


@pytest.mark.parametrize("extra, needle", [(["--stream", "nope.mp4"], "nope.mp4: --stream video not found"),
                                           (["--stream", "s.mp4", "--annotations", "no.csv"], "no.csv: annotations"),
                                           (["--meta", "no_meta.csv"], "no_meta.csv"),
                                           (["--meta", "no_meta.csv", "--plot", "t.png"], "give --stream S.mp4"),
                                           (["--stream", "s.mp4", "--plot", "t.jpg"], "t.jpg: --plot writes a PNG"),
                                           (["--stream", "s.mp4", "--plot", "s.mp4/t.png"],
                                            "s.mp4/t.png: --plot cannot make its folder")])
def test_eval_checks_its_inputs_before_the_model(extra, needle, tmp_path, capsys, monkeypatch):
    """`gesture eval` names a missing --stream, --annotations or --meta before it loads a model (here there is
    none: the model folder's error would come first otherwise) or plays minutes of clips."""
    from realtime.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.mp4").write_bytes(b"")
    assert main(["eval", "--model", str(tmp_path / "no_model"), *extra]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert needle in last and "model" not in last.replace("--model", "")


def test_train_checks_streams_before_reading_clips(tmp_path, capsys, monkeypatch):
    """A missing --stream (or its CSV) is named before any clip is read: the meta here does not even exist,
    and the stream's error must still be the one reported."""
    from realtime.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--meta", "no_meta.csv", "--out", "m", "--stream", "s.mp4"]) == 2
    assert "s.mp4: --stream video not found" in capsys.readouterr().err.strip().splitlines()[-1]
    (tmp_path / "s.mp4").write_bytes(b"")
    assert main(["train", "--meta", "no_meta.csv", "--out", "m", "--stream", "s.mp4"]) == 2
    assert "s.csv: annotations for --stream s.mp4 not found" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "m").exists()
