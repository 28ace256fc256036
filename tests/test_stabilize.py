"""realtime/stabilize.py: a shaking camera's wobble followed by the crop window; a still camera left alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.config import PreprocessConfig  # noqa: E402
from realtime.preprocess import crop_frame  # noqa: E402
from realtime.stabilize import Stabilizer  # noqa: E402

PRE = PreprocessConfig(min_level=0)


def test_a_wobbling_camera_is_held_still_in_the_crops():
    """A camera wobbling 3 px rms (at 320x240, over about 0.3 s), a hand crossing in front: from one crop to the
    next the room moves under two thirds as much in the stabilised crops as in the plain ones, and the hand still
    crosses them."""
    frames, _ = helpers.shaking_camera(120, 3.0, seed=1)
    st = Stabilizer(30.0)
    plain = [crop_frame(f, PRE) for f in frames]
    held = [crop_frame(f, PRE, stabilizer=st) for f in frames]
    still, moving = helpers.room_motion(held[40:]), helpers.room_motion(plain[40:])
    assert still < 0.65 * moving, (still, moving)
    hand = [int(np.argmax((c[60:70, :, 2] > 200).sum(axis=0) > 5)) for c in (held[40], held[110])]
    assert hand[1] - hand[0] > 15, hand                    # the hand's own motion is kept


def test_a_still_camera_with_a_moving_hand_is_left_alone():
    """No wobble: a hand sweeping across the picture, 3 px a frame, does not make the window follow it (it moves
    under a tenth of a pixel: the room, in most of the tiles, holds it), and where it does not move at all the crop
    is the plain one, bit for bit."""
    frames, _ = helpers.shaking_camera(90, 0.0, seed=2)
    frames[:, 90:170] = frames[0, 90:170]                  # the slow hand away: a faster one
    for i in range(90):
        frames[i, 80:180, 20 + 3 * i : 80 + 3 * i] = (150, 170, 210)
    st = Stabilizer(30.0)
    moved = np.array([st.shift(f, PRE.resize) for f in frames])
    assert np.abs(moved).max() < 0.1, np.abs(moved).max()
    assert crop_frame(frames[0], PRE, stabilizer=Stabilizer(30.0)).tobytes() == crop_frame(frames[0], PRE).tobytes()


def test_a_cut_starts_again_instead_of_jumping():
    """Another room from one frame on (a cut, another camera): the window does not jump, and it follows the new
    room's wobble after it."""
    first, _ = helpers.shaking_camera(30, 0.0, seed=3, hand=False)
    second, _ = helpers.shaking_camera(120, 3.0, seed=4, hand=False)
    shifts, held = Stabilizer(30.0), Stabilizer(30.0)     # fed the same frames: one says its shifts, one crops
    for f in first:
        shifts.shift(f, PRE.resize)
        crop_frame(f, PRE, stabilizer=held)
    out = np.array([shifts.shift(f, PRE.resize) for f in second])
    assert np.abs(out[:5]).max() < 0.5, out[:5]
    stable = [crop_frame(f, PRE, stabilizer=held) for f in second]
    plain = [crop_frame(f, PRE) for f in second]
    assert helpers.room_motion(stable[40:]) < 0.65 * helpers.room_motion(plain[40:])
