"""The clip recorder: clips OpenCV reads back, matching meta rows, no escape, no corruption, Ctrl-C.

Real threads, real files, real OpenCV encoding and decoding.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.config import DEFAULT_LABELS  # noqa: E402
from realtime.recorder import (  # noqa: E402
    META_COLUMNS,
    ClipRecorder,
    RecorderError,
    count_frames,
    write_clip,
)


def crops(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 112, 112, 3) uint8``: smooth moving content (mp4v keeps it close)."""
    f = helpers.make_frames(n, 112, 112, seed)
    return np.ascontiguousarray(f)


def read_meta(root: Path) -> list[dict]:
    with open(root / "meta.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "meta.csv", newline="") as f:
        assert next(csv.reader(f)) == list(META_COLUMNS)
    return rows


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def check_dataset(root: Path) -> list[dict]:
    """Every row names a complete clip; no temp file is left; returns the rows."""
    rows = read_meta(root)
    for r in rows:
        p = root / r["file_path"]
        assert p.is_file(), r
        assert p.resolve().is_relative_to(root.resolve())
        assert p.parent.name == r["action"] and p.parent.parent.name == "Train_Data"
        assert count_frames(p) == int(r["frame_count"]), r
    assert not [p for p in files_under(root) if p.name.startswith(".")], "a temp file was left behind"
    return rows


def test_clip_reads_back_with_frame_count_and_a_matching_row(tmp_path):
    frames = crops(40)
    now = datetime(2026, 11, 27, 3, 15, 0, 123456).astimezone()
    path = write_clip(tmp_path, frames, "Shake_Hand", fps=30, predicted="no_gesture", confidence=0.71234, now=now)
    assert path == tmp_path.resolve() / "Train_Data" / "Shake_Hand" / "20261127T031500_123456.mp4"
    got = helpers.read_video_frames(path)
    assert got.shape == (40, 112, 112, 3)
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 12  # lossy mp4v, same pictures
    rows = check_dataset(tmp_path)
    assert rows == [{
        "file_path": "Train_Data/Shake_Hand/20261127T031500_123456.mp4",
        "action": "Shake_Hand",
        "frame_count": "40",
        "predicted": "no_gesture",
        "confidence": "0.7123",
        "recorded_at": now.isoformat(timespec="milliseconds"),
    }]


def test_never_overwrites_a_clip_with_the_same_timestamp(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, 6).astimezone()
    a = write_clip(tmp_path, crops(16, 1), "2_Fingers_Left", now=now)
    b = write_clip(tmp_path, crops(20, 2), "2_Fingers_Left", now=now)
    assert a != b and b.name == a.stem + "_1.mp4"
    assert count_frames(a) == 16 and count_frames(b) == 20
    assert [r["file_path"] for r in check_dataset(tmp_path)] == [
        "Train_Data/2_Fingers_Left/" + a.name, "Train_Data/2_Fingers_Left/" + b.name]


@pytest.mark.parametrize("label", ["../x", "../../etc", "Train_Data/../../x", "a/b", "/tmp/x", "", ".",
                                   "..", "shake_hand", "no_gesture\0"])
def test_labels_cannot_escape_the_dataset_folder(tmp_path, label):
    root = tmp_path / "ds"
    before = files_under(tmp_path)
    with pytest.raises(RecorderError, match="not one of the configured labels"):
        write_clip(root, crops(16), label)
    with ClipRecorder(root, labels=DEFAULT_LABELS) as rec:
        assert rec.save(crops(16), label) is False
    assert rec.failed == 1 and rec.saved == 0
    assert files_under(tmp_path) == before


def test_refuses_an_existing_meta_csv_with_other_columns(tmp_path):
    (tmp_path / "meta.csv").write_text("file_path,action\nTrain_Data/x.mp4,Shake_Hand\n")
    with pytest.raises(RecorderError, match="existing header"):
        write_clip(tmp_path, crops(16), "Shake_Hand")
    assert (tmp_path / "meta.csv").read_text() == "file_path,action\nTrain_Data/x.mp4,Shake_Hand\n"
    assert files_under(tmp_path) == {tmp_path / "meta.csv"}    # no clip left without its row


@pytest.mark.timeout(120)
def test_concurrent_saves_do_not_corrupt_meta_csv(tmp_path):
    """Two recorders (as if two processes) and four threads each, all on one folder."""
    recs = [ClipRecorder(tmp_path, fps=30, max_queue=64, put_timeout=5.0) for _ in range(2)]
    labels = [lab for lab in DEFAULT_LABELS]
    errors = []

    def worker(k: int):
        try:
            for i in range(3):
                assert recs[k % 2].save(crops(16, k * 10 + i), labels[(k + i) % len(labels)], "no_gesture", 0.5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    # Plain write_clip calls from this thread too, all with one timestamp: names must not collide.
    now = datetime.now().astimezone()
    direct = [write_clip(tmp_path, crops(16, 99), "Shake_Hand", now=now) for _ in range(3)]
    for t in threads:
        t.join(60)
    for r in recs:
        r.close()
    assert not errors
    assert sum(r.saved for r in recs) == 12 and not any(r.dropped or r.failed for r in recs)
    rows = check_dataset(tmp_path)
    assert len(rows) == 15
    assert len({r["file_path"] for r in rows}) == 15
    assert len(set(direct)) == 3
    assert all(set(r) == set(META_COLUMNS) and r["recorded_at"] for r in rows)


@pytest.mark.timeout(60)
def test_full_queue_drops_instead_of_stalling_the_caller(tmp_path):
    rec = ClipRecorder(tmp_path, fps=30, max_queue=1, put_timeout=0.01)
    clip = crops(128)
    worst = 0.0
    ok = 0
    for _ in range(12):
        t0 = time.perf_counter()
        ok += rec.save(clip, "1_Finger_Click")
        worst = max(worst, time.perf_counter() - t0)
    rec.close()
    assert worst < 0.25, f"save() blocked for {worst:.3f} s"
    assert rec.dropped >= 1 and rec.saved == ok and rec.saved + rec.dropped == 12
    assert "dropped" in rec.status()
    assert len(check_dataset(tmp_path)) == rec.saved


@pytest.mark.timeout(60)
def test_close_drains_the_queue(tmp_path):
    rec = ClipRecorder(tmp_path, fps=30, max_queue=8, put_timeout=1.0)
    for i in range(4):
        assert rec.save(crops(16, i), "2_Fingers_Right", "2_Fingers_Left", 0.8)
    rec.close()
    rec.close()  # idempotent
    assert rec.saved == 4
    rows = check_dataset(tmp_path)
    assert [r["predicted"] for r in rows] == ["2_Fingers_Left"] * 4
    assert rec.save(crops(16), "2_Fingers_Right") is False  # closed


def test_a_clip_that_cannot_be_written_does_not_end_recording(tmp_path, capsys):
    """The writer thread meets a real failure (the label's folder is a file, as a broken copy or a full disk
    leaves it): that clip is counted as failed and said once, the next clips are saved, the CSV stays whole."""
    (tmp_path / "Train_Data").mkdir()
    (tmp_path / "Train_Data" / "Shake_Hand").write_text("not a folder")
    rec = ClipRecorder(tmp_path, fps=30, labels=DEFAULT_LABELS)
    assert rec.save(crops(16, 1), "Shake_Hand")               # queued: the failure is the thread's
    assert rec.save(crops(16, 2), "2_Fingers_Left")
    rec.close()
    assert rec.failed == 1 and rec.saved == 1 and rec.error is None
    assert "1 saved, 1 failed" in rec.status()
    assert f"warning: recorder: {(tmp_path / 'Train_Data' / 'Shake_Hand').resolve()}: cannot make the clip's folder (File exists)" \
        in capsys.readouterr().err
    assert [r["action"] for r in check_dataset(tmp_path)] == ["2_Fingers_Left"]


_CTRL_C_SCRIPT = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    from realtime.recorder import ClipRecorder, write_clip
    # Ctrl-C as in a terminal: a test run started in the background by a shell without job control
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    signal.signal(signal.SIGINT, signal.default_int_handler)
    root, mode = sys.argv[1], sys.argv[2]
    clip = np.random.default_rng(0).integers(0, 255, (96, 112, 112, 3), dtype=np.uint8)
    print("ready", flush=True)
    if mode == "direct":
        try:
            while True:
                write_clip(root, clip, "Shake_Hand")
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    else:
        rec = ClipRecorder(root, fps=30, max_queue=2, put_timeout=0.01)
        try:
            while True:
                rec.save(clip, "Shake_Hand")
                time.sleep(0.005)
        except KeyboardInterrupt:
            rec.close()
            print("interrupted", rec.saved, flush=True)
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode, delay", [("direct", 0.7), ("direct", 1.3), ("thread", 1.0)])
def test_ctrl_c_never_leaves_a_partial_clip_or_row(tmp_path, mode, delay):
    env = helpers.subprocess_env()
    p = subprocess.Popen([sys.executable, "-c", _CTRL_C_SCRIPT, str(tmp_path), mode], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "interrupted" in out, err
    rows = check_dataset(tmp_path) if (tmp_path / "meta.csv").exists() else []
    clips = sorted(p for p in (tmp_path / "Train_Data" / "Shake_Hand").glob("*.mp4"))
    for c in clips:  # a clip under its final name is always whole (a row may be missing if cut right there)
        assert count_frames(c) == 96, c
    assert len(clips) - len(rows) in (0, 1)
    if mode == "thread":
        assert int(out.split()[-1]) == len(rows)  # close() drained: every accepted clip has its row


@pytest.mark.timeout(180)
def test_gesture_record_headless_from_a_video(tmp_path):
    from realtime.cli import main

    video, _ = helpers.write_video(tmp_path / "cam.avi", n=70, width=320, height=240)
    out = tmp_path / "mine"
    rc = main(["record", "--label", "2_Fingers_Left", "--count", "2", "--seconds", "1", "--source", str(video),
               "--out", str(out), "--headless"])
    assert rc == 0
    rows = check_dataset(out)
    assert len(rows) == 2
    for r in rows:
        assert r["action"] == "2_Fingers_Left" and r["frame_count"] == "30"
        assert r["predicted"] == "" and r["confidence"] == "" and r["recorded_at"]
        assert helpers.read_video_frames(out / r["file_path"]).shape == (30, 112, 112, 3)


@pytest.mark.timeout(180)
def test_gesture_record_of_a_wide_video_says_which_part_it_keeps(tmp_path, capsys):
    """The clips hold the model's crop of each frame: a 16:9 source gets the note on how it is cut, and with
    preprocess.aspect=crop the clip is the crop of each frame's middle."""
    from realtime.cli import main
    from realtime.config import PreprocessConfig
    from realtime.preprocess import aspect_box, crop_frames

    video, _ = helpers.write_video(tmp_path / "wide.avi", n=40, width=320, height=180)
    rc = main(["record", "--label", "Shake_Hand", "--count", "1", "--seconds", "1", "--source", str(video),
               "--out", str(tmp_path / "a"), "--headless"])
    assert rc == 0 and "note: 320x180 frames are squeezed" in capsys.readouterr().err
    rc = main(["record", "--label", "Shake_Hand", "--count", "1", "--seconds", "1", "--source", str(video),
               "--out", str(tmp_path / "b"), "--headless", "--set", "preprocess.aspect=crop"])
    assert rc == 0 and "note: 320x180 frames: their middle 240x180 is used" in capsys.readouterr().err
    cut = PreprocessConfig(aspect="crop")
    x, y, w, h = aspect_box(320, 180, cut)
    clip = helpers.read_video_frames(tmp_path / "b" / check_dataset(tmp_path / "b")[0]["file_path"])
    # the recorded clip is the crop of each frame's middle (the first 30 frames; the clip codec is lossy, so: nearer
    # to that than to the squeezed frames' crop by far)
    want = crop_frames([f[y:y + h, x:x + w] for f in helpers.read_video_frames(video)[:30]], cut)
    squeezed = crop_frames(helpers.read_video_frames(video)[:30], PreprocessConfig())
    assert clip.shape == (30, 112, 112, 3)
    near, far = np.abs(clip.astype(int) - want).mean(), np.abs(clip.astype(int) - squeezed).mean()
    assert near < far / 2, (near, far)


def test_recorded_clips_are_cut_as_the_model_they_retrain_cuts_frames(tmp_path):
    """The clips are kept as 112x112 crops, so a 640x480 camera's frames must be brought down as the model in
    ``model.path`` (the bundled one by default) brings them down live: ``preprocess.downscale: auto`` is that
    model's own, a small backbone's (``area``) where there is no readable model, and a set value stays."""
    import shutil

    from realtime.config import Config
    from realtime.modelio import BUNDLED_MODEL_DIR
    from realtime.recorder import _for_retraining

    def mode(**dotted):
        return _for_retraining(Config().replace(**dotted)).preprocess.downscale

    assert mode() == "area"                                       # the bundled model: small, saved before the field
    full = tmp_path / "full"    # the bundled folder's files, its model.json made a full C3D's
    full.mkdir()
    for name in ("labels.json", "head.weights.h5"):
        shutil.copy(BUNDLED_MODEL_DIR / name, full / name)
    raw = json.loads((BUNDLED_MODEL_DIR / "model.json").read_text())
    raw["backbone"]["width"] = 1.0
    assert "downscale" not in raw["preprocess"]
    (full / "model.json").write_text(json.dumps(raw))
    assert mode(**{"model.path": str(full)}) == "linear"          # the Sports1M C3D: the Caffe recipe
    raw["preprocess"]["downscale"] = "area"
    (full / "model.json").write_text(json.dumps(raw))
    assert mode(**{"model.path": str(full)}) == "area"            # what its model.json says
    (full / "model.json").write_text("{not json")
    assert mode(**{"model.path": str(full)}) == "area"            # broken: `gesture live` names it, recording goes on
    assert mode(**{"model.path": str(tmp_path / "none")}) == "area"
    assert mode(**{"preprocess.downscale": "linear"}) == "linear"


@pytest.mark.timeout(180)
def test_gesture_record_mirrored_source_saves_what_the_model_sees(tmp_path):
    """``--mirrored-source``: a selfie-view video is saved flipped back, as the model sees it, so the clips
    train with left and right the user's own."""
    from realtime.cli import main

    video, frames = helpers.write_video(tmp_path / "cam.avi", n=40, width=320, height=240)
    selfie = helpers.write_frames(tmp_path / "selfie.avi", frames[:, :, ::-1])
    saved = {}
    for name, src, flags in (("camera", video, []), ("back", selfie, ["--mirrored-source"]), ("as_is", selfie, [])):
        out = tmp_path / name
        assert main(["record", "--label", "2_Fingers_Left", "--count", "1", "--seconds", "1", "--source", str(src),
                     "--out", str(out), "--headless", *flags]) == 0
        (row,) = check_dataset(out)
        saved[name] = helpers.read_video_frames(out / row["file_path"]).astype(int)
    assert np.abs(saved["back"] - saved["camera"]).mean() < 2      # the clip's own codec, nothing more
    assert np.abs(saved["as_is"] - saved["camera"]).mean() > 20    # the mirror image is not what was saved


@pytest.mark.timeout(180)
def test_gesture_record_with_deflicker_saves_the_crops_without_the_light_bands(tmp_path):
    """``capture.deflicker`` (the default): a video under rolling light bands (10% deep) is saved as the live path
    shows it to the model, the bands divided out once its running average has a few frames; with it off, as is."""
    from realtime.cli import main

    video, frames = helpers.write_video(tmp_path / "cam.avi", n=40, width=320, height=240)
    rows = np.arange(len(frames))[:, None] / 30.0 + 0.025 * np.arange(240)[None, :] / 240
    banded = helpers.write_frames(tmp_path / "banded.avi", np.clip(
        frames * (1 + 0.1 * np.cos(2 * np.pi * 100 * rows))[:, :, None, None], 0, 255).astype(np.uint8))
    saved = {}
    for name, src, flags in (("clean", video, []), ("banded", banded, ["--set", "capture.deflicker=false"]),
                             ("fixed", banded, [])):
        out = tmp_path / name
        assert main(["record", "--label", "Shake_Hand", "--count", "1", "--seconds", "1", "--source", str(src),
                     "--out", str(out), "--headless", *flags]) == 0
        (row,) = check_dataset(out)
        saved[name] = helpers.read_video_frames(out / row["file_path"]).astype(float)[15:]

    def ripple(clip):   # the largest row-mean gain against the clean clip's, over the settled frames
        return float(np.abs((clip.mean(axis=(2, 3)) + 4) / (saved["clean"].mean(axis=(2, 3)) + 4) - 1).max())

    assert ripple(saved["banded"]) > 0.08 and ripple(saved["fixed"]) < 0.5 * ripple(saved["banded"]), (
        ripple(saved["banded"]), ripple(saved["fixed"]))


@pytest.mark.timeout(180)
def test_gesture_record_with_stabilize_saves_the_crops_held_still(tmp_path):
    """``capture.stabilize``: a camera wobbling 4 px rms is saved as the live path shows it to the model, the room
    moving from frame to frame well under what it moves with it off (the default)."""
    from realtime.cli import main

    frames, _ = helpers.shaking_camera(130, 4.0, seed=5)
    video = helpers.write_frames(tmp_path / "shaking.avi", frames)
    motion = {}
    for name, flags in (("off", []), ("on", ["--set", "capture.stabilize=true"])):
        out = tmp_path / name
        assert main(["record", "--label", "Shake_Hand", "--count", "1", "--seconds", "1",
                     "--source", str(video), "--out", str(out), "--headless", *flags]) == 0
        (row,) = check_dataset(out)
        motion[name] = helpers.room_motion(helpers.read_video_frames(out / row["file_path"]))
    assert motion["on"] < 0.65 * motion["off"], motion


@pytest.mark.timeout(120)
def test_gesture_record_errors_are_one_line(tmp_path, capsys):
    from realtime.cli import main

    video, _ = helpers.write_video(tmp_path / "cam.avi", n=40, width=160, height=120)
    assert main(["record", "--label", "../x", "--source", str(video), "--out", str(tmp_path / "o"),
                 "--headless"]) == 2
    assert "--label '../x' is not a label" in capsys.readouterr().err
    rc = main(["record", "--label", "Shake_Hand", "--count", "2", "--seconds", "1", "--source", str(video),
               "--out", str(tmp_path / "o"), "--headless"])
    assert rc == 2
    assert "the source ended while recording (after 1 of 2 clips)" in capsys.readouterr().err
    assert len(check_dataset(tmp_path / "o")) == 1
    # another dataset's CSV (a rendered one): said before anything is recorded, nothing written
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    (rendered / "meta.csv").write_text("file_path,action,frame_count\n")
    rc = main(["record", "--label", "Shake_Hand", "--count", "1", "--source", str(video), "--out", str(rendered),
               "--headless"])
    captured = capsys.readouterr()
    assert rc == 2 and "meta.csv: existing header" in captured.err and "recording" not in captured.out, captured
    assert files_under(rendered) == {rendered / "meta.csv"}


# -- the recorded folder is training data ----------------------------------------------------------

def test_the_training_reader_takes_a_recorded_folder_as_model_ready_crops(tmp_path):
    dataset = pytest.importorskip("realtime.dataset", reason="realtime/dataset.py (the training reader) is missing")
    from realtime.config import Config

    for i, lab in enumerate(DEFAULT_LABELS):
        write_clip(tmp_path, crops(16, i), lab, predicted="no_gesture", confidence=0.6)
    for meta in (tmp_path / "meta.csv", tmp_path):   # the CSV, or the folder it lives in
        items = dataset.read_meta(meta, DEFAULT_LABELS)
        assert [it.label for it in items] == list(DEFAULT_LABELS)
        assert all(it.precropped for it in items)   # no second crop of a crop
        got = dataset.load_crops(items[0], Config())
        assert got.shape == (16, 112, 112, 3)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_recorded_folder_trains(tmp_path):
    """``gesture train --meta <recorded meta.csv>`` on a folder the recorder wrote (tiny, a few minutes)."""
    pytest.importorskip("realtime.train", reason="realtime/train.py is missing")
    from realtime.cli import main

    for i in range(4):
        for k, lab in enumerate(DEFAULT_LABELS):
            write_clip(tmp_path / "ds", crops(128, 10 * k + i), lab)
    rc = main(["train", "--meta", str(tmp_path / "ds" / "meta.csv"), "--out", str(tmp_path / "model"),
               "--backbone", "small", "--width", str(helpers.TINY_WIDTH), "--epochs", "1"])
    assert rc == 0
    assert (tmp_path / "model" / "model.json").is_file()


def test_record_preview_dims_what_is_not_saved():
    """The clips keep the model's crop only: the preview dims the rest, as the live window does, so that
    the user gestures where it is saved. A 16:9 camera: the dimmed side bands are wider than a 4:3 one's."""
    from realtime.config import load_config
    from realtime.preprocess import model_view
    from realtime.recorder import _draw_record

    cfg = load_config()
    img = _draw_record(np.full((720, 1280, 3), 200, np.uint8), 1, 3, "Shake_Hand", "recording", 0.5,
                       mirror=True, cfg=cfg)
    assert img.shape == (480, 853, 3)
    x0, y0, x1, y1 = (v / 1.5 for v in model_view(1280, 720))
    x0, x1 = 853 - x1, 853 - x0   # the preview is mirrored
    row = int((y0 + y1) / 2)
    assert (img[row, int(x0) + 3] == 200).all() and (img[row, int(x1) - 3] == 200).all()
    assert (img[row, int(x0) - 3] == 100).all() and (img[row, int(x1) + 3] == 100).all()
    plain = _draw_record(np.full((720, 1280, 3), 200, np.uint8), 1, 3, "Shake_Hand", "recording", 0.5)
    assert (plain[row, int(x0) - 3] == 200).all()   # without a config: the image as it is
