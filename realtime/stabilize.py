"""A shaking camera held still before the model sees it (``capture.stabilize``).

A laptop's lid wobbling as the desk is touched, a webcam clipped to a monitor that sways, a phone in a hand: the
whole picture moves by a few pixels, back and forth, several times a second. The backbone looks at motion, and a
picture that moves everywhere is motion everywhere: rendered streams with a wobble of 2 pixels rms (at 320x240, over
about 0.3 s) cost the bundled model one gesture in seven (docs/ablation.md, "Session 28"). Off by default
(``capture.stabilize: false``): on six still validation streams it added two false events to twelve, and its
rule allowed one; on shaking ones it gives back about half of what the wobble took. It cannot switch itself on
when the camera shakes: on a still camera with sensor noise or a hunting exposure the wobble it finds is as large as
a 2-pixel shake's ("Session 29").

Each frame, in grey at twice the size the model's crop is cut from (342x256 for ``preprocess.resize`` 171x128,
where a wobble of half a pixel is one pixel), is matched against a reference frame, renewed every ``REF_S``, by
phase correlation in 4 x 3 tiles. The median shift of the tiles that match clearly is where the camera is (a hand
moves in a few tiles, the room stands in the rest); its average over ``SLOW_S`` is where the camera points, and the
difference is the wobble. The crop window is moved by the wobble (sub-pixel, at most ``MAX_SHIFT`` pixels, inside
the margin the resize leaves around the 112x112 crop), so the room stands still in the crops. A match most tiles do
not agree on holds the last wobble, fading; ``LOST`` of them in a row (a cut, a light switched on, a hand in front
of the lens) start again from the frame at hand.
"""

from __future__ import annotations

import cv2
import numpy as np

TILES = (4, 3)      # the frame is matched in 4 x 3 tiles
TILE_PEAK = 0.2     # a tile's phase-correlation peak under this is no match (too little texture, a hand moved)
MIN_TILES = 4       # fewer clear tiles than this: no shift to trust
MIN_AGREE = 0.3     # fewer than this share of the tiles within a pixel of the median shift: no shift to trust ...
HOLD = 0.9          # ... so the last wobble is held, fading by this much a frame ...
LOST = 15           # ... and after this many such frames in a row the reference is gone: start again
MAX_STEP = 16.0     # a shift from the reference larger than this (pixels at twice the resize) is not a wobble
REF_S = 2.0         # the frame the others are matched against is renewed this often (seconds)
SLOW_S = 1.0        # the camera's pointing is its position averaged over about this long (seconds)
MAX_SHIFT = 6.0     # the crop window moves at most this far (resized pixels; the default crop has 8 above and below)


class Stabilizer:
    """Stateful, one per source: ``shift(frame, resize)`` gives the (dx, dy) the crop window moves by for this
    frame; ``reset()`` when the source starts again (a camera lost and back)."""

    def __init__(self, fps: float = 30.0):
        self.k = 1.0 / max(1.0, SLOW_S * fps)
        self.renew = max(2, int(round(REF_S * fps)))
        self.reset()

    def reset(self) -> None:
        self._ref: np.ndarray | None = None
        self._win: np.ndarray | None = None
        self._origin = np.zeros(2)    # where the reference frame is on the camera's path
        self._age = 0
        self.slow = np.zeros(2)
        self._last = np.zeros(2)
        self._holds = 0

    def _match(self, g: np.ndarray):
        """The shift of ``g`` against the reference: the median over the tiles whose match is clear (a hand moves
        in a few of them, the room stands in the rest), and the share of tiles that agree with it."""
        th, tw = g.shape[0] // TILES[1], g.shape[1] // TILES[0]
        found = []
        for i in range(TILES[1]):
            for j in range(TILES[0]):
                a = self._ref[i * th:(i + 1) * th, j * tw:(j + 1) * tw]
                b = g[i * th:(i + 1) * th, j * tw:(j + 1) * tw]
                (dx, dy), peak = cv2.phaseCorrelate(a, b, self._win)
                if peak >= TILE_PEAK:
                    found.append((dx, dy))
        if len(found) < MIN_TILES:
            return (0.0, 0.0), 0.0
        f = np.array(found)
        m = np.median(f, axis=0)
        agree = np.count_nonzero(np.abs(f - m).max(axis=1) < 1.0) / (TILES[0] * TILES[1])
        return (float(m[0]), float(m[1])), agree

    def shift(self, frame: np.ndarray, resize: tuple[int, int]) -> tuple[float, float]:
        """``frame``: the camera's picture, ``(H, W, 3) uint8``, that the crop is cut from once resized to ``resize``
        (w, h). Returns the wobble (dx, dy) in the resized frame's pixels. Matched at twice that size, where a
        wobble of half a pixel is one pixel."""
        w, h = resize
        g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        inter = cv2.INTER_AREA if g.shape[1] > 2 * w else cv2.INTER_LINEAR
        g = cv2.resize(g, (2 * w, 2 * h), interpolation=inter).astype(np.float32)
        dx, dy = self._shift(g)
        return dx / 2, dy / 2

    def _start(self, g: np.ndarray) -> tuple[float, float]:
        """Start again with ``g`` as the reference, the camera at rest."""
        self.reset()
        self._ref = g
        self._win = cv2.createHanningWindow((g.shape[1] // TILES[0], g.shape[0] // TILES[1]), cv2.CV_32F)
        return 0.0, 0.0

    def _shift(self, g: np.ndarray) -> tuple[float, float]:
        if self._ref is None or self._ref.shape != g.shape:
            return self._start(g)
        (dx, dy), agree = self._match(g)
        if agree < MIN_AGREE or abs(dx) > MAX_STEP or abs(dy) > MAX_STEP:   # no clear match: hold, fading
            self._holds += 1
            if self._holds >= LOST:      # a cut, a light switched on, a hand in front of the camera
                return self._start(g)
            self._last *= HOLD
            return float(self._last[0]), float(self._last[1])
        self._holds = 0
        pos = self._origin + (dx, dy)
        self.slow += self.k * (pos - self.slow)
        self._age += 1
        if self._age >= self.renew:
            self._ref, self._origin, self._age = g, pos, 0
        self._last = np.clip(pos - self.slow, -2 * MAX_SHIFT, 2 * MAX_SHIFT)
        return float(self._last[0]), float(self._last[1])
