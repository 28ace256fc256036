"""The synthetic gesture renderer: shapes, determinism, file layout, stream labels, direction."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime import synth
from realtime.config import DEFAULT_LABELS, GESTURES, NO_GESTURE


def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def _flow_x(frames: np.ndarray) -> float:
    """Net horizontal optical flow of a clip (positive: things move toward larger x), measured
    from the pixels only."""
    g = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (160, 120), interpolation=cv2.INTER_AREA) for f in frames]
    tot = 0.0
    for a, b in zip(g, g[1:]):
        fl = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        m = np.hypot(fl[..., 0], fl[..., 1]) > 0.5
        if m.sum() > 20:
            tot += float(fl[..., 0][m].sum())
    return tot / (160 * 120)


@pytest.mark.parametrize("label", DEFAULT_LABELS)
def test_render_clip_shape_dtype_and_length(label):
    rng = np.random.default_rng(11)
    clip = synth.render_clip(label, rng, width=160, height=120)
    assert clip.dtype == np.uint8 and clip.ndim == 4
    assert clip.shape[1:] == (120, 160, 3)
    T = clip.shape[0]
    if label == NO_GESTURE:
        assert 45 <= T <= 135
    else:  # 0.6-2.5 s of motion + 0-10 lead-in + 0-10 lead-out frames at 30 fps
        assert 18 <= T <= 75 + 20
    assert clip.std() > 2.0  # not a blank image


def test_render_clip_other_size_and_fps():
    clip = synth.render_clip("Shake_Hand", np.random.default_rng(3), width=96, height=128, fps=15.0)
    assert clip.shape[1:] == (128, 96, 3)
    assert 9 <= clip.shape[0] <= 38 + 20


def test_render_clip_deterministic_per_seed():
    a = synth.render_clip("1_Finger_Click", np.random.default_rng(42), width=160, height=120)
    b = synth.render_clip("1_Finger_Click", np.random.default_rng(42), width=160, height=120)
    c = synth.render_clip("1_Finger_Click", np.random.default_rng(43), width=160, height=120)
    assert a.shape == b.shape and np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_unknown_label_rejected():
    with pytest.raises(ValueError):
        synth.render_clip("Thumbs_Up", np.random.default_rng(0))


def test_every_no_gesture_behaviour_renders():
    """Each no_gesture behaviour (idle, drift, fidget, enter, leave, ..., distractors) runs and draws."""
    for k, kind in enumerate(synth._NG_BEHAVIOURS):
        rng = np.random.default_rng(100 + k)
        scene = synth._Scene(rng, 160, 120, 30.0)
        lm = synth._no_gesture(rng, scene, 60, kind=kind)
        assert lm.shape == (60, 21, 3)
        if kind == "empty":
            assert np.isnan(lm).all()
        elif kind in ("idle", "drift", "fidget", "reposition"):
            assert np.isfinite(lm).all()
        elif kind == "enter":
            assert np.isnan(lm[0]).all() and np.isfinite(lm[-1]).all()
        elif kind == "leave":
            assert np.isfinite(lm[0]).all() and np.isnan(lm[-1]).all()
        prev = None
        for t in (0, 30, 59):
            f = scene.render(t, lm[t], prev)
            prev = lm[t]
            assert f.shape == (120, 160, 3) and f.dtype == np.uint8


def test_real_trajectories_are_bundled():
    assert synth.LANDMARK_DIR.is_dir()
    assert "shared" not in synth.LANDMARK_DIR.parts
    assert (synth.LANDMARK_DIR / "index.csv").is_file()
    assert "MIT License" in (synth.LANDMARK_DIR / "README.md").read_text()
    real = synth._load_real()
    for g in GESTURES:
        assert len(real[g]) >= 6
        for trk in real[g]:
            assert trk.ndim == 3 and trk.shape[1:] == (21, 3) and np.isfinite(trk).all()
            assert np.abs(trk).sum(axis=(1, 2)).min() > 0  # gaps interpolated, no all-zero rows


def test_direction_convention_from_pixels():
    """2_Fingers_Left moves toward the image's right edge, 2_Fingers_Right toward its left edge."""
    seeds = range(6)
    for label, sign in (("2_Fingers_Left", +1.0), ("2_Fingers_Right", -1.0)):
        flows = np.array([_flow_x(synth.render_clip(label, np.random.default_rng(s))) for s in seeds]) * sign
        assert (flows > 0).sum() >= 5, (label, flows)
        assert flows.mean() > 0, (label, flows)


def test_stream_deterministic_and_segments():
    def run(seed, n):
        st = synth.SyntheticStream(seed, width=160, height=120, gap_s=(1.0, 2.0))
        frames = np.stack([st.read() for _ in range(n)])
        return st, frames

    n = 300
    st, a = run(5, n)
    _, b = run(5, n)
    _, c = run(6, n)
    assert a.shape == (n, 120, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert st.frame_index == n
    assert len(st.segments) >= 2
    last_end = -1
    for label, s, e in st.segments:
        assert label in GESTURES
        assert last_end < s <= e
        assert s < n
        last_end = e


def test_write_clips_layout_and_meta(tmp_path):
    meta = synth.write_clips(tmp_path / "a", per_class=1, seed=7, width=128, height=96, workers=1, progress=False)
    assert meta == tmp_path / "a" / "meta.csv"
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == ["file_path", "action", "frame_count"]
    assert sorted(r["action"] for r in rows) == sorted(DEFAULT_LABELS)
    for r in rows:
        assert r["file_path"] == f"Train_Data/{r['action']}/{r['action']}_00000.mp4"
        frames = _read_video(meta.parent / r["file_path"])
        assert len(frames) == int(r["frame_count"]) > 0
        assert frames[0].shape == (96, 128, 3)
    assert not list((tmp_path / "a").rglob("*.tmp*"))
    # the same clips with two worker processes
    meta2 = synth.write_clips(tmp_path / "b", per_class=1, seed=7, width=128, height=96, workers=2, progress=False)
    assert meta2.read_text() == meta.read_text()
    r = rows[0]["file_path"]
    assert np.array_equal(np.stack(_read_video(meta.parent / r)), np.stack(_read_video(meta2.parent / r)))


def test_write_clips_never_replaces_a_dataset_it_did_not_render(tmp_path):
    """``gesture synth clips --out recordings`` once replaced the user's recordings index (their rows, with
    what the model had said) by the rendered one. A rendered dataset may be rendered again; another is refused
    before anything is rendered, and stays as it was."""
    from realtime.errors import GestureError

    meta = synth.write_clips(tmp_path / "a", per_class=1, seed=7, width=64, height=48, workers=1, progress=False)
    synth.write_clips(tmp_path / "a", per_class=1, seed=8, width=64, height=48, workers=1, progress=False)
    recorded = tmp_path / "recordings"
    (recorded / "Train_Data" / "Shake_Hand").mkdir(parents=True)
    mine = ("file_path,action,frame_count,predicted,confidence,recorded_at\n"
            "Train_Data/Shake_Hand/20261207T061950_742179.mp4,Shake_Hand,30,,,2026-12-07T06:19:50.742+00:00\n")
    (recorded / "meta.csv").write_text(mine)
    with pytest.raises(GestureError, match=r"recordings/meta\.csv: not a rendered dataset \(its header is "
                                           r"file_path,action,frame_count,predicted,"):
        synth.write_clips(recorded, per_class=1, seed=7, workers=1, progress=False)
    assert (recorded / "meta.csv").read_text() == mine and not list((recorded / "Train_Data").rglob("*.mp4"))
    with open(meta, "a") as f:
        f.write("../mine/clip.mp4,Shake_Hand,40\n")   # a rendered index a user added a clip of theirs to
    with pytest.raises(GestureError, match=r"it lists 1 clip\(s\) gesture synth did not render, the first "
                                           r"\.\./mine/clip\.mp4"):
        synth.write_clips(tmp_path / "a", per_class=1, seed=7, workers=1, progress=False)


def test_write_stream_video_and_csv(tmp_path):
    mp4, csv_path = synth.write_stream(tmp_path / "s.mp4", minutes=0.2, seed=3, width=128, height=96,
                                       progress=False)
    assert mp4 == tmp_path / "s.mp4" and csv_path == tmp_path / "s.csv"
    n = len(_read_video(mp4))
    assert n == 360
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0].keys()) == ["label", "start_frame", "end_frame"]
    for r in rows:
        assert r["label"] in GESTURES
        assert 0 <= int(r["start_frame"]) <= int(r["end_frame"]) < n


@pytest.mark.parametrize("p_real", [0.0, 1.0])
def test_handedness_mirrors_shape_not_motion(p_real):
    """A left hand is the right hand's shape mirrored about its own axis; the wrist path is the same."""
    for label in GESTURES:
        tracks = []
        for h in (1.0, -1.0):
            ctx = synth._Ctx(320, 240, 30.0, h, 40.0)
            tracks.append(synth._gesture_track(np.random.default_rng(9), label, ctx, p_real=p_real))
        (a, ma), (b, mb) = tracks
        assert ma == mb and a.shape == b.shape
        wa, wb = a[:, 0, :2] - a[0, 0, :2], b[:, 0, :2] - b[0, 0, :2]
        np.testing.assert_allclose(wa, wb, atol=1e-6)
        # opposite chirality: sign of det[index MCP, pinky MCP, thumb tip] (relative to the wrist)

        def chirality(lm):
            m = np.stack([lm[:, 5] - lm[:, 0], lm[:, 17] - lm[:, 0], lm[:, 4] - lm[:, 0]], axis=1)
            return np.sign(np.linalg.det(m))

        assert (chirality(a) != chirality(b)).mean() > 0.9
    # and the swipe direction does not depend on the hand
    for h in (1.0, -1.0):
        ctx = synth._Ctx(320, 240, 30.0, h, 40.0)
        lm, m = synth._proc_swipe(np.random.default_rng(1), ctx, +1)
        assert lm[m, 0, 0] > lm[0, 0, 0]
        lm, m = synth._proc_swipe(np.random.default_rng(1), ctx, -1)
        assert lm[m, 0, 0] < lm[0, 0, 0]


def test_gesture_synth_stream_at_another_frame_rate(tmp_path, capsys):
    from realtime.cli import main

    out = tmp_path / "s15.mp4"
    assert main(["synth", "stream", "--out", str(out), "--minutes", "0.1", "--seed", "3", "--fps", "15",
                 "--width", "96", "--height", "72"]) == 0
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    cap.release()
    assert len(_read_video(out)) == 90  # 6 seconds at 15 fps
    capsys.readouterr()
    assert main(["synth", "stream", "--out", str(tmp_path / "x.mp4"), "--minutes", "0.1", "--fps", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gesture: error: --fps 0: must be between 1 and 240"
    assert not (tmp_path / "x.mp4").exists()


def _restyle():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "restyle_stream.py"
    spec = importlib.util.spec_from_file_location("restyle_stream", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_restyled_stream_has_the_renderers_motion_in_another_look():
    restyle = _restyle()
    n = 240
    real = synth.SyntheticStream(5)
    shown, motion = [], []
    for _ in range(n):
        shown.append(real.read())
        motion.append(real.landmarks)          # the landmarks the renderer painted this frame
    planned = [lm for _, (_, lm) in zip(range(n), restyle.plan(5))]
    for a, b in zip(motion, planned):          # the same hand, frame for frame: S.csv scores it too
        assert (a is None and b is None) or np.array_equal(a, b, equal_nan=True)
    drawn = list(restyle.frames(5, n, glove=False, progress=False))
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in drawn)
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(drawn, shown)]) > 20   # not the same painter
    # the hand is painted where the landmarks put it: the palm's centre has the hand's colour
    k = next(i for i, lm in enumerate(planned) if lm is not None and np.isfinite(lm).all()
             and (lm[:, :2] >= 0).all() and (lm[:, 0] < 320).all() and (lm[:, 1] < 240).all())
    x, y = planned[k][list(restyle.PALM), :2].mean(0).astype(int)
    look = restyle.Look(np.random.default_rng(0), 320, 240, glove=True)
    hand = restyle.paint(look, planned[k], np.random.default_rng(1))
    assert np.abs(hand[y, x].astype(float) - look.hand).max() < 20


def test_restyled_look_seed_keeps_one_look_across_scenes_and_videos():
    restyle = _restyle()
    n = 1900                                   # 63 s: past the first scene cut (every 20-60 s)

    def corner(seed, look_seed, n=n):          # the room's colour where no hand goes, median over frames
        fr = [f[:6, :6].reshape(-1, 3) for f in restyle.frames(seed, n, glove=False, progress=False,
                                                               look_seed=look_seed)]
        return np.array([np.median(np.concatenate(fr[i : i + 30]), 0) for i in range(0, n - 29, 300)])

    one5, one6 = corner(5, 3), corner(6, 3, n=30)
    assert np.abs(one5 - one5[0]).max() < 6                 # one look throughout, cuts and all
    assert np.abs(one5[0] - one6[0]).max() < 6              # and the same look in another video
    cuts = corner(5, None)
    assert np.abs(cuts - cuts[0]).max() > 20                # without it, a new room at a scene cut


def test_stream_details_describe_each_gestures_motion_from_its_landmarks():
    """``details`` (one per segment) is what the painted hand did: hand size and fingertip travel from the very
    landmarks ``advance()`` hands to the painter, and a motion source; planning them leaves the stream as it was."""
    st = synth.SyntheticStream(3)
    lms = np.stack([st.advance() for _ in range(3000)])
    assert len(st.details) == len(st.segments) >= 15
    for (label, a, b), d in zip(st.segments, st.details):
        if b >= len(lms):
            continue
        seg = lms[a : b + 1]
        assert np.isfinite(seg).all(), (label, a, b)
        assert d["palm_px"] == pytest.approx(float(np.median(synth._palm_size(seg))), abs=0.01)
        assert d["travel_x_px"] == pytest.approx(float(seg[:, 8, 0].max() - seg[:, 8, 0].min()), abs=0.01)
    assert {d["motion"] for d in st.details} == {"real", "procedural"}
    again = synth.SyntheticStream(3)
    for _ in range(3000):
        again.advance()
    assert again.segments == st.segments and again.details == st.details
