"""Bringing any source to the frame rate the model was trained at. Pure: time is passed in.

The model reads clips of 16 frames and windows of 8 clips 16 frames apart, so what it
knows of a gesture's speed is frames, not seconds. A webcam that falls to 15 fps in a
dim room shows every gesture twice as fast; a 60 fps camera, twice as slow. On the
validation stream (seed 98) taken to 15 fps, the bundled model's Levenshtein accuracy
fell from 0.897 to 0.441 (``docs/ablation.md``, "Session 7").

:class:`FrameRateAdapter` puts the frames back on the model's clock: model frame ``j``
shows the scene at ``t0 + j / fps``, built from the two source frames around that time.
Between them it interpolates along the optical flow (OpenCV's DIS, ultrafast preset, about
0.3 ms for a 112x112 crop) because the backbone reads frame differences: repeating a
frame (LA 0.483 at 15 fps) leaves every other difference empty, a cross-fade (LA 0.814)
shows two half-strength hands, moving the pixels half way (LA 0.869) comes close to
rendering at 30 fps (0.890; these four at session 5's debounce setting).

* ``mode``: ``"flow"`` (default), ``"linear"`` (cross-fade, no flow), ``"nearest"``
  (repeat / skip frames).
* A source within ``tolerance`` (25%) of the model's rate passes through unchanged, one
  model frame per source frame (29.97 fps video, a 30 fps camera with jittery timestamps,
  24 and 25 fps: the model saw gestures 0.6-2.5 s long, so 1.25x faster is within what it
  knows, and on a 24 fps rendering of the validation stream it scored 0.929 as it is against
  0.887 with 4 of every 5 frames interpolated; at 20 fps it is 0.650 as it is, 0.811 resampled).
* A gap longer than ``max_gap_s`` (a stalled camera) is not filled with invented frames: the
  clock restarts at the next frame, as after dropped frames.
* A picture shown twice is one frame, not two: a webcam that falls to 15 fps in a dim room while the app
  recording it writes 30 fps repeats every frame, and the model would see every other frame difference empty
  (as ``nearest`` does). A crop that is the last one again (``REPEAT_LEVEL``, ``REPEAT_SHARE`` of the step
  before it, which moved more than that) is dropped, as a repeated timestamp is, once repeats after clear
  moves are a pattern (``REPEAT_MOVED``, ``REPEAT_SEEN`` in the last ``REPEAT_WINDOW`` frames), and never two
  in a row: a hand that stops, or a still room after a cut, repeats once and then no more, where at 15 fps in
  30 every other frame does. The source is then timed at its real rate and resampled (each picture three
  times, 10 fps in 30, loses one of its two repeats).
* The times come from the caller: a file's own frame timestamps (so a variable-frame-rate video
  is resampled only where it runs slow), a camera's capture times. The rate is the median of the
  last ``history`` intervals, so a change of rate is followed within about 8 frames.

Example (model 30 fps, a 15 fps source)::

    push(a, t=0.000) -> [a]
    push(b, t=0.067) -> [mid(a, b), b]     (model frames at 0.033 and 0.067 s)
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

MODES = ("flow", "linear", "nearest")
TOLERANCE = 0.25  # a source within 25% of the model's rate passes through (24 and 25 fps among them)
REPEAT_LEVEL = 0.5   # a crop within this mean grey-level difference of the last one, after a step of more ...
REPEAT_SHARE = 0.2   # ... and under this share of that step, is that picture again;
REPEAT_MOVED = 1.0   # such repeats after a step of at least this much ...
REPEAT_SEEN = 2      # ... seen this many times in the last REPEAT_WINDOW frames are a pattern: then a repeat is
REPEAT_WINDOW = 8    # dropped (never two in a row)


def interpolate(a: np.ndarray, b: np.ndarray, alpha: float, mode: str = "flow", flow=None) -> np.ndarray:
    """The frame ``alpha`` (0..1) of the way from ``a`` to ``b`` (uint8 BGR, same shape)."""
    if mode == "nearest":
        return (b if alpha >= 0.5 else a).copy()
    if mode == "linear":
        return cv2.addWeighted(a, 1.0 - alpha, b, alpha, 0.0)
    if flow is None:
        flow = _dis().calc(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY), None)
    h, w = a.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    fx, fy = flow[..., 0], flow[..., 1]
    # a pixel at x in the in-between frame came from x - alpha*f in a and goes to x + (1-alpha)*f in b
    wa = cv2.remap(a, gx - alpha * fx, gy - alpha * fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wb = cv2.remap(b, gx + (1 - alpha) * fx, gy + (1 - alpha) * fy, cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(wa, 1.0 - alpha, wb, alpha, 0.0)


def _dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


class FrameRateAdapter:
    """Source frames with their times in, model-rate frames out. One per stream; not thread-safe."""

    def __init__(self, fps: float, mode: str = "flow", tolerance: float = TOLERANCE, max_gap_s: float = 0.5,
                 history: int = 15):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps, self.mode, self.tolerance, self.max_gap_s = float(fps), mode, float(tolerance), float(max_gap_s)
        self._dt = deque(maxlen=int(history))  # recent source frame intervals (s)
        self._prev: np.ndarray | None = None
        self._prev_t = 0.0
        self._next_t = 0.0        # time of the next model frame to emit
        self._flow = _dis() if mode == "flow" else None
        self.interpolated = 0     # of them, made between two source frames
        self.repeats = 0          # source frames dropped as the last picture again
        self._step = 0.0          # mean difference of the last accepted frame from the one before
        self._seen = deque(maxlen=REPEAT_WINDOW)   # which of the last frames looked repeated
        self._dropped = False     # the last frame was dropped as a repeat
        self.resampling = False   # what the last frame did (read by the overlay from another thread)

    def source_fps(self) -> float | None:
        """The source's rate over the last frames (median interval), or None before two frames."""
        return 1.0 / float(np.median(self._dt)) if self._dt else None  # intervals are all > 0

    def passes_through(self) -> bool:
        r = self.source_fps()
        return r is None or abs(r / self.fps - 1.0) <= self.tolerance

    def push(self, frame: np.ndarray, t: float) -> list[np.ndarray]:
        """Model frames (oldest first) due once ``frame`` (captured at ``t`` seconds) is known."""
        if self._prev is None:
            return self._restart(frame, t)
        dt = t - self._prev_t
        if dt <= 0:  # a repeated or out-of-order timestamp: nothing new to show
            return []
        if self._repeated(frame):  # the last picture again: nothing new to show either
            self.repeats += 1
            return []
        if dt > self.max_gap_s:
            return self._restart(frame, t)
        self._dt.append(dt)
        self.resampling = not self.passes_through()
        if not self.resampling:
            return self._restart(frame, t)
        out = []
        eps = 1e-6
        flow = None
        while self._next_t <= t + eps:
            alpha = (self._next_t - self._prev_t) / dt
            if alpha >= 1.0 - 1e-3:
                out.append(frame.copy())
            elif alpha <= 1e-3:
                out.append(self._prev.copy())
            else:
                if self.mode == "flow" and flow is None:  # one flow field per source pair
                    flow = self._flow.calc(cv2.cvtColor(self._prev, cv2.COLOR_BGR2GRAY),
                                           cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), None)
                out.append(interpolate(self._prev, frame, alpha, self.mode, flow))
                self.interpolated += 1
            self._next_t += 1.0 / self.fps
        self._prev, self._prev_t = frame.copy(), t
        return out

    def repeat_note(self, frames: int) -> str | None:
        """One line for the end of a run when at least a tenth of its ``frames`` were dropped as repeats."""
        if frames <= 0 or self.repeats < 0.1 * frames:
            return None
        return (f"{self.repeats} of {frames} frames ({self.repeats / frames:.0%}) repeated the picture before: the "
                f"camera made fewer pictures than frames, as webcams do in dim light; the repeats were dropped and the "
                f"pictures between the others made on the model's {self.fps:g} fps clock (more light gives the camera "
                f"its full rate back)")

    def _repeated(self, frame: np.ndarray) -> bool:
        """``frame`` is the last accepted one again, repeats are a pattern, and the frame before was not dropped;
        else its step from the last one is remembered."""
        step = float(cv2.norm(frame, self._prev, cv2.NORM_L1)) / frame.size
        # a still room has no step for a repeat to be small against; a still room after a cut is not a string of
        # repeats (never two in a row); the pattern is made of repeats after clear moves
        looks = step < REPEAT_LEVEL <= self._step and step < REPEAT_SHARE * self._step
        drop = looks and not self._dropped and sum(self._seen) >= REPEAT_SEEN
        self._seen.append(looks and self._step >= REPEAT_MOVED)
        self._dropped = drop
        if not drop:
            self._step = step
        return drop

    def _restart(self, frame: np.ndarray, t: float) -> list[np.ndarray]:
        """Emit ``frame`` as it is and put the model clock on it."""
        self._prev, self._prev_t = frame.copy(), t
        self._next_t = t + 1.0 / self.fps
        return [frame.copy()]


def video_fps(video) -> float:
    """A video's frame rate as OpenCV reads it (30 when the file does not say): a path, or an open
    ``cv2.VideoCapture`` (not opened again)."""
    if isinstance(video, cv2.VideoCapture):
        fps = video.get(cv2.CAP_PROP_FPS)
    else:
        cap = cv2.VideoCapture(str(video))
        try:
            fps = cap.get(cv2.CAP_PROP_FPS)
        finally:
            cap.release()
    return float(fps) if fps and 1 <= fps <= 240 else 30.0


def to_rate(frames: np.ndarray, src_fps: float, fps: float, mode: str = "flow") -> np.ndarray:
    """A whole clip ``(T, H, W, 3)`` recorded at ``src_fps`` as the model sees it at ``fps``
    (the live path's adapter, frame by frame); unchanged when ``mode`` is "off" or the rates agree."""
    if mode == "off" or not len(frames):
        return frames
    ad = FrameRateAdapter(fps, mode)
    if abs(src_fps / ad.fps - 1.0) <= ad.tolerance:
        return frames
    out = [f for i, x in enumerate(frames) for f in ad.push(x, i / src_fps)]
    return np.stack(out)
