"""Training and evaluation: window labelling, context placement, both backbones, the metrics."""

from __future__ import annotations

import _thread
import csv
import json
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import random_c3d_weights, tiny_config, write_keras2_h5_raw, write_tiny_model

from realtime.cli import main
from realtime.config import DEFAULT_LABELS, NO_GESTURE
from realtime.errors import GestureError
from realtime.evaluate import levenshtein, match_events, read_annotations
from realtime.windows import held, window_label

G = {lab: i for i, lab in enumerate(DEFAULT_LABELS)}
BG = G[NO_GESTURE]


# -- pure pieces -------------------------------------------------------------------------------
def test_window_label_regions():
    L = G["Shake_Hand"]
    assert window_label(0, L, BG) == (L, 1.0)
    assert window_label(23, L, BG) == (L, 1.0)
    assert window_label(-1, L, BG)[1] == 0.0        # nearly complete: ignored
    assert window_label(30, L, BG)[1] == 0.0        # done a while ago: ignored
    assert window_label(-40, L, BG) == (BG, 1.0)    # not performed yet
    assert window_label(60, L, BG) == (BG, 1.0)     # long done: lets the debouncer re-arm
    # --label-delay 6: the same regions, 6 frames later
    assert window_label(5, L, BG, delay=6)[1] == 0.0
    assert window_label(6, L, BG, delay=6) == (L, 1.0)
    assert window_label(29, L, BG, delay=6) == (L, 1.0)
    assert window_label(30, L, BG, delay=6)[1] == 0.0
    assert window_label(-11, L, BG, delay=6) == (BG, 1.0)
    assert window_label(66, L, BG, delay=6) == (BG, 1.0)


def test_context_has_no_black_frames_and_ends_the_clip_where_asked():
    from realtime.small import POST, PRE, in_context

    rng = np.random.default_rng(0)
    labels = list(DEFAULT_LABELS)
    clip = np.full((30, 112, 112, 3), 120, np.uint8)
    clip[:, 40:60, 40:60] = 250
    seq, events, ref = in_context(clip, G["Shake_Hand"], labels, rng, [], variant=0)
    n = PRE + 30 + POST
    assert seq.shape == (n, 112, 112, 3) and ref == PRE + 29 and events == [(ref, G["Shake_Hand"])]
    assert seq.reshape(n, -1).mean(1).min() > 100            # a camera never shows black frames
    assert np.array_equal(seq[ref - 29 : ref + 1], clip)      # the clip ends at the reference frame
    black, _, _ = in_context(clip, G["Shake_Hand"], labels, rng, [], variant=0, black=True)
    assert black[: ref - 29].max() == 0 and black[ref + 1 :].max() == 0   # the seed's padding, for the ablation
    mirrored = [in_context(clip, G["2_Fingers_Left"], labels, rng, [], variant=1)[1][0][1] for _ in range(20)]
    assert set(mirrored) == {G["2_Fingers_Left"], G["2_Fingers_Right"]}   # mirroring swaps left and right
    h = held(clip[0], 5, rng)
    assert h.shape == (5, 112, 112, 3) and abs(float(h.mean()) - float(clip[0].mean())) < 2


def test_levenshtein_and_event_matching():
    assert levenshtein(list("abc"), list("abc")) == 0
    assert levenshtein(list("abc"), list("axc")) == 1
    assert levenshtein([], list("ab")) == 2
    gestures = [("Shake_Hand", 100, 160), ("2_Fingers_Left", 400, 440), ("1_Finger_Click", 900, 930)]
    events = [{"label": "Shake_Hand", "frame_id": 170},        # 10 frames late: matched
              {"label": "2_Fingers_Right", "frame_id": 445},   # wrong label: false
              {"label": "1_Finger_Click", "frame_id": 935},    # matched
              {"label": "Shake_Hand", "frame_id": 1500}]       # nothing there: false
    r = match_events(events, gestures, fps=30.0, n_frames=1800)
    assert r["matched"] == 2 and r["missed"] == 1 and r["false_events"] == 2
    assert r["n_events"] == 4 and r["n_gestures"] == 3
    assert r["levenshtein_accuracy"] == pytest.approx(1 - 2 / 3)
    assert r["delay_median_s"] == pytest.approx((10 / 30 + 5 / 30) / 2)
    no_gesture_min = (1800 - (61 + 41 + 31)) / 30 / 60
    assert r["false_per_min"] == pytest.approx(2 / no_gesture_min)


def test_annotations_keep_gestures_and_name_bad_rows(tmp_path):
    """A spreadsheet's CSV (byte-order mark, every stretch annotated, no_gesture included) gives the gestures
    alone; a bad row is one line naming the file, the row and what is wrong."""
    p = tmp_path / "s.csv"
    p.write_text("\ufefflabel,start_frame,end_frame\nno_gesture,0,99\nShake_Hand,100,160\nno_gesture,161,399\n"
                 "2_Fingers_Left,400,440\n\n", encoding="utf-8")
    assert read_annotations(p, DEFAULT_LABELS) == [("Shake_Hand", 100, 160), ("2_Fingers_Left", 400, 440)]
    for body, needle in [("Shake_Hand,100\n", "row 2: expected 3 fields, got 2"),
                         ("Shake_Hand,1.5,9\n", "row 2: start_frame/end_frame must be integers, got '1.5', '9'"),
                         ("Wave,1,9\n", "row 2: unknown label 'Wave'"),
                         ("Shake_Hand,90,9\n", "row 2: need 0 <= start_frame <= end_frame, got 90, 9")]:
        p.write_text("label,start_frame,end_frame\n" + body, encoding="utf-8")
        with pytest.raises(GestureError, match=f"s.csv: {needle}"):
            read_annotations(p, DEFAULT_LABELS)
    p.write_bytes(b"label,start_frame,end_frame\n\xff\xfe,1,2\n")
    with pytest.raises(GestureError, match="s.csv: cannot read annotations CSV"):
        read_annotations(p, DEFAULT_LABELS)


# -- a small, easy, generated dataset ------------------------------------------------------------
def _blob_clip(label: str, rng, n: int = 40, w: int = 160, h: int = 120) -> np.ndarray:
    """A bright blob doing a label-specific motion over a random textured background."""
    bg = cv2.resize(rng.integers(0, 200, (h // 10, w // 10, 3), dtype=np.uint8), (w, h))
    frames = np.empty((n, h, w, 3), np.uint8)
    x0, y0 = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    for i in range(n):
        t = i / (n - 1)
        x, y, r = x0, y0, 14
        if label == "2_Fingers_Left":      # user's left = image right
            x = x0 + (t - 0.5) * 0.6 * w
        elif label == "2_Fingers_Right":
            x = x0 - (t - 0.5) * 0.6 * w
        elif label == "Shake_Hand":
            x = x0 + 0.15 * w * np.sin(2 * np.pi * 3 * t)
        elif label == "1_Finger_Click":
            r = int(14 + 10 * np.sin(np.pi * 2 * t) ** 2)
        else:
            x, y = x0 + rng.normal(0, 1), y0 + rng.normal(0, 1)
        f = bg.copy()
        cv2.circle(f, (int(x), int(y)), int(r), (230, 230, 255), -1, cv2.LINE_AA)
        frames[i] = f
    return frames


def _write_dataset(root: Path, per_class: int, seed: int = 0, short: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for lab in DEFAULT_LABELS:
        d = root / "Train_Data" / lab
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            frames = _blob_clip(lab, rng, n=int(rng.integers(32, 48)))
            p = d / f"{lab}_{i:03d}.avi"
            wr = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
            for f in frames:
                wr.write(f)
            wr.release()
            rows.append((f"Train_Data/{lab}/{p.name}", lab, len(frames)))
    for i in range(short):  # shorter than one 16-frame clip
        p = root / "Train_Data" / "Shake_Hand" / f"short_{i}.avi"
        wr = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
        for f in _blob_clip("Shake_Hand", rng, n=10):
            wr.write(f)
        wr.release()
        rows.append((f"Train_Data/Shake_Hand/{p.name}", "Shake_Hand", 10))
    meta = root / "meta.csv"
    with open(meta, "w", newline="") as f:
        wcsv = csv.writer(f)
        wcsv.writerow(["file_path", "action", "frame_count"])
        wcsv.writerows(rows)
    return meta


@pytest.fixture(scope="module")
def blob_data(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("blobs"), per_class=10, short=1)


@pytest.mark.timeout(240)
def test_frozen_backbone_trains_a_head_and_cache_is_reused(blob_data, tmp_path, capsys):
    """--weights path: a (random, tiny) Keras-2 C3D file, fc7 cached once, a head trained and written.

    No accuracy bar here: with random backbone weights the head does not generalize (measured:
    ~0.25 clip accuracy on this set, chance 0.2), and no Sports1M file may be used in tests.
    """
    h5 = write_keras2_h5_raw(tmp_path / "c3d.h5", random_c3d_weights(0.06, seed=1))
    out, cache = tmp_path / "model", tmp_path / "cache"
    args = ["train", "--meta", str(blob_data), "--out", str(out), "--weights", str(h5), "--width", "0.06",
            "--epochs", "40", "--cache", str(cache), "--val-split", "0.3"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 clip(s) shorter than 16 frames" in err and "short_0.avi" in err
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert 0.0 <= metrics["clip_accuracy_val"] <= 1.0 and metrics["n_train"] + metrics["n_val"] == 50
    assert np.array(metrics["confusion"]).sum() == metrics["n_val"]
    assert (out / "report" / "confusion.png").stat().st_size > 1000
    spec = json.loads((out / "model.json").read_text())
    assert spec["backbone"]["kind"] == "sports1m" and spec["labels"] == list(DEFAULT_LABELS)
    n_cached = len(list(cache.glob("*.npz")))
    assert n_cached == 50
    # a second head on the same cache, taught to answer 3 frames later: read there (the grid's next window)
    assert main(args[:-4] + ["--out", str(tmp_path / "model2"), "--cache", str(cache), "--val-split", "0.3",
                             "--label-delay", "3"]) == 0
    assert "50 hit(s), 0 computed" in capsys.readouterr().err
    assert json.loads((tmp_path / "model2" / "model.json").read_text())["trained"]["label_delay"] == 3
    m2 = json.loads((tmp_path / "model2" / "report" / "metrics.json").read_text())
    assert np.array(m2["confusion"]).sum() == m2["n_val"]


def test_a_folder_of_label_subfolders_reads_like_a_meta_csv(blob_data, tmp_path):
    """``--meta DIR``: one subfolder per label (under ``Train_Data/`` or not), no CSV; hidden entries
    (``.ipynb_checkpoints``, ``__MACOSX``, macOS's ``._clip.mp4`` forks) are not data."""
    import shutil

    from realtime.dataset import read_meta

    from_csv = read_meta(blob_data, DEFAULT_LABELS)
    d = tmp_path / "mine"
    shutil.copytree(blob_data.parent / "Train_Data", d)
    (d / ".ipynb_checkpoints").mkdir()
    (d / "__MACOSX" / "Shake_Hand").mkdir(parents=True)
    (d / "Shake_Hand" / "._Shake_Hand_000.avi").write_bytes(b"\0\5\x16\7")
    items = read_meta(d, DEFAULT_LABELS)
    key = lambda it: (it.label, it.path.name)   # noqa: E731
    assert sorted(map(key, items)) == sorted(map(key, from_csv))
    assert all(it.path.is_file() and it.path.parent.name == it.label for it in items)
    (d / "Wave").mkdir()
    with pytest.raises(GestureError, match=r"Wave: folder name is not a label"):
        read_meta(d, DEFAULT_LABELS)
    (tmp_path / "none" / "Shake_Hand").mkdir(parents=True)
    with pytest.raises(GestureError, match=r"none: no videos found in label subfolders"):
        read_meta(tmp_path / "none", DEFAULT_LABELS)


def test_train_refuses_to_replace_a_finished_model_unless_told(blob_data, tmp_path, capsys):
    """``--out`` naming a finished model (the bundled one, or hours of one's own training) is refused before
    anything is read; ``--overwrite`` replaces it. A run interrupted there (``.checkpoint``) still resumes."""
    out, *_ = write_tiny_model(tmp_path / "mine", seed=2)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert main(["train", "--meta", str(blob_data), "--out", str(out), "--minutes", "0.1"]) == 2
    err = capsys.readouterr().err
    assert f"gesture: error: {out}: holds a trained model already; training would replace it" in err, err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    missing = str(tmp_path / "no_meta.csv")   # past the guard: the next check is the data's
    assert main(["train", "--meta", missing, "--out", str(out), "--overwrite"]) == 2
    assert "no_meta.csv: meta CSV or dataset folder not found" in capsys.readouterr().err
    (out / ".checkpoint").mkdir()
    assert main(["train", "--meta", missing, "--out", str(out)]) == 2
    assert "no_meta.csv: meta CSV or dataset folder not found" in capsys.readouterr().err
    afile = tmp_path / "model.zip"   # the model is written at the end of the run: its place is checked first
    afile.write_text("not a folder")
    assert main(["train", "--meta", str(blob_data), "--out", str(afile)]) == 2
    assert f"{afile}: --out is a file; give a folder for the model" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_training_data_without_some_gestures_is_warned_about(blob_data, capsys):
    """Retraining on one's own recordings alone (a few clips of one gesture, say) teaches the head that the
    other gestures never happen; the loader says which are missing and how to add rendered ones."""
    from realtime.train import load_dataset

    load_dataset([blob_data], tiny_config(), progress=False)
    assert "warning" not in capsys.readouterr().err
    rows = blob_data.read_text().splitlines()
    some = blob_data.with_name("some.csv")   # beside meta.csv: the same relative paths
    some.write_text("\n".join([rows[0]] + [r for r in rows[1:] if ",Shake_Hand," in r or ",no_gesture," in r]))
    clips, _ = load_dataset([some], tiny_config(), progress=False)
    err = capsys.readouterr().err
    assert {c.item.label for c in clips} == {"Shake_Hand", NO_GESTURE}
    assert "warning: no clips of 1_Finger_Click, 2_Fingers_Left, 2_Fingers_Right: the model will not learn them" in err


@pytest.fixture(scope="module")
def blob_data_20(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("blobs20"), per_class=20, seed=3)


@pytest.mark.timeout(480)
def test_small_backbone_learns_resumes_runs_live_and_fine_tunes(blob_data_20, tmp_path, capsys):
    """The from-scratch path learns: a tiny model trained for ~40 s beats chance (0.2) by far on held-out clips,
    and a run stopped with Ctrl-C in stage 1 resumes where it stopped.

    A fixed number of steps (--epochs: 110 steps of 32 of the 70 training clips), not a wall-time budget,
    so a busy machine cannot fail it.
    """
    out = tmp_path / "small"
    args = ["train", "--meta", str(blob_data_20), "--out", str(out), "--backbone", "small", "--width", "0.06",
            "--epochs", "50", "--val-split", "0.3"]
    state = out / ".checkpoint" / "state.json"

    def ctrl_c_after_the_first_checkpoint():  # written at step 50; KeyboardInterrupt in the main thread
        while not state.exists():
            time.sleep(0.02)
        _thread.interrupt_main()

    # Ctrl-C as a terminal delivers it: a job started in the background (as CI may be) inherits SIGINT
    # ignored, and then interrupt_main does nothing
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c_after_the_first_checkpoint, daemon=True).start()
        assert main(args) == 130
    finally:
        signal.signal(signal.SIGINT, before)
    assert "run the same command to resume" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == [".checkpoint"]  # no model folder from a stopped run
    stopped = json.loads(state.read_text())
    assert 50 <= stopped["step"] < 110 and not stopped["stage1_done"], stopped["step"]
    assert main(args) == 0
    assert f"resuming from {out / '.checkpoint'} at stage-1 step {stopped['step']}" in capsys.readouterr().err
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["stage1_steps"] == 110                     # it went on from the checkpoint, not from 0
    assert metrics["n_val"] == 30 and np.array(metrics["confusion"]).sum() == 30
    assert metrics["clip_accuracy_val"] >= 0.6, metrics["confusion"]   # measured 1.00 (chance 0.20)
    assert (out / "report" / "curves.png").stat().st_size > 1000
    assert f"gesture train --meta {blob_data_20}" in (out / "MODEL_CARD.md").read_text()
    assert state.exists()
    from realtime.modelio import load_model

    m = load_model(out, tiny_config())
    assert m.spec.backbone["input_scale"] == pytest.approx(1 / 64) and not m.untrained
    assert m.spec.backbone["downsample"] == 4
    # the saved model, run by `gesture eval` on full-size crops, scores what training reported
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--meta", str(blob_data_20), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["clip_accuracy"] >= 0.6 and r["mirror_average"] is True  # auto: on for a small backbone
    video = next((blob_data_20.parent / "Train_Data" / "Shake_Hand").glob("*.avi"))
    assert main(["live", "--source", str(video), "--model", str(out), "--headless"]) == 0

    # --init: a model fine-tuned from this one starts where it left off. Two stage-1 steps at the
    # fine-tuning rate leave the backbone close to the one it started from.
    ft = tmp_path / "fine"
    capsys.readouterr()
    # --minutes 2 bounds its head, which --epochs does not count: up to 60 epochs until early stopping (once,
    # under the 25-minute default budget, that ran the test past its timeout)
    assert main(["train", "--meta", str(blob_data_20), "--out", str(ft), "--backbone", "small", "--init", str(out),
                 "--epochs", "1", "--val-split", "0.3", "--minutes", "2"]) == 0
    err = capsys.readouterr().err
    assert f"starting from {out}" in err
    assert float(err.split("fitted on its features (accuracy ")[1].split()[0]) >= 0.6
    fm = json.loads((ft / "report" / "metrics.json").read_text())
    assert fm["clip_accuracy_val"] >= 0.6, fm["confusion"]
    f = load_model(ft, tiny_config())
    w0 = np.concatenate([np.ravel(w) for w in m.backbone.get_weights()])
    w1 = np.concatenate([np.ravel(w) for w in f.backbone.get_weights()])
    moved = float(np.linalg.norm(w1 - w0) / np.linalg.norm(w0))
    assert moved < 0.1, moved  # measured 0.007 (a fresh random backbone is 0.93 away from the bundled one)
    fs = json.loads((ft / "model.json").read_text())
    assert fs["backbone"]["width"] == 0.06 and fs["trained"]["init"]["model"] == str(out)
    assert "fine-tuned from" in (ft / "MODEL_CARD.md").read_text()
    # a flag that disagrees with the model it starts from: one line naming it, nothing written
    assert main(["train", "--meta", str(blob_data_20), "--out", str(tmp_path / "bad"), "--backbone", "small",
                 "--init", str(out), "--width", "0.03", "--epochs", "1"]) == 2
    assert "--width 0.03" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "bad").exists()

    # --head-only: the backbone comes back bit for bit, only the head learned, and it still classifies
    ho = tmp_path / "head_only"
    assert main(["train", "--meta", str(blob_data_20), "--out", str(ho), "--backbone", "small", "--init", str(out),
                 "--head-only", "--val-split", "0.3", "--epochs", "8", "--label-delay", "8"]) == 0
    assert "its backbone unchanged (--head-only)" in capsys.readouterr().err
    h = load_model(ho, tiny_config())
    for a, b in zip(m.backbone.get_weights(), h.backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(m.head.get_weights(), h.head.get_weights()))
    hm = json.loads((ho / "report" / "metrics.json").read_text())
    assert len(hm["history_head"]) <= 8
    assert hm["stage1_steps"] == 0 and hm["clip_accuracy_val"] >= 0.6, hm["confusion"]
    trained = json.loads((ho / "model.json").read_text())["trained"]
    assert trained["init"]["head_only"] is True
    assert trained["label_delay"] == 8      # where its answers are read: 8 and 16 frames after a clip ends
    assert "(`--head-only`)" in (ho / "MODEL_CARD.md").read_text() and not (ho / ".checkpoint").exists()
    assert "answer 8 frames (0.27 s) after a gesture ends (`--label-delay 8`)" in (ho / "MODEL_CARD.md").read_text()
    assert main(["train", "--meta", str(blob_data_20), "--out", str(tmp_path / "bad2"), "--backbone", "small",
                 "--head-only"]) == 2
    assert "--init" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "bad2").exists()


@pytest.mark.timeout(300)
def test_annotated_streams_train_the_head_too(blob_data, tmp_path, capsys):
    from realtime.synth import write_stream

    mp4, csv_path = write_stream(str(tmp_path / "s.mp4"), 0.4, 5, width=320, height=240)
    out = tmp_path / "m"
    args = ["train", "--meta", str(blob_data), "--stream", str(mp4), "--out", str(out), "--backbone", "small",
            "--width", "0.03", "--minutes", "0.1", "--val-split", "0.2", "--downsample", "2", "--batch", "16",
            "--colour-jitter", "0.5"]
    assert main(args) == 0
    err = capsys.readouterr().err
    n_train = int(err.split("streams: ")[1].split(" training")[0])
    assert n_train > 100                                  # 0.4 min = 720 frames: windows every 8 frames, 2 variants
    spec = json.loads((out / "model.json").read_text())
    assert spec["trained"]["streams"] == [str(mp4)]
    assert spec["trained"]["colour_jitter"] == 0.5        # the recipe is saved beside the weights
    assert spec["backbone"]["downsample"] == 2 and "56x56 inside" in (out / "MODEL_CARD.md").read_text()
    hist = json.loads((out / "report" / "metrics.json").read_text())["history_stage1"]
    assert 0.0 <= hist[-1]["val_stream_acc"] <= 1.0       # stage 1 also learned from (and validated on) stream pieces
    Path(csv_path).unlink()                               # a stream without its annotations: one line naming it
    assert main(args) == 2
    assert "s.csv" in capsys.readouterr().err.strip().splitlines()[-1]


def test_stream_pieces_are_labelled_by_the_annotations():
    from realtime.small import StreamPieces

    # frame t carries its own index, so a piece tells where it was cut
    frames = np.broadcast_to(np.arange(1000, dtype=np.int32)[:, None, None, None], (1000, 2, 2, 3))
    spans = [(100, 140, 1), (300, 330, 3), (790, 830, 2)]  # the last one crosses into the validation part
    train = StreamPieces([(frames, spans)], bg=4, clip_len=16, part=(0.0, 0.8), margin=4)
    rng = np.random.default_rng(0)
    near_end, close = [], 0
    for _ in range(400):
        x, y = train.sample(rng, rng.random() < 0.5)
        a, b = int(x[0, 0, 0, 0]), int(x[-1, 0, 0, 0])
        assert b - a == 15 and b < 800                    # 16 consecutive frames of the training part
        inside = {lab: len(set(range(a, b + 1)) & set(range(s, e + 1))) for s, e, lab in spans}
        if y == 4:                                        # no_gesture: at least 4 frames from every gesture
            assert all(b < s - 4 or a > e + 4 for s, e, _ in spans), (a, b)
            close += any(s - 45 <= b and a <= e + 45 for s, e, _ in spans)
        else:                                             # a gesture: 14 of its 16 frames inside it, at its end
            e = {lab: e for _, e, lab in spans}[y]
            assert y in (1, 3) and inside[y] >= 14 and e - 8 <= b <= e + 2, (a, b, y)
            near_end.append(b)
    assert len(set(near_end)) > 10                        # many positions, not one
    assert close > 60                                     # about half the negatives are lead-ins and returns
    val = StreamPieces([(frames, spans)], bg=4, clip_len=16, part=(0.8, 1.0))
    x, y = val.sample(rng, True)                          # the crossing gesture is not whole in either part
    assert y == 4 and int(x[0, 0, 0, 0]) >= 800


def test_stage1_batches_do_not_depend_on_the_number_of_threads():
    """Batch k is drawn from its own generator: 1 or 3 prefetch threads, 2 forked processes, or a resume at k,
    give the same batches."""
    from realtime.config import load_config
    from realtime.small import ClipSampler, Prefetch

    rng = np.random.default_rng(7)
    labels = list(DEFAULT_LABELS)
    clips = [(rng.integers(0, 255, (int(rng.integers(20, 40)), 28, 28, 3), dtype=np.uint8), k % 5) for k in range(15)]
    pre = load_config(None).preprocess

    def draw(workers, start, n, processes=False):
        sampler = ClipSampler(clips, labels, np.random.default_rng(0), 16)
        pf = Prefetch(sampler, 8, pre, seed=3, start=start, workers=workers, processes=processes)
        try:
            return [pf.get() for _ in range(n)]
        finally:
            pf.close()

    one, three, resumed, forked = draw(1, 0, 6), draw(3, 0, 6), draw(2, 4, 2), draw(2, 0, 6, processes=True)
    for (x1, y1), (x3, y3), (xf, yf) in zip(one, three, forked):
        assert x1.shape == (8, 16, 28, 28, 3) and np.array_equal(x1, x3) and np.array_equal(y1, y3)
        assert xf.dtype == x1.dtype and np.array_equal(x1, xf) and np.array_equal(y1, yf)
    assert np.array_equal(resumed[0][0], one[4][0]) and np.array_equal(resumed[1][1], one[5][1])
    assert not np.array_equal(one[0][0], one[1][0])       # and the batches differ from one another


def test_colour_jitter_changes_hue_but_keeps_brightness_and_grey():
    from realtime.windows import augment, recolour

    rng = np.random.default_rng(3)
    skin = np.zeros((4, 8, 8, 3), np.uint8)
    skin[...] = (90, 140, 200)                            # BGR skin tone
    grey = np.full((4, 8, 8, 3), 120, np.uint8)
    hues = set()
    for _ in range(40):
        out = recolour(skin, rng).astype(int)
        assert (out == out[0, 0, 0]).all()                # one transform for every pixel of every frame
        assert abs(out[0, 0, 0].mean() - skin[0, 0, 0].mean()) <= 1.0   # brightness (channel mean) kept
        assert np.abs(recolour(grey, rng).astype(int) - 120).max() <= 1  # grey stays grey
        hues.add(int(np.argmax(out[0, 0, 0])))
    assert len(hues) == 3                                 # the dominant channel is not always red any more
    x = np.random.default_rng(1).integers(0, 255, (6, 28, 28, 3)).astype(np.uint8)
    # off: no random number drawn for it, so recipes without it give the samples they always gave
    assert np.array_equal(augment(x, np.random.default_rng(5)), augment(x, np.random.default_rng(5), colour=0.0))
    assert not np.array_equal(augment(x, np.random.default_rng(5)), augment(x, np.random.default_rng(5), colour=1.0))


@pytest.mark.parametrize("extra, needle", [(["--colour-jitter", "1.5"], "--colour-jitter"),
                                           (["--colour-jitter", "0.5", "--weights", "w.h5"], "--colour-jitter")])
def test_colour_jitter_errors_are_one_line(blob_data, tmp_path, capsys, extra, needle):
    try:
        rc = main(["train", "--meta", str(blob_data), "--out", str(tmp_path / "m"), "--minutes", "0.05", *extra])
    except SystemExit as e:                               # argparse's own one-line usage error
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and not (tmp_path / "m").exists()


def test_strict_makes_a_short_clip_fatal(blob_data, tmp_path, capsys):
    rc = main(["train", "--meta", str(blob_data), "--out", str(tmp_path / "m"), "--backbone", "small",
               "--strict", "--minutes", "0.05"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "short_0.avi" in err[-1] and "--strict" in err[-1]


def test_a_negative_sampler_process_count_is_refused_before_any_work(blob_data, tmp_path, capsys):
    rc = main(["train", "--meta", str(blob_data), "--out", str(tmp_path / "m"), "--backbone", "small",
               "--sampler-procs", "-1", "--minutes", "0.05"])
    assert rc == 2 and not (tmp_path / "m").exists()
    assert capsys.readouterr().err.strip().splitlines()[-1] == "gesture: error: --sampler-procs -1: must be 0 (threads) or more"


def test_eval_meta_json_keys(blob_data, tmp_path, capsys):
    from helpers import write_tiny_model

    d, *_ = write_tiny_model(tmp_path / "tiny")
    assert main(["eval", "--model", str(d), "--meta", str(blob_data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_clips"] == 50 and 0.0 <= out["clip_accuracy"] <= 1.0
    assert set(out["per_class"]) == set(DEFAULT_LABELS)
    assert np.array(out["confusion"]).sum() == 50
