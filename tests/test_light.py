"""realtime/light.py: what the overlay and the run's summary say about the room's light."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import banded_scene as _scene  # noqa: E402
from helpers import light_bands as _bands  # noqa: E402

from realtime.deflicker import Deflicker  # noqa: E402
from realtime.light import NOTICE, OK, PROBLEM, LightMeter, band_depth  # noqa: E402


def test_band_depth_is_half_the_spread_of_the_row_gains():
    assert abs(band_depth(_bands(0, 0.1, 2000)) - 0.1) < 1e-3
    assert band_depth(np.ones(112)) == 0.0


def test_the_level_names_a_dim_room_and_one_too_dark_for_the_gain():
    m = LightMeter(min_level=55)
    assert m.update(100).text == "ok" and m.state.severity == OK
    for _ in range(60):                  # the light goes down to a third: brightened, said with its gain
        m.update(30)
    assert m.state.text == "dim: gain 1.8x" and m.state.severity == NOTICE
    for _ in range(60):                  # below what 4x can bring up to 55
        m.update(8)
    assert m.state.text == "too dark: add light" and m.state.severity == PROBLEM
    for _ in range(60):
        m.update(120)
    assert m.state.text == "ok"
    assert m.counts["dim"] > 0 and m.counts["dark"] > 0 and sum(m.counts.values()) == 181
    assert LightMeter(min_level=0).update(3).text == "ok"   # min_level 0: no gain, nothing to say about the level


def test_rolling_bands_are_named_after_a_while_and_a_clean_picture_is_not():
    """The meter fed with a real Deflicker's row gains: rolling bands 10% deep are named within 2 s and no longer
    once they are gone; a moving hand without bands, never."""
    d, m = Deflicker(), LightMeter(min_level=55)
    for t in range(90):
        d.apply(_scene(t))
        assert m.update(100.0, d.gains).key == "ok", t
    said = None
    for t in range(90, 180):
        crop = np.clip(_scene(t) * _bands(t, 0.1)[:, None, None], 0, 255).astype(np.uint8)
        d.apply(crop)
        if m.update(100.0, d.gains).key == "flicker" and said is None:
            said = t - 90
    assert said is not None and said < 60, said
    assert m.state.text == "flicker: set mains Hz" and m.state.severity == NOTICE
    for t in range(180, 360):
        d.apply(_scene(t))
        m.update(100.0, d.gains)
    assert m.state.key == "ok"


def test_the_summary_speaks_only_when_the_light_was_a_problem_for_a_while():
    m = LightMeter(min_level=55)
    for _ in range(100):
        m.update(100)
    assert m.summary() is None
    for _ in range(60):     # the level follows over half a second: about 35 of these frames read as too dark
        m.update(2)
    line = m.summary()
    assert line.startswith("light: ") and "% of frames too dark for the camera's gain" in line, line
    assert m.summary(at_least=0.5) is None
    assert LightMeter(55).summary() is None               # nothing seen yet
