"""Frame sources: webcam index, video file, synthetic stream, behind one interface.

``open_source("0")`` -> camera 0; ``open_source("clip.mp4")`` -> file;
``open_source("synthetic")`` -> the procedural gesture stream. Every source
returns ``(H, W, 3) uint8 BGR`` frames from :meth:`FrameSource.read`, ``None``
at the end of a file, and raises :class:`SourceError` when it cannot go on.
Each source names its drop policy (cameras drop the oldest frame when the
worker falls behind; files wait, unless played ``realtime``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .errors import GestureError
from .ringbuffer import DropPolicy


class SourceError(GestureError):
    """The source cannot be opened or read; the message names it."""


class SourceLost(SourceError):
    """A live source stopped delivering frames (camera unplugged...). It may come back."""


@contextmanager
def opencv_silent():
    """OpenCV's own log off for a moment. Opening a camera that is not there makes each of its capture
    backends print its complaint to stderr (a dozen lines); the :class:`SourceError` that follows says it
    in one. The log level is global to the process, so only the open call is wrapped."""
    log = cv2.utils.logging
    before = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(before)


class FrameSource:
    name: str = "source"
    fps: float = 30.0
    policy: DropPolicy = DropPolicy.DROP_OLDEST
    paced: bool = False   # True: read() itself keeps the source's frame rate
    live: bool = True     # True: may be lost and come back (retry with backoff)
    media_time: float | None = None  # seconds: when the frame last read was shown, where the source knows it

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of its frames, where known before the first is read (an opened capture)."""
        cap = getattr(self, "cap", None)
        if cap is None:
            return None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        return (w, h) if w > 0 and h > 0 else None

    def open(self) -> "FrameSource":
        return self

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class CameraSource(FrameSource):
    """A webcam by index. Reads that fail raise :class:`SourceLost`; :meth:`reopen` tries again."""

    paced = True

    def __init__(self, index: int, width: int | None = None, height: int | None = None):
        self.index, self.width, self.height = index, width, height
        self.name = f"camera {index}"
        self.cap = None

    def open(self):
        with opencv_silent():  # also on every reopen of a lost camera
            self.cap = cv2.VideoCapture(self.index)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(
                f"camera {self.index}: cannot open it (is it connected and free?); "
                f"pick another with --source N, or a video with --source FILE.mp4"
            )
        if self.width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        return self

    def reopen(self) -> bool:
        self.close()
        try:
            self.open()
            return True
        except SourceError:
            return False

    def read(self):
        ok, frame = self.cap.read() if self.cap is not None else (False, None)
        if not ok or frame is None:
            raise SourceLost(f"camera {self.index}: no frame (camera lost)")
        return frame

    def close(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoFileSource(FrameSource):
    """A video file. Default: every frame, as fast as the worker takes them (deterministic).

    ``realtime=True`` plays it at its own frame rate and drops like a camera. ``media_time`` is each
    frame's presentation time from the file, so a variable-frame-rate video (a phone that drops to
    15 fps in the dark halfway through) is timed as it was filmed, not at its average rate.
    """

    live = False

    def __init__(self, path: str | Path, realtime: bool = False):
        self.path = Path(path)
        self.name = str(self.path)
        self.realtime = realtime
        self.policy = DropPolicy.DROP_OLDEST if realtime else DropPolicy.WAIT
        self.paced = realtime
        self.cap = None
        self._t0 = None
        self._n = 0

    def open(self):
        if not self.path.exists():
            raise SourceError(
                f"{self.path}: video file not found; pick another with --source FILE.mp4, "
                f"a camera index (--source 0) or --source synthetic"
            )
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f"{self.path}: cannot open as a video (unsupported or corrupt file)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return self

    def read(self):
        ok, frame = self.cap.read()
        if not ok or frame is None:
            return None
        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        prev = self.media_time
        if prev is None:
            t = t if 0.0 <= t < 1e7 else 0.0
        elif not prev < t < prev + 60.0:  # a container without usable timestamps: the nominal rate
            t = prev + 1.0 / self.fps
        self.media_time = t
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - t
            delay = self._t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._n += 1
        return frame

    def close(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class SyntheticSource(FrameSource):
    """The procedural gesture stream (``realtime.synth``), paced at ``fps`` like a camera.

    ``segments`` lists the gestures performed so far: ``(label, start, end)`` frame ids.
    """

    live = False

    def __init__(self, seed: int = 0, fps: float = 30.0, paced: bool = True, width: int = 320, height: int = 240):
        self.seed, self.fps, self.paced = seed, float(fps), paced
        self.width, self.height = width, height
        self.name = f"synthetic (seed {seed})"
        self.policy = DropPolicy.DROP_OLDEST if paced else DropPolicy.WAIT
        self._stream = None
        self._t0 = None
        self._n = 0

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.width, self.height

    def open(self):
        from .synth import SyntheticStream

        self._stream = SyntheticStream(self.seed, width=self.width, height=self.height, fps=self.fps)
        return self

    @property
    def segments(self):
        return list(self._stream.segments) if self._stream is not None else []

    def read(self):
        if self.paced:
            if self._t0 is None:
                self._t0 = time.monotonic()
            delay = self._t0 + self._n / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._n += 1
        return self._stream.read()


def open_source(spec: str | int, realtime: bool = False, fps: float = 30.0, seed: int = 0) -> FrameSource:
    """``"0"``/``0`` -> camera, ``"synthetic"`` -> synthetic stream, anything else -> a video file. Opened."""
    s = str(spec).strip()
    if s.lower() == "synthetic" or s.lower().startswith("synthetic:"):
        if ":" in s:
            try:
                seed = int(s.split(":", 1)[1])
            except ValueError:
                raise SourceError(f"--source {s}: expected synthetic or synthetic:SEED") from None
        src = SyntheticSource(seed=seed, fps=fps)
    elif s.isdigit():
        src = CameraSource(int(s))
    else:
        src = VideoFileSource(s, realtime=realtime)
    return src.open()
