"""Rolling light bands taken out of the picture before the model sees it (``capture.deflicker``).

LED and fluorescent lights on 50 Hz mains flicker at 100 Hz. A webcam's rolling shutter reads the rows
one after another, so each row gets the light at another moment: dark and bright bands across the
picture, 2-3 of them, which roll up or down from frame to frame (at 30 fps against 100 Hz, a third of a
band each frame). The backbone looks at motion, and rolling bands are motion everywhere: on rendered
streams with bands 10% deep the bundled model matched a quarter of the gestures it matched without them
(docs/ablation.md, "Session 27"). Webcams can be told the mains frequency (UVC "power line frequency",
``v4l2-ctl -c power_line_frequency=1`` for 50 Hz); this is for those that are not.

The bands are a gain per row, the same all along the row. Each crop is compared with a running average of
the crops before it (in which rolling bands average out): the row's gain is the median, along the row, of
the ratio of the two (a hand covers less than half of most rows, and moves less from one frame to the next
than the bands do), divided by their median over the rows (bands only: a change of the whole picture's
brightness is the picture's), smoothed over neighbouring rows; the crop is divided by it. A crop far from the
running average (a cut, a light switched on) starts it again instead: without that, a stale average after
the renderer's scene cuts moved row gains a third off 1 on band-free streams, and the six validation
streams fired 16 times against 11 (docs/ablation.md, "Session 27"). With the reset,
786 matched and 12 false against 786 and 11; with bands 10% deep, 0.244 -> 0.866 Levenshtein accuracy.
"""

from __future__ import annotations

import cv2
import numpy as np

ALPHA = 0.2        # weight of the newest crop in the running average (about 5 frames, in which the bands move on
                   # by more than their own spacing)
OFFSET = 4.0       # added to both sides of the ratio, so that black pixels do not divide by zero
ROW_SIGMA = 3.0    # Gaussian smoothing of the row gains, in rows (bands are tens of rows apart)
MAX_DEPTH = 0.5    # gains kept within 1 -+ this: never more than a flicker could do
CUT = 0.15         # a crop this far from the running average (mean |difference| / its mean) starts it again


class Deflicker:
    """Stateful, one per source: ``apply(crop)`` writes the crop without its row bands back into it."""

    def __init__(self) -> None:
        self._ref: np.ndarray | None = None
        self.gains: np.ndarray | None = None    # the row gains the last ``apply`` divided out (light.LightMeter reads them)

    def reset(self) -> None:
        """Forget the running average (a new source, or a cut: the next crop starts it again)."""
        self._ref = None

    def row_gains(self, crop: np.ndarray) -> np.ndarray:
        """``(H,)`` the light's gain on each row of ``crop`` (``(H, W, 3) uint8``) against the running average,
        which this updates."""
        grey = crop.mean(axis=2, dtype=np.float32) + OFFSET
        if self._ref is None or float(np.abs(grey - self._ref).mean()) > CUT * float(self._ref.mean()):
            self._ref = grey    # the first crop, or a cut: nothing to compare with yet
        else:
            self._ref += ALPHA * (grey - self._ref)
        g = np.median(grey / self._ref, axis=1).astype(np.float32)
        g /= np.median(g)       # bands only: a change of the whole picture's brightness is left to the picture
        g = cv2.GaussianBlur(g[:, None], (1, 0), 0, sigmaY=ROW_SIGMA).ravel()
        return np.clip(g, 1.0 - MAX_DEPTH, 1.0 + MAX_DEPTH)

    def apply(self, crop: np.ndarray) -> np.ndarray:
        """Divide each row of ``crop`` (uint8, changed in place and returned) by its gain."""
        g = self.gains = self.row_gains(crop)
        crop[...] = np.clip(crop / g[:, None, None], 0, 255).round().astype(np.uint8)
        return crop
