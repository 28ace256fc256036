"""Sources at other frame rates: the pure adapter, real optical flow, and the threaded pipeline on real files."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.dataset import Item, load_crops  # noqa: E402
from realtime.errors import GestureError  # noqa: E402
from realtime.framerate import FrameRateAdapter, interpolate, to_rate, video_fps  # noqa: E402
from realtime.modelio import check_against_config, read_spec  # noqa: E402
from realtime.pipeline import Pipeline  # noqa: E402
from realtime.ringbuffer import DropPolicy  # noqa: E402
from realtime.sources import FrameSource, VideoFileSource  # noqa: E402


def _frames(n, seed=0):
    return [np.full((8, 8, 3), (i * 7 + seed) % 256, np.uint8) for i in range(n)]


def _push_all(ad, frames, fps):
    return [(i, f) for i, x in enumerate(frames) for f in ad.push(x, i / fps)]


@pytest.mark.parametrize("fps", [30.0, 29.97, 31.0, 24.0, 25.0, 36.0])
def test_a_source_at_the_model_rate_passes_through_unchanged(fps):
    src = _frames(90)
    ad = FrameRateAdapter(30, "flow")
    out = _push_all(ad, src, fps)
    assert [i for i, _ in out] == list(range(90)) and not ad.resampling
    assert all(np.array_equal(f, src[i]) for i, f in out)


def test_15_fps_gets_one_in_between_frame_per_pair():
    src = _frames(40)
    ad = FrameRateAdapter(30, "linear")
    out = _push_all(ad, src, 15.0)
    assert len(out) == 2 * 40 - 1 and ad.interpolated == 39 and ad.resampling
    for k in range(1, 40):
        (_, mid), (i, same) = out[2 * k - 1], out[2 * k]
        assert i == k and np.array_equal(same, src[k])  # model frame 2k is source frame k itself
        want = (src[k - 1].astype(int) + src[k]) / 2
        assert np.abs(mid - want).max() <= 1  # and 2k-1 lies half way


def test_60_fps_keeps_every_other_frame_without_inventing_any():
    src = _frames(120)
    ad = FrameRateAdapter(30, "flow")
    out = _push_all(ad, src, 60.0)
    assert ad.interpolated == 0
    assert [i for i, _ in out] == [0] + list(range(2, 120, 2))
    assert all(np.array_equal(f, src[i]) for i, f in out)


@pytest.mark.parametrize("fps", [20.0, 12.0, 45.0])
def test_other_rates_keep_the_clock_over_a_minute(fps):
    n = int(fps * 60)
    out = _push_all(FrameRateAdapter(30, "nearest"), _frames(n), fps)
    # model frames span the same minute: 30 per second
    assert abs(len(out) - (n - 1) * 30 / fps - 1) <= 1


def test_a_stalled_camera_is_not_filled_with_invented_frames():
    ad = FrameRateAdapter(30, "linear", max_gap_s=0.5)
    out = [f for i in range(10) for f in ad.push(_frames(1, i)[0], i / 15)]
    n = len(out)
    assert len(ad.push(_frames(1, 99)[0], 9 / 15 + 3.0)) == 1  # 3 s later: one frame, the clock restarts
    assert len(ad.push(_frames(1, 98)[0], 9 / 15 + 3.0)) == 0  # the same timestamp again: nothing new
    assert len(ad.push(_frames(1, 97)[0], 9 / 15 + 3.0 + 1 / 15)) == 2
    assert n == 19


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mode"):
        FrameRateAdapter(30, "cubic")
    with pytest.raises(ValueError, match="fps"):
        FrameRateAdapter(0)


def _hand(shift: int, size: int = 112) -> np.ndarray:
    """A skin-coloured block with finger gaps over a smooth wall, its left edge at ``30 + shift`` pixels."""
    y, x = np.mgrid[0:size, 0:size]
    img = np.dstack([40 + x * 0.5, 60 + y * 0.4, 80 + 0 * x]).astype(np.float32)
    x0 = 30 + shift
    hand = (x >= x0) & (x < x0 + 30) & (y >= 35) & (y < 75)
    img[hand] = (60, 150, 220)
    img[hand & ((x - x0) % 10 < 3)] = (40, 110, 180)
    return cv2.GaussianBlur(img, (3, 3), 0).clip(0, 255).astype(np.uint8)


def test_flow_puts_a_moving_hand_half_way_where_a_cross_fade_shows_two():
    a, b, truth = _hand(0), _hand(8), _hand(4)
    err = {m: float(np.abs(interpolate(a, b, 0.5, m).astype(int) - truth).mean()) for m in ("flow", "linear", "nearest")}
    assert err["flow"] < 0.3 * err["linear"] and err["linear"] < err["nearest"], err


@pytest.fixture(scope="module")
def small():
    cfg = helpers.tiny_config(**{"pipeline.size": 32, "debounce.threshold": 0.05, "debounce.rearm": 0.01,
                                 "debounce.cooldown_s": 0.0})
    return cfg, helpers.tiny_loaded(cfg, seed=2)


class Keep:
    def __init__(self):
        self.preds = []

    def on_prediction(self, p):
        self.preds.append(p)


@pytest.mark.timeout(60)
def test_a_15_fps_file_runs_on_the_model_clock_and_reports_its_own_frames(small, tmp_path):
    cfg, model = small
    path, _ = helpers.write_video(tmp_path / "slow.mp4", n=150, width=64, height=48, fps=15.0)
    src = VideoFileSource(path).open()
    keep = Keep()
    p = Pipeline(src, model, cfg, sinks=[keep], warmup=False)
    p.run()
    assert p.frame_rate == 30.0 and p.stats.frames == 150
    assert p.ring.written == 2 * 150 - 1  # the ring holds the model's 30 fps
    ends = list(range(127, 2 * 150 - 1, cfg.pipeline.stride))
    # model frame 2k is source frame k, 2k-1 lies between k-1 and k and is reported as k
    assert [q.frame_id for q in keep.preds] == [math.ceil(e / 2) for e in ends]
    assert p.events and all(ev.media_time == pytest.approx(ev.frame_id / 15.0, abs=1 / 30 + 1e-9)
                            for ev in p.events)
    # off: the old behaviour, the file's own frames at the file's rate
    keep2 = Keep()
    p2 = Pipeline(VideoFileSource(path).open(), model, cfg.replace(**{"capture.resample": "off"}), sinks=[keep2],
                  warmup=False)
    p2.run()
    assert p2.frame_rate == 15.0 and p2.ring.written == 150
    assert [q.frame_id for q in keep2.preds] == list(range(127, 150, cfg.pipeline.stride))


def test_training_clips_are_read_at_the_model_rate(tmp_path):
    cfg = helpers.tiny_config(**{"pipeline.size": 32})
    slow, _ = helpers.write_video(tmp_path / "slow.mp4", n=30, width=64, height=48, fps=15.0)
    normal, _ = helpers.write_video(tmp_path / "normal.mp4", n=30, width=64, height=48, fps=30.0)
    assert video_fps(slow) == pytest.approx(15.0)
    assert len(load_crops(Item(slow, "Shake_Hand", "test"), cfg)) == 59
    assert len(load_crops(Item(normal, "Shake_Hand", "test"), cfg)) == 30
    off = cfg.replace(**{"capture.resample": "off"})
    assert len(load_crops(Item(slow, "Shake_Hand", "test"), off)) == 30
    x = np.zeros((5, 4, 4, 3), np.uint8)
    assert to_rate(x, 30.0, 30.0) is x


def test_a_model_trained_at_another_rate_is_refused_with_the_field_named(tmp_path):
    cfg = helpers.tiny_config()
    d = helpers.write_tiny_model(tmp_path / "m", cfg)[0]
    raw = json.loads((d / "model.json").read_text())
    assert raw["fps"] == 30.0  # written beside the weights
    raw["fps"] = 15.0
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=r"model field 'fps' = 15.0 disagrees with config 'pipeline.fps' = 30.0"):
        check_against_config(read_spec(d), cfg)
    raw["fps"] = "fast"
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=r"model.json: field 'fps' must be a number in 1..240, got 'fast'"):
        read_spec(d)
    del raw["fps"]  # a model folder from before the field: trained at 30 fps
    (d / "model.json").write_text(json.dumps(raw))
    assert read_spec(d).fps == 30.0


def test_resample_off_written_bare_in_yaml_means_off(tmp_path):
    from realtime.config import load_config
    from realtime.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("capture:\n  resample: off\n")
    assert load_config(p).capture.resample == "off"
    p.write_text("capture:\n  resample: cubic\n")
    with pytest.raises(ConfigError, match=r"'capture.resample' must be one of \['flow', 'linear', 'nearest', 'off'\]"):
        load_config(p)


def test_a_jittery_live_15_fps_clock_still_gives_30_fps():
    rng = np.random.default_rng(0)
    n = 300
    t = np.arange(n) / 15 + rng.uniform(-0.012, 0.012, n)  # capture stamps wobble by up to 12 ms
    ad = FrameRateAdapter(30, "linear")
    out = [f for i in range(n) for f in ad.push(_frames(1, i)[0], float(t[i]))]
    assert abs(len(out) - (t[-1] - t[0]) * 30) <= 2
    assert ad.source_fps() == pytest.approx(15, rel=0.05)


class PacedCamera(FrameSource):
    """A live camera paced at ``fps`` (real sleeps), ``n`` frames then the end."""

    name, live, fps, policy = "paced fake camera", True, 15.0, DropPolicy.DROP_OLDEST

    def __init__(self, n):
        self.frames, self.n, self.i, self.t0 = helpers.make_frames(40, width=64, height=48), n, 0, None

    def read(self):
        import time

        if self.i >= self.n:
            return None
        self.t0 = self.t0 or time.monotonic()
        time.sleep(max(0.0, self.t0 + self.i / self.fps - time.monotonic()))
        self.i += 1
        return self.frames[self.i % 40]

@pytest.mark.timeout(60)
def test_a_live_15_fps_camera_is_resampled_by_its_capture_times(small):
    cfg, model = small
    cam = PacedCamera(75)  # 5 s
    keep = Keep()
    p = Pipeline(cam, model, cfg.replace(**{"capture.buffer_frames": 400}), sinks=[keep], warmup=True)
    p.run()
    assert p.frame_rate == 30.0 and p.stats.frames == 75
    assert 2 * 75 - 8 <= p.ring.written <= 2 * 75  # ~30 fps into the ring, from real capture stamps
    assert keep.preds and all(0 <= q.frame_id < 75 for q in keep.preds)
    assert [q.frame_id for q in keep.preds] == sorted(q.frame_id for q in keep.preds)


@pytest.mark.timeout(60)
def test_eval_on_a_15_fps_stream_reports_both_rates_and_source_frames(small, tmp_path):
    from realtime.evaluate import eval_stream

    cfg, model = small
    path, _ = helpers.write_video(tmp_path / "s.mp4", n=150, width=64, height=48, fps=15.0)
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,60,80\n")
    res = eval_stream(model, cfg, path, None)
    assert res["source_fps"] == pytest.approx(15.0) and res["model_fps"] == 30.0 and res["frames"] == 150
    assert all(0 <= e["frame_id"] < 150 for e in res["events"])
    assert res["no_gesture_minutes"] == pytest.approx((150 - 21) / 15 / 60)


@pytest.mark.timeout(60)
def test_eval_plays_unannotated_footage_and_returns_its_events_without_scores(small, tmp_path, capsys):
    from realtime.errors import GestureError
    from realtime.evaluate import eval_stream

    cfg, model = small
    path, _ = helpers.write_video(tmp_path / "s.mp4", n=150, width=64, height=48)
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,60,80\n")
    scored = eval_stream(model, cfg, path, None)
    (tmp_path / "s.csv").unlink()                       # a user's own video: nothing to score against
    res = eval_stream(model, cfg, path, None)
    assert "s.csv not found" in capsys.readouterr().err
    assert res["events"] and res["events"] == scored["events"]   # the same engine, the same events
    assert res["levenshtein_accuracy"] is None and res["n_gestures"] is None and res["annotations"] is None
    assert res["events_per_min"] == pytest.approx(len(res["events"]) / (150 / 30 / 60))
    assert all(e["time_s"] == pytest.approx(e["frame_id"] / 30, abs=1e-3) for e in res["events"])
    with pytest.raises(GestureError, match="other.csv: annotations CSV not found"):
        eval_stream(model, cfg, path, tmp_path / "other.csv")   # asked for by name: missing is an error


@pytest.mark.timeout(60)
def test_eval_scores_annotations_only_inside_the_video(small, tmp_path, capsys):
    """An annotation past the video's end (a typo, or a recording stopped mid-gesture) once counted every
    frame up to it as gesture: hundreds of false activations a minute and delays of minus days."""
    from realtime.errors import GestureError
    from realtime.evaluate import eval_stream

    cfg, model = small
    path, _ = helpers.write_video(tmp_path / "s.mp4", n=150, width=64, height=48)
    ann = tmp_path / "a.csv"
    ann.write_text("label,start_frame,end_frame\nShake_Hand,60,80\n")
    inside = eval_stream(model, cfg, path, ann)
    ann.write_text("label,start_frame,end_frame\nShake_Hand,60,80\nShake_Hand,140,99999\n"
                   "2_Fingers_Left,150,170\n")
    res = eval_stream(model, cfg, path, ann)
    err = capsys.readouterr().err
    assert "a.csv: 2 of 3 gestures go past the video's last frame 149 (150 frames): 1 scored as ending there, " \
           "1 not scored" in err, err
    assert res["n_gestures"] == 2 and res["events"] == inside["events"]
    assert res["no_gesture_minutes"] == pytest.approx((150 - 21 - 10) / 30 / 60)   # 140-149 is gesture now
    ann.write_text("label,start_frame,end_frame\nShake_Hand,60,999\n")
    res = eval_stream(model, cfg, path, ann)
    assert "a.csv: Shake_Hand 60-999 goes past the video's last frame 149 (150 frames): scored as ending there" \
        in capsys.readouterr().err
    assert res["no_gesture_minutes"] == pytest.approx(60 / 30 / 60)
    ann.write_text("label,start_frame,end_frame\nShake_Hand,300,320\n")   # another video's (or rate's) frames
    with pytest.raises(GestureError, match=r"a\.csv: every gesture starts after the video's last frame 149"):
        eval_stream(model, cfg, path, ann)


def _vfr_video(tmp_path) -> Path:
    """A real variable-frame-rate file (as phones write them): 2 s at 30 fps, then 4 s at 15 fps."""
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("needs the ffmpeg command to write a variable-frame-rate video")
    out = tmp_path / "vfr.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=30", "-t", "6",
                    "-vf", r"select='lt(t\,2)+gte(t\,2)*not(mod(n\,2))'", "-vsync", "vfr",
                    "-c:v", "mpeg4", "-q:v", "3", str(out)], check=True, timeout=60)
    return out


@pytest.mark.timeout(60)
def test_a_variable_frame_rate_file_is_timed_as_it_was_filmed(small, tmp_path):
    cfg, model = small
    path = _vfr_video(tmp_path)
    src = VideoFileSource(path).open()
    assert 15 < src.fps < 30  # OpenCV reports the average rate
    keep = Keep()
    p = Pipeline(src, model, cfg, sinks=[keep], warmup=False)
    p.run()
    assert p.stats.frames == 120 and src.media_time == pytest.approx(2 + 59 / 15, abs=1e-3)
    # the 30 fps part passes through, the 15 fps part gets an in-between frame per pair (timed by the
    # file's average 20 fps instead, nearly every frame would have been made up)
    assert abs(p.ring.written - (60 + 2 * 60)) <= 8
    assert 50 <= p.adapter.interpolated <= 62
    ids = [q.frame_id for q in keep.preds]
    assert ids == sorted(ids) and 0 <= ids[0] and ids[-1] < 120
    p2 = Pipeline(VideoFileSource(path).open(), model, cfg.replace(**{"capture.resample": "off"}), warmup=False)
    p2.run()
    assert p2.ring.written == 120


def test_file_frame_times_come_from_the_file(tmp_path):
    path, _ = helpers.write_video(tmp_path / "s.mp4", n=20, width=64, height=48, fps=15.0)
    src = VideoFileSource(path).open()
    times = []
    while src.read() is not None:
        times.append(src.media_time)
    src.close()
    np.testing.assert_allclose(times, np.arange(20) / 15.0, atol=1e-3)


def _scrolling(n, step=3, size=32, seed=0):
    """``n`` pictures of a textured room moving ``step`` pixels a picture (every crop changes)."""
    rng = np.random.default_rng(seed)
    room = cv2.GaussianBlur(rng.uniform(0, 255, (size, size + n * step)).astype(np.float32), (0, 0), 1.5)
    room = np.repeat(room[..., None], 3, -1).astype(np.uint8)
    return [np.ascontiguousarray(room[:, k * step:k * step + size]) for k in range(n)]


def _jpeg(frame, q=90):
    """``frame`` through a JPEG encoder: a repeated picture comes back a little different, as from a video codec."""
    return cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)


def test_pictures_shown_twice_are_timed_at_their_own_rate_and_resampled():
    """A camera that fell to 15 fps, written into a 30 fps file: each picture twice, through a lossy codec. The
    repeats are dropped (all but the first few, before they are a pattern), the source is timed at 15 fps and every
    model frame between two pictures is made by flow: the clock keeps 30 fps and no step between model frames is
    empty (the repeats left every other one empty)."""
    pictures = _scrolling(60)
    src = [_jpeg(p) for p in pictures for _ in range(2)]
    ad = FrameRateAdapter(30, "flow")
    out = _push_all(ad, src, 30.0)
    assert ad.repeats >= 55 and ad.interpolated >= 50, (ad.repeats, ad.interpolated)
    assert len(src) - 8 <= len(out) <= len(src) and ad.source_fps() == pytest.approx(15.0)   # (the first repeats,
    # before they are a pattern or while most recent intervals are still 1/30 s, each cost the clock a frame)
    steps = [cv2.norm(a, b, cv2.NORM_L1) / a.size for (_, a), (_, b) in zip(out[10:], out[11:])]
    assert min(steps) > 1.0, min(steps)
    assert "repeated the picture before" in ad.repeat_note(len(src))


def test_a_still_scene_and_a_hand_that_stops_are_not_repeats():
    """A picture that does not change is not a repeat: a still room (with a codec's noise), and a moving one that
    stops for two seconds, pass through whole, one model frame per frame, none dropped."""
    moving = _scrolling(30)
    stops = moving + [moving[-1]] * 60
    for src in ([_jpeg(moving[0]) for _ in range(90)], [_jpeg(f) for f in stops]):
        ad = FrameRateAdapter(30, "flow")
        out = _push_all(ad, src, 30.0)
        assert ad.repeats == 0 and [i for i, _ in out] == list(range(90))
        assert ad.repeat_note(90) is None
    # a hand that pauses twice for a frame, and then a cut to a still room: the room's first frame may be taken for
    # a repeat (the pauses made a pattern), the sixty after it, which differ by next to nothing, not
    other = _scrolling(1, seed=9)[0]
    m = moving
    still = [other.copy() for _ in range(60)]
    for i, f in enumerate(still):                        # a still room's own flicker: a step of 0.01 levels, then
        f[0, :10] += (i // 2) % 2                        # none, and so on
    src = [_jpeg(f) for f in m[:10] + [m[9]] + m[10:11] + [m[10]] + m[11:12]] + [other] + still
    ad = FrameRateAdapter(30, "flow")
    out = _push_all(ad, src, 30.0)
    assert ad.repeats <= 1 and len(out) >= len(src) - 1, (ad.repeats, len(out))


@pytest.mark.timeout(60)
def test_eval_on_a_file_with_every_picture_twice_drops_the_repeats(small, tmp_path, capsys):
    """The same through the threaded pipeline and a real (lossless) video file: ``eval --json`` counts the dropped
    frames, says so in one line, and still reports events in the file's own frames."""
    from realtime.evaluate import eval_stream

    cfg, model = small
    rng = np.random.default_rng(5)
    room = cv2.resize(rng.integers(0, 256, (6, 40, 3), dtype=np.uint8), (320, 48), interpolation=cv2.INTER_NEAREST)
    pictures = [np.ascontiguousarray(room[:, 2 * k:2 * k + 64]) for k in range(75)]   # 8-pixel blocks, 2 a picture
    path = helpers.write_frames(tmp_path / "twice.avi", np.stack([p for p in pictures for _ in range(2)]), 30.0)
    res = eval_stream(model, cfg, path, None)
    assert res["frames"] == 150 and res["repeated_frames"] >= 45, res["repeated_frames"]   # of 75 (55 here)
    assert "repeated the picture before" in capsys.readouterr().err
    assert all(0 <= e["frame_id"] < 150 for e in res["events"])
    plain = eval_stream(model, cfg, helpers.write_frames(tmp_path / "once.avi", np.stack(pictures * 2), 30.0), None)
    assert plain["repeated_frames"] == 0                 # the same pictures, never twice in a row
