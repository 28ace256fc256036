"""realtime/deflicker.py: rolling light bands divided out of the crops, a picture without them left alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import banded_scene as _scene  # noqa: E402
from helpers import light_bands as _bands  # noqa: E402

from realtime.deflicker import Deflicker  # noqa: E402


def _row_ripple(crop: np.ndarray, clean: np.ndarray) -> float:
    """How far the crop's rows are from the clean picture's, as a gain: max |row mean ratio - 1| off the hand."""
    a = crop[:, 60:].astype(float).mean(axis=(1, 2)) + 4
    b = clean[:, 60:].astype(float).mean(axis=(1, 2)) + 4
    return float(np.abs(a / b - 1).max())


def test_rolling_bands_are_taken_out_after_a_few_frames():
    d = Deflicker()
    ripple_in, ripple_out = [], []
    for t in range(30):
        clean = _scene(t)
        banded = np.clip(clean * _bands(t, 0.1)[:, None, None], 0, 255).astype(np.uint8)
        ripple_in.append(_row_ripple(banded, clean))
        ripple_out.append(_row_ripple(d.apply(banded.copy()), clean))
    assert min(ripple_in[10:]) > 0.08
    # a tenth-deep band down to under half: what is left is the running average's own trace of the bands
    # (about an eighth of them) and their smoothing over rows
    assert max(ripple_out[10:]) < 0.05 and np.mean(ripple_out[10:]) < 0.04, ripple_out


def test_a_picture_without_bands_is_left_as_it_is_and_its_motion_kept():
    d = Deflicker()
    out = []
    for t in range(30):
        clean = _scene(t)
        got = d.apply(clean.copy())
        assert _row_ripple(got, clean) < 0.02
        assert np.abs(got.astype(int) - clean).max() <= 12
        out.append(got)
    # the hand still moves 2 pixels a frame: the frame difference is where the block's edges are
    diff = np.abs(out[20].astype(int) - out[19]).mean(axis=2)
    cols = np.nonzero(diff[40:70].mean(axis=0) > 50)[0]
    assert set(cols) <= {48, 49, 68, 69} and len(cols) >= 2, cols


def test_reset_starts_the_running_average_again():
    d = Deflicker()
    for t in range(5):
        d.apply(_scene(t))
    d.reset()
    dark = (_scene(0) // 2).astype(np.uint8)
    assert np.allclose(d.row_gains(dark), 1.0)   # the first crop after a reset is its own reference


def test_a_cut_or_a_light_switched_on_is_not_taken_for_bands():
    """A new scene (a cut) starts the running average again, and a whole picture getting brighter is the
    picture's own: neither is divided out."""
    d = Deflicker()
    for t in range(10):
        d.apply(_scene(t))
    other = np.ascontiguousarray(_scene(10)[::-1, ::-1])     # another room: far from the running average
    assert np.allclose(d.row_gains(other), 1.0)
    brighter = np.clip(_scene(11).astype(float) * 1.1, 0, 255).astype(np.uint8)
    assert np.abs(d.row_gains(brighter) - 1.0).max() < 0.02
