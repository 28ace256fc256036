"""What the room's light does to the model, told to the user (the overlay's "light" row, ``gesture live``'s summary).

Two things about the light cost the bundled model gestures and are the user's to fix, not the model's
(docs/ablation.md, "Session 27"): a room so dark that ``preprocess.min_level``'s gain (at most
``preprocess.MAX_GAIN`` times) cannot bring the crop up to the level it learned at, and rolling light bands
from LED or fluorescent light on 50 Hz mains, which ``capture.deflicker`` takes out of the picture but which a
camera set to the mains frequency never shows. :class:`LightMeter` follows both from what the capture thread
already has, the crop's mean grey level before the gain (over about half a second) and the row gains deflicker
found (over two: a cut or a fast hand moves them for a frame or two, and on 8,000 frames of two rendered
validation streams without bands their average never reached the 5% that names the bands, while bands 10% deep
sat at 8%; docs/ablation.md, "Session 28"), and names the worst in a few words. Pure: the caller feeds it,
frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .preprocess import MAX_GAIN

LEVEL_FRAMES = 15.0    # the level is followed over about this many frames (0.5 s at 30 fps) ...
DEPTH_FRAMES = 60.0    # ... the band depth over 2 s (a cut or a fast hand moves the row gains for a frame or two)
FLICKER_ON = 0.05      # band depth (half the spread of the row gains) at which the bands are named ...
FLICKER_OFF = 0.035    # ... and below which they are no longer (no blinking between the two)
DARK_MARGIN = 0.9      # "too dark" once the level is below 90% of what the largest gain can bring up to min_level

OK, NOTICE, PROBLEM = 0, 1, 2   # how bad: white, yellow, red


@dataclass(frozen=True)
class LightState:
    text: str        # a few words for the overlay: "ok", "dim: gain 2.1x", "too dark: add light", "flicker: set mains Hz"
    severity: int    # OK, NOTICE or PROBLEM
    key: str         # "ok", "dim", "dark" or "flicker": what the summary counts


def band_depth(gains: np.ndarray) -> float:
    """How deep rolling light bands are, from deflicker's row gains: half their spread (0.1 for bands 10% deep)."""
    return float(gains.max() - gains.min()) / 2.0


class LightMeter:
    """Fed once a frame with ``update(level, gains)``; ``state`` says what the light is like now, ``counts`` how
    many frames were in each state (``key``)."""

    def __init__(self, min_level: float):
        self.min_level = float(min_level)
        self.level: float | None = None
        self.depth = 0.0
        self._flicker = False
        self.counts = {"ok": 0, "dim": 0, "dark": 0, "flicker": 0}
        self.state = LightState("-", OK, "ok")

    def update(self, level: float, gains: np.ndarray | None = None) -> LightState:
        """``level``: the crop's mean grey (0-255) before ``preprocess.min_level``'s gain; ``gains``: deflicker's
        row gains for it (None when deflicker is off)."""
        self.level = level if self.level is None else self.level + (level - self.level) / LEVEL_FRAMES
        if gains is not None:
            self.depth += (band_depth(gains) - self.depth) / DEPTH_FRAMES
            self._flicker = self.depth >= (FLICKER_OFF if self._flicker else FLICKER_ON)
        self.state = self._judge()
        self.counts[self.state.key] += 1
        return self.state

    def _judge(self) -> LightState:
        lo = self.min_level
        if lo > 0 and self.level < DARK_MARGIN * lo / MAX_GAIN:
            return LightState("too dark: add light", PROBLEM, "dark")
        if self._flicker:
            return LightState("flicker: set mains Hz", NOTICE, "flicker")
        if lo > 0 and self.level < lo:
            return LightState(f"dim: gain {min(lo / max(self.level, 1.0), MAX_GAIN):.1f}x", NOTICE, "dim")
        return LightState("ok", OK, "ok")

    def summary(self, at_least: float = 0.1) -> str | None:
        """One line for the end of a run when the light was a problem for ``at_least`` of its frames, else None."""
        n = sum(self.counts.values())
        if n == 0:
            return None
        said = {
            "dark": "too dark for the camera's gain (add light, or turn the camera's exposure up)",
            "flicker": ("rolling light bands from LED or fluorescent light (set the camera's power-line frequency "
                        "to the mains', e.g. v4l2-ctl -c power_line_frequency=1 for 50 Hz, 2 for 60 Hz; "
                        "capture.deflicker takes out most of them, not all)"),
        }
        parts = [f"{100 * self.counts[k] / n:.0f}% of frames {text}" for k, text in said.items()
                 if self.counts[k] >= at_least * n]
        return "light: " + "; ".join(parts) if parts else None
