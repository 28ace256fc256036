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
than the bands do), smoothed over neighbouring rows; the crop is divided by it. A picture without bands
gets gains within a few percent of 1, except for a few frames after the picture changes at once (a cut
between the renderer's scenes, a light switched on), when the running average is stale. That is why it is
off by default: on six rendered validation streams without bands it took the false events from 11 to 16
(matched 786 -> 785); with bands 10% deep, 0.244 -> 0.873 Levenshtein accuracy, and 3% deep, 0.863 -> 0.911.
"""

from __future__ import annotations

import cv2
import numpy as np

ALPHA = 0.2        # weight of the newest crop in the running average (about 5 frames: 1.5 rolls of the bands)
OFFSET = 4.0       # added to both sides of the ratio, so that black pixels do not divide by zero
ROW_SIGMA = 3.0    # Gaussian smoothing of the row gains, in rows (bands are tens of rows apart)
MAX_DEPTH = 0.5    # gains kept within 1 -+ this: never more than a flicker could do


class Deflicker:
    """Stateful, one per source: ``apply(crop)`` writes the crop without its row bands back into it."""

    def __init__(self) -> None:
        self._ref: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the running average (a new source, or a cut: the next crop starts it again)."""
        self._ref = None

    def row_gains(self, crop: np.ndarray) -> np.ndarray:
        """``(H,)`` the light's gain on each row of ``crop`` (``(H, W, 3) uint8``) against the running average,
        which this updates."""
        grey = crop.mean(axis=2, dtype=np.float32) + OFFSET
        if self._ref is None:
            self._ref = grey
        else:
            self._ref += ALPHA * (grey - self._ref)
        g = np.median(grey / self._ref, axis=1).astype(np.float32)
        g = cv2.GaussianBlur(g[:, None], (1, 0), 0, sigmaY=ROW_SIGMA).ravel()
        return np.clip(g, 1.0 - MAX_DEPTH, 1.0 + MAX_DEPTH)

    def apply(self, crop: np.ndarray) -> np.ndarray:
        """Divide each row of ``crop`` (uint8, changed in place and returned) by its gain."""
        g = self.row_gains(crop)
        crop[...] = np.clip(crop / g[:, None, None], 0, 255).round().astype(np.uint8)
        return crop
