"""Threaded pipeline with fake sources under timeouts, and ``gesture live`` end to end on a generated video."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.modelio import LoadedModel  # noqa: E402
from realtime.pipeline import Pipeline  # noqa: E402
from realtime.ringbuffer import DropPolicy  # noqa: E402
from realtime.sources import FrameSource, SourceLost, VideoFileSource  # noqa: E402

# In-process pipelines use 32x32 crops: the threading does not depend on the crop size and a
# tiny C3D on 32x32 clips keeps each test well under a second of compute.
SMALL = {"pipeline.size": 32}
LOW_THRESHOLD = {"debounce.threshold": 0.05, "debounce.rearm": 0.01, "debounce.cooldown_s": 0.0,
                 "debounce.opposite_s": 0.0}


@pytest.fixture(scope="module")
def small_model():
    cfg = helpers.tiny_config(**SMALL)
    return cfg, helpers.tiny_loaded(cfg, seed=2)


class ListSource(FrameSource):
    """``n`` synthetic frames from memory, then the end of the stream; optionally raises at frame ``fail_at``."""

    live = False

    def __init__(self, n: int, policy=DropPolicy.WAIT, fail_at: int | None = None, exc=None):
        self.frames = helpers.make_frames(min(n, 40), width=64, height=48)
        self.n, self.policy, self.fail_at = n, policy, fail_at
        self.exc = exc or RuntimeError("fake source: sensor on fire")
        self.name = "list source"
        self.i = 0
        self.closed = 0

    def read(self):
        if self.fail_at is not None and self.i == self.fail_at:
            raise self.exc
        if self.i >= self.n:
            return None
        f = self.frames[self.i % len(self.frames)]
        self.i += 1
        return f

    def close(self):
        self.closed += 1


class BlockingSource(FrameSource):
    """Gives a few frames, then blocks in ``read()`` like a hung camera until ``close()``."""

    name = "blocking fake camera"
    policy = DropPolicy.DROP_OLDEST
    live = False

    def __init__(self, n_before: int = 3):
        self.n_before = n_before
        self.n = 0
        self.unblock = threading.Event()
        self.blocked = threading.Event()
        self.closed = threading.Event()

    def read(self):
        if self.n < self.n_before:
            self.n += 1
            return np.full((48, 64, 3), 100, np.uint8)
        self.blocked.set()
        self.unblock.wait(timeout=30)      # bounded so a failing test cannot leak a thread forever
        return None

    def close(self):
        self.closed.set()
        self.unblock.set()


class FlakyLiveSource(ListSource):
    """A live source that is lost twice (SourceLost), comes back on reopen, then ends."""

    live = True

    def __init__(self, n: int):
        super().__init__(n, policy=DropPolicy.DROP_OLDEST)
        self.lost_left = 2
        self.reopened = 0

    def read(self):
        if self.i == 5 and self.lost_left:
            self.lost_left -= 1
            raise SourceLost("fake camera: unplugged")
        return super().read()

    def reopen(self):
        self.reopened += 1
        return True


class RecordingSink:
    def __init__(self):
        self.events, self.predictions, self.closed = [], [], False

    def on_event(self, ev):
        self.events.append(ev)

    def on_prediction(self, p):
        self.predictions.append(p)

    def close(self):
        self.closed = True


class BrokenSink:
    def __init__(self):
        self.calls = 0

    def on_event(self, ev):
        self.calls += 1
        raise OSError("disk full")


# ---------------------------------------------------------------------------------------------
# stopping and faults
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_stop_returns_promptly_with_a_blocking_source(small_model):
    cfg, model = small_model
    src = BlockingSource()
    p = Pipeline(src, model, cfg, warmup=False)
    p.start()
    assert src.blocked.wait(10), "the capture thread never reached the blocking read"
    time.sleep(0.1)
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 2.0
    assert src.closed.is_set()
    p.capture.join(5)
    assert not p.capture.is_alive() and not p.worker.is_alive()
    t0 = time.monotonic()
    p.stop()                                    # idempotent
    assert time.monotonic() - t0 < 0.1


@pytest.mark.timeout(30)
def test_run_with_seconds_and_a_blocking_source_returns(small_model):
    cfg, model = small_model
    src = BlockingSource()
    p = Pipeline(src, model, cfg, warmup=False)
    t0 = time.monotonic()
    p.run(seconds=0.5)
    assert time.monotonic() - t0 < 3.0
    assert p.stats.frames == 3 and src.closed.is_set()


@pytest.mark.timeout(60)
def test_source_error_reaches_main_thread(small_model):
    cfg, model = small_model
    src = ListSource(200, fail_at=40)
    p = Pipeline(src, model, cfg, warmup=False)
    with pytest.raises(RuntimeError, match="sensor on fire"):
        p.run()
    assert p.stats.frames == 40
    assert not p.capture.is_alive() and not p.worker.is_alive()
    assert src.closed >= 1


@pytest.mark.timeout(60)
def test_worker_error_reaches_main_thread(small_model):
    """A malformed model: the head expects a wider feature than the backbone gives -> fails at the
    first decision (frame 127) inside the worker thread; the capture thread, waiting on the ring
    (WAIT policy, 1000 frames >> the 144-frame buffer), is woken and stops too."""
    cfg0, model = small_model
    cfg = cfg0.replace(**{"capture.buffer_frames": 144})
    _, _, wide_head = helpers.tiny_models(cfg, width=0.06, seed=3)
    bad = LoadedModel(model.spec, model.backbone, wide_head)
    src = ListSource(1000)
    p = Pipeline(src, bad, cfg, warmup=False)
    t0 = time.monotonic()
    with pytest.raises(Exception) as ei:
        p.run()
    assert time.monotonic() - t0 < 30
    assert not isinstance(ei.value, AssertionError)
    assert p.stats.clips >= 8 and p.stats.decisions == 0
    p.capture.join(2)
    assert not p.capture.is_alive() and not p.worker.is_alive()
    # capture stopped early: the worker never released frames past ~128 + 4 * 16, so it could not
    # have read beyond that + 144 (the buffer)
    assert p.stats.frames <= 128 + 4 * 16 + 144


@pytest.mark.timeout(60)
def test_lost_live_source_is_retried(small_model):
    cfg, model = small_model
    src = FlakyLiveSource(40)
    p = Pipeline(src, model, cfg, warmup=False)
    p.run()
    assert p.capture.lost_count == 2 and src.reopened == 2
    assert p.stats.frames == 40 and p.stats.status == "running"


# ---------------------------------------------------------------------------------------------
# processing a file: WAIT policy, every frame
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video150(tmp_path_factory):
    d = tmp_path_factory.mktemp("vid")
    path, frames = helpers.write_video(d / "v150.avi", n=150, width=64, height=48, seed=1)
    return path, frames


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stride", [16, 4])
def test_wait_policy_processes_every_frame(small_model, video150, stride):
    cfg0, model = small_model
    path, frames = video150
    n = len(frames)
    cfg = cfg0.replace(**{"pipeline.stride": stride, "capture.buffer_frames": 144, **LOW_THRESHOLD})
    src = VideoFileSource(path).open()
    assert src.policy is DropPolicy.WAIT and src.frame_count == n
    sink = RecordingSink()
    p = Pipeline(src, model, cfg, sinks=[sink], warmup=False)
    p.run()
    s = p.stats.snapshot()
    assert s["frames"] == n
    assert s["clips"] == (n - 16) // stride + 1
    assert s["decisions"] == len(range(127, n, stride))
    assert p.dropped_frames == 0 and p.ring.dropped == 0
    assert [q.frame_id for q in sink.predictions] == list(range(127, n, stride))
    assert sink.closed
    assert len(p.events) >= 1 and sink.events == p.events
    for ev in p.events:
        assert ev.media_time == pytest.approx(ev.frame_id / src.fps)
        assert ev.emit_time >= ev.capture_time
    if stride != 16:
        return
    # Deterministic replay: the same file gives the same decisions.
    sink2 = RecordingSink()
    Pipeline(VideoFileSource(path).open(), model, cfg, sinks=[sink2], warmup=False).run()
    np.testing.assert_allclose(np.stack([q.probs for q in sink2.predictions]),
                               np.stack([q.probs for q in sink.predictions]), rtol=1e-5, atol=1e-6)


@pytest.mark.timeout(60)
def test_broken_sink_is_contained(small_model, capsys):
    cfg0, model = small_model
    cfg = cfg0.replace(**LOW_THRESHOLD)
    broken, ok = BrokenSink(), RecordingSink()
    p = Pipeline(ListSource(144), model, cfg, sinks=[broken, ok], warmup=False)
    p.run()
    assert broken.calls == 1                     # switched off after its first failure
    assert ok.events and p.stats.frames == 144
    assert "switched off" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_progress_bar_follows_the_decisions_through_the_file(small_model, tmp_path):
    """``gesture eval --stream`` shows how far through the video it is (a terminal only; forced on here)."""
    import io

    from realtime.sinks import ProgressSink

    cfg, model = small_model
    path, frames = helpers.write_video(tmp_path / "v.avi", n=150, width=160, height=120)
    out = io.StringIO()
    bar = ProgressSink(len(frames), "playing v.avi", file=out, disable=False)
    log = RecordingSink()
    Pipeline(VideoFileSource(path).open(), model, cfg.replace(**{"pipeline.stride": 16}), sinks=[bar, log],
             warmup=False).run()
    last = log.predictions[-1].frame_id + 1        # the last window ends at frame 143 of 150
    shown = out.getvalue().replace("\r", "\n")
    assert "playing v.avi" in shown and "/150 " in shown, shown[-300:]   # drawn (at most 10 times a second)
    assert bar.bar.n == last and len(log.predictions) == (150 - 128) // 16 + 1


@pytest.mark.timeout(60)
def test_empty_video_is_an_error(small_model, tmp_path):
    from realtime.sources import SourceError

    cfg, model = small_model
    p = Pipeline(ListSource(0), model, cfg, warmup=False)
    with pytest.raises(SourceError, match="no frames"):
        p.run()


# ---------------------------------------------------------------------------------------------
# end to end: the real CLI as a subprocess
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    model_dir, *_ = helpers.write_tiny_model(d / "tiny_model", seed=5)      # default config: 112x112
    video, frames = helpers.write_video(d / "gestures.avi", n=144, width=160, height=120, seed=7)
    return d, model_dir, video, len(frames)


@pytest.mark.timeout(120)
def test_gesture_live_headless_end_to_end(cli_case):
    d, model_dir, video, n = cli_case
    events = d / "events.jsonl"
    cmd = helpers.gesture_cmd() + [
        "live", "--source", str(video), "--headless", "--events-out", str(events), "--model", str(model_dir),
        "--set", "debounce.threshold=0.05", "--set", "debounce.rearm=0.01", "--set", "debounce.cooldown_s=0",
        "--set", "debounce.opposite_s=0",
        "--set", "pipeline.max_batch=1",   # warm-up traces one batch size, not four (~3 s less on 2 cores)
        "--set", "pipeline.stride=16",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=helpers.subprocess_env(), timeout=110)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"done: {n} frames, {(n - 16) // 16 + 1} clips, 2 decisions" in r.stderr
    lines = events.read_text().splitlines()
    assert len(lines) >= 1
    labels = {"1_Finger_Click", "2_Fingers_Left", "2_Fingers_Right", "Shake_Hand"}
    for line in lines:
        ev = json.loads(line)
        assert {"label", "confidence", "frame_id", "capture_time", "emit_time"} <= set(ev)
        assert ev["label"] in labels
        assert 0.05 <= ev["confidence"] <= 1.0
        assert ev["frame_id"] in (127, 143)
        assert ev["emit_time"] >= ev["capture_time"] > 0
    # --headless also prints each event as one JSON line on stdout
    printed = [json.loads(s) for s in r.stdout.splitlines() if s.startswith("{")]
    assert printed == [json.loads(s) for s in lines]


@pytest.mark.timeout(120)
def test_ctrl_c_in_gesture_live_says_what_the_run_did(cli_case):
    """Ctrl-C ends ``gesture live`` with the summary line, then "interrupted", exit code 130."""
    import signal

    d, model_dir, _, _ = cli_case
    cmd = helpers.gesture_cmd() + ["live", "--source", "synthetic", "--headless", "--model", str(model_dir),
                                   "--set", "pipeline.max_batch=1"]
    # a test run started in the background inherits SIGINT ignored; the child gets the terminal's default
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=helpers.subprocess_env(),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        for line in p.stderr:   # the paced synthetic source runs until stopped
            lines.append(line)
            if line.startswith("source: "):
                break
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        _, rest = p.communicate(timeout=60)
    finally:
        p.kill()
    err = "".join(lines) + rest
    assert p.returncode == 130, err[-3000:]
    tail = [ln for ln in err.splitlines() if ln.strip()][-2:]
    assert tail[0].startswith("done: ") and " frames, " in tail[0] and tail[1] == "gesture: interrupted", err[-3000:]


@pytest.mark.timeout(120)
def test_a_video_not_shaped_4_3_gets_a_note_on_how_its_frames_are_cut(cli_case, tmp_path, capsys):
    """A 16:9 video is squeezed to the model's 4:3 input by default: live says so once, with the other way; a 4:3
    one (the test video) gets no note; with preprocess.aspect=crop the note says which part is used."""
    from realtime.cli import main

    d, model_dir, video, n = cli_case
    wide, _ = helpers.write_video(tmp_path / "wide.avi", n=20, width=192, height=108, seed=3)
    common = ["--headless", "--model", str(model_dir), "--set", "pipeline.max_batch=1", "--set", "pipeline.stride=16"]
    assert main(["live", "--source", str(wide), *common]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: ")]
    assert notes == ["note: 192x108 frames are squeezed to 171x128 (preprocess.aspect: stretch), which makes hands "
                     "narrower or flatter than in 4:3 video; if the hand stays in the middle, --set "
                     "preprocess.aspect=crop keeps its shape (README, 'How it works')"], err
    assert main(["live", "--source", str(wide), *common, "--set", "preprocess.aspect=crop"]) != 0   # the model: stretch
    assert "'preprocess.aspect' = stretch disagrees with config (crop)" in capsys.readouterr().err
    assert main(["live", "--source", str(video), *common]) == 0
    assert "note: " not in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_gesture_live_realtime_plays_a_file_at_its_own_rate_like_a_camera(cli_case, capsys):
    """``--realtime``: a video file paced at its frame rate, with a camera's drop policy (a file read as fast
    as the worker takes it is the default). Only a lower bound on the time: a slow machine takes longer."""
    from realtime.cli import main

    d, model_dir, video, n = cli_case
    rc = main(["live", "--source", str(video), "--realtime", "--headless", "--model", str(model_dir),
               "--set", "pipeline.max_batch=1", "--set", "pipeline.stride=16"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"source: {video} (30 fps, drop_oldest)" in err and f"done: {n} frames, " in err, err
    src = VideoFileSource(video, realtime=True).open()
    t0 = time.monotonic()
    times = []
    for _ in range(31):
        assert src.read() is not None
        times.append(src.media_time)
    elapsed = time.monotonic() - t0
    src.close()
    assert times == pytest.approx([k / 30 for k in range(31)], abs=1e-3)
    assert elapsed >= 30 / 30 * 0.95, elapsed        # frame 30 is shown 1 s after frame 0


@pytest.mark.timeout(60)
def test_gesture_live_missing_video_is_one_line_error(cli_case, capsys):
    """In-process through ``realtime.cli.main`` (the same code the console script runs; a second
    subprocess would spend ~8 s importing TensorFlow just to print one line)."""
    from realtime.cli import main

    d, model_dir, _, _ = cli_case
    missing = d / "no_such_clip.mp4"
    rc = main(["live", "--source", str(missing), "--headless", "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("gesture: error:")]
    assert len(errors) == 1 and str(missing) in errors[0], err
    assert "--source" in errors[0]                 # says how to pick another source


@pytest.mark.timeout(300)
def test_mirrored_source_is_flipped_back(tmp_path, capsys):
    """A selfie-view recording (every frame flipped left to right) read with ``--mirrored-source`` gives the
    events of the original video; read without it, the two swipes change places. The bundled model on a
    rendered stream; both videos are written losslessly (FFV1), so they differ by the flip alone."""
    from realtime.cli import main
    from realtime.modelio import BUNDLED_MODEL_DIR

    if not (BUNDLED_MODEL_DIR / "model.json").is_file():
        pytest.skip(f"no bundled model at {BUNDLED_MODEL_DIR}")
    synth = pytest.importorskip("realtime.synth")
    mp4, csv_path = synth.write_stream(str(tmp_path / "stream.mp4"), 1.0, 3, width=320, height=240)
    frames = helpers.read_video_frames(mp4)
    videos = {"camera": helpers.write_frames(tmp_path / "camera.avi", frames),
              "selfie": helpers.write_frames(tmp_path / "selfie.avi", frames[:, :, ::-1])}

    def events(video, *flags):
        rc = main(["eval", "--stream", str(video), "--annotations", str(csv_path), "--json", *flags])
        captured = capsys.readouterr()
        assert rc == 0, captured.err[-2000:]
        return [(e["label"], e["frame_id"]) for e in json.loads(captured.out)["events"]]

    swap = {"2_Fingers_Left": "2_Fingers_Right", "2_Fingers_Right": "2_Fingers_Left"}
    camera = events(videos["camera"])
    assert sum(lab in swap for lab, _ in camera) >= 2, f"too few swipes to tell the sides apart: {camera}"

    def same(got, want):
        # the crop window is one column off centre, so the flipped-back crops are not bit-identical:
        # the same events, each within one decision (stride 4) of the original's
        return len(got) == len(want) and all(a == b and abs(fa - fb) <= 4 for (a, fa), (b, fb) in zip(got, want))

    back = events(videos["selfie"], "--mirrored-source")
    assert same(back, camera), (back, camera)
    unflipped = events(videos["selfie"])
    assert same(unflipped, [(swap.get(lab, lab), f) for lab, f in camera]), (unflipped, camera)


@pytest.mark.timeout(300)
def test_rolling_light_bands_are_taken_out_before_the_model(tmp_path, capsys):
    """A rendered stream under LED light on 50 Hz mains (bands 10% deep rolling through the picture, as a rolling
    shutter sees 100 Hz flicker) read by the real pipeline and the bundled model: with ``capture.deflicker`` (the
    default) it matches about as many gestures as the same stream without bands; without it, the bands hide most
    of them."""
    from realtime.cli import main
    from realtime.modelio import BUNDLED_MODEL_DIR

    if not (BUNDLED_MODEL_DIR / "model.json").is_file():
        pytest.skip(f"no bundled model at {BUNDLED_MODEL_DIR}")
    synth = pytest.importorskip("realtime.synth")
    mp4, csv_path = synth.write_stream(str(tmp_path / "stream.mp4"), 1.0, 3, width=320, height=240)
    frames = helpers.read_video_frames(mp4)
    t = np.arange(len(frames))[:, None] / 30.0 + 0.025 * np.arange(240)[None, :] / 240   # when each row is read
    gain = 1 + 0.1 * np.cos(2 * np.pi * 100 * t)
    banded = np.clip(frames * gain[:, :, None, None], 0, 255).astype(np.uint8)
    videos = {"clean": helpers.write_frames(tmp_path / "clean.avi", frames),
              "banded": helpers.write_frames(tmp_path / "banded.avi", banded)}

    said = {}

    def matched(video, *flags):
        rc = main(["eval", "--stream", str(video), "--annotations", str(csv_path), "--json", *flags])
        captured = capsys.readouterr()
        assert rc == 0, captured.err[-2000:]
        res = json.loads(captured.out)
        said[video.stem + " ".join(flags)] = ([line for line in captured.err.splitlines() if "light:" in line], res["light_frames"])
        return res["matched"]

    clean, fixed = matched(videos["clean"]), matched(videos["banded"])
    off = matched(videos["banded"], "--set", "capture.deflicker=false")
    assert clean >= 8, f"too few gestures matched on the clean stream to compare: {clean}"
    assert fixed >= clean - 2 and off <= clean / 2, (clean, fixed, off)
    # the run says the light was to blame (realtime.light): the bands named for most of the banded stream's frames,
    # the clean stream's light never found wanting
    lines, counts = said["banded"]
    assert len(lines) == 1 and "rolling light bands" in lines[0] and counts["flicker"] > 0.8 * sum(counts.values()), said
    lines, counts = said["clean"]
    assert lines == [] and counts["flicker"] == counts["dark"] == 0, said
