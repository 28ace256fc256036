"""scripts/degrade_stream.py: the worse-camera copies the robustness numbers in the docs are measured on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "degrade_stream.py"
_spec = importlib.util.spec_from_file_location("degrade_stream", SCRIPT)
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)
degrade = _script.degrade


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return np.array(out)
        out.append(f)


def _stream(tmp_path, n=12):
    src = tmp_path / "s.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    for i in range(n):                       # a flat grey room with a bright bar moving right
        f = np.full((48, 64, 3), 120, np.uint8)
        f[:, 3 * i : 3 * i + 8] = 220
        vw.write(f)
    vw.release()
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,2,9\n")
    return src


def _bar(frame):
    """Where the 8-pixel bright bar is: the left column of the brightest 8 columns."""
    return int(np.argmax(np.convolve(frame.mean(axis=(0, 2)), np.ones(8), "valid")))


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_darker_noisier_copy_with_the_same_frames_and_annotations(tmp_path):
    src = _stream(tmp_path)
    r = _run(src, tmp_path / "dark.mp4", "--exposure", 0.5)
    assert r.returncode == 0, r.stderr
    a, d = _frames(src).astype(float), _frames(tmp_path / "dark.mp4").astype(float)
    assert a.shape == d.shape == (12, 48, 64, 3)
    assert abs(d.mean() / a.mean() - 0.5) < 0.02
    # the bar is still where it was in every frame
    assert [_bar(f) for f in d] == [_bar(f) for f in a] == [3 * i for i in range(12)]
    assert (tmp_path / "dark.csv").read_text() == (tmp_path / "s.csv").read_text()

    r = _run(src, tmp_path / "n1.mp4", "--noise", 10, "--seed", 3)
    r2 = _run(src, tmp_path / "n2.mp4", "--noise", 10, "--seed", 3)
    assert r.returncode == r2.returncode == 0, r.stderr + r2.stderr
    n1, n2 = _frames(tmp_path / "n1.mp4").astype(float), _frames(tmp_path / "n2.mp4").astype(float)
    assert np.array_equal(n1, n2)                          # one seed, one copy
    assert 5 < np.std(n1[:, :, 40:] - a[:, :, 40:]) < 15  # noise of about the asked sigma (the codec smooths some)


def test_low_light_keeps_the_brightness_and_amplifies_the_noise():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 100, np.uint8)
    low = degrade(flat, rng, exposure=0.4, noise=3.0, gain=2.5).astype(float)
    assert abs(low.mean() - 100) < 1.5 and 6.0 < low.std() < 9.0   # 3 levels of read noise, times 2.5
    blurred = degrade(np.tile(np.array([0, 255], np.uint8).repeat(8), (64, 4))[..., None].repeat(3, -1), rng, blur=3)
    assert blurred.std() < 100                                      # edges of 0/255 stripes softened
    q = degrade(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8), rng, jpeg=10)
    assert q.shape == (64, 64, 3) and q.dtype == np.uint8


def test_flickering_light_is_bands_that_roll_from_frame_to_frame():
    """``--flicker 0.1``: a flat wall under 100 Hz light read by a rolling shutter: rows 10% brighter and darker in
    bands (2.5 light cycles over the 25 ms readout), at other rows in the next frame 1/30 s later."""
    rng = np.random.default_rng(0)
    flat = np.full((240, 320, 3), 100, np.uint8)
    first, second = (degrade(flat, rng, flicker=0.1, t=t).mean(axis=(1, 2)) for t in (0.0, 1 / 30))
    assert 108 < first.max() <= 110.5 and 89.5 <= first.min() < 92 and abs(first.mean() - 100) < 1
    side = np.sign(first - 100)
    crossings = np.count_nonzero(np.diff(side[side != 0]))        # rows rounded to 100 exactly on neither side
    assert 4 <= crossings <= 6                                      # 2.5 cycles down the frame
    assert np.abs(first - second).max() > 10                        # the bands moved
    assert (degrade(flat, rng, flicker=0.0, t=0.3) == flat).all()   # no flicker, no change


def test_sixty_hertz_mains_bands_stand_still():
    """``--light-hz 120``: 120 Hz light is 4 whole cycles a frame at 30 fps, so the bands are in the same rows in
    every frame (3 cycles down the frame)."""
    rng = np.random.default_rng(0)
    flat = np.full((240, 320, 3), 100, np.uint8)
    first, second = (degrade(flat, rng, flicker=0.1, t=t, light_hz=120.0).mean(axis=(1, 2)) for t in (0.0, 1 / 30))
    assert first.max() > 108 and first.min() < 92
    assert np.abs(first - second).max() <= 1                      # standing still
    side = np.sign(first - 100)
    assert 5 <= np.count_nonzero(np.diff(side[side != 0])) <= 7


def test_white_balance_and_a_hunting_exposure():
    rng = np.random.default_rng(0)
    flat = np.full((8, 8, 3), 100, np.uint8)
    warm = degrade(flat, rng, tint=(0.65, 1.0, 1.3))
    assert warm[0, 0].tolist() == [65, 100, 130]                  # B, G, R
    levels = [degrade(flat, rng, ae=0.3, t=t).mean() for t in (0.0, 0.75, 1.5, 2.25)]  # every quarter swing of 3 s
    assert [round(v) for v in levels] == [100, 130, 100, 70]


def test_camera_shake_moves_the_picture_smoothly(tmp_path):
    """``--shake P``: the picture is moved, not changed; the offset is about P pixels rms and changes a little
    from one frame to the next (a wobble, not a jump); one seed, one wobble."""
    xy = _script.shake(4.0, 30.0, 3000, np.random.default_rng(5))
    assert xy.shape == (3000, 2) and abs(np.sqrt((xy ** 2).sum(axis=1).mean()) - 4.0) < 1e-6
    assert np.abs(np.diff(xy, axis=0)).max() < 2.4 < 8.0 < np.abs(xy).max()   # a wobble, not jumps
    bar = np.full((48, 64, 3), 120, np.uint8)
    bar[:, 20:28] = 220
    moved = degrade(bar, np.random.default_rng(0), offset=(5.0, -2.0))
    assert _bar(moved) == 25 and moved.shape == bar.shape
    src = _stream(tmp_path)
    runs = [_run(src, tmp_path / f"k{i}.mp4", "--shake", 3, "--seed", 2) for i in (1, 2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    k1, k2 = _frames(tmp_path / "k1.mp4"), _frames(tmp_path / "k2.mp4")
    assert np.array_equal(k1, k2) and not np.array_equal(k1, _frames(src))


def test_hold_writes_each_picture_as_many_times(tmp_path):
    """``--hold 3``: a camera at a third of the file's rate; frames 3k+1 and 3k+2 repeat frame 3k (the bar stands
    still there) and frame 3k+3 is the source's own frame 3k+3 again. Same count, same annotations."""
    src = _stream(tmp_path)
    r = _run(src, tmp_path / "h.mp4", "--hold", 3)
    assert r.returncode == 0, r.stderr
    h = _frames(tmp_path / "h.mp4")
    assert h.shape == (12, 48, 64, 3) and [_bar(f) for f in h] == [3 * (i - i % 3) for i in range(12)]
    assert (tmp_path / "h.csv").read_text() == (tmp_path / "s.csv").read_text()
    r = _run(src, tmp_path / "o.mp4", "--hold", 0)
    assert r.returncode == 2 and "argument --hold: expected a whole number from 1 to 30, got '0'" in r.stderr


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    r = _run(tmp_path / "none.mp4", tmp_path / "o.mp4")
    assert r.returncode == 1 and r.stderr.strip() == f"{tmp_path / 'none.mp4'}: not found"
    assert not (tmp_path / "o.mp4").exists()
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    (tmp_path / "junk.csv").write_text("label,start_frame,end_frame\n")
    r = _run(tmp_path / "junk.mp4", tmp_path / "o.mp4")
    assert r.returncode == 1 and r.stderr.strip() == f"{tmp_path / 'junk.mp4'}: not a readable video"
    src = _stream(tmp_path)
    r = _run(src, tmp_path / "o.mp4", "--jpeg", 0)
    assert r.returncode == 2 and "argument --jpeg: expected a whole number from 1 to 100, got '0'" in r.stderr
    for bad in ("-1", "nan", "inf"):
        r = _run(src, tmp_path / "o.mp4", "--exposure", bad)
        assert r.returncode == 2 and f"argument --exposure: expected a number >= 0, got '{bad}'" in r.stderr
    r = _run(src, tmp_path / "o.mp4", "--tint", "1,1")
    assert r.returncode == 2 and "argument --tint: three gains B,G,R, got '1,1'" in r.stderr
    r = _run(src, tmp_path / "o.mp4", "--light-hz", "0")
    assert r.returncode == 2 and "argument --light-hz: expected a frequency > 0, got '0'" in r.stderr
    assert not (tmp_path / "o.mp4").exists()
