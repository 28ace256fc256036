"""The inference engine: sliding clips -> C3D features -> head window -> debounced events.

Clip and window spacing (pure functions below)
----------------------------------------------
A new clip ends every ``stride`` frames, starting at frame ``clip_len - 1``.
The features are kept by clip end frame. The head looks at the ``window``
features spaced ``feature_spacing`` frames apart that end at the newest clip,
so it sees the same spacing at any stride; a smaller stride only means more
frequent decisions.

Worked example (clip_len 16, spacing 16, window 8, stride 4)::

    clip ends computed: 15, 19, 23, 27, 31, ...
    at newest clip end t = 127: window ends [15, 31, 47, 63, 79, 95, 111, 127]
        -> clips cover frames 0..127 (the last 128 frames); first decision
    at t = 131: window ends [19, 35, ..., 131] -> frames 4..131
    at t = 135: window ends [23, 39, ..., 135] -> frames 8..135

With stride 16 the clips are exactly the non-overlapping clips of
``gesture features`` (ends 15, 31, ...), one decision every 16 frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from . import mirror
from .config import Config
from .debounce import Debouncer
from .modelio import LoadedModel, predict_fn
from .ringbuffer import DropPolicy, FrameRing


def first_clip_end(clip_len: int) -> int:
    return clip_len - 1


def due_clip_ends(next_end: int, newest: int, stride: int) -> list[int]:
    """Clip end frames from ``next_end`` up to ``newest`` (inclusive), every ``stride`` frames."""
    if newest < next_end:
        return []
    return list(range(next_end, newest + 1, stride))


def window_clip_ends(end: int, window: int = 8, spacing: int = 16) -> list[int]:
    """The clip ends the head reads for a decision at ``end``, oldest first: ``end - spacing*(window-1) .. end``."""
    return [end - spacing * k for k in range(window - 1, -1, -1)]


def window_frames(end: int, window: int = 8, spacing: int = 16, clip_len: int = 16) -> tuple[int, int]:
    """First and last frame (inclusive) a decision at ``end`` depends on."""
    return end - spacing * (window - 1) - clip_len + 1, end


@dataclass(frozen=True)
class Event:
    """One gesture event. Times: ``capture_time``/``emit_time`` are ``time.monotonic()`` seconds;
    ``frame_id`` is the source frame (of the camera or file) the window ends on; ``media_time`` is
    the window end on the model's clock, in seconds (deterministic for files)."""

    label: str
    confidence: float
    frame_id: int
    capture_time: float
    emit_time: float
    media_time: float

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "frame_id": self.frame_id,
            "capture_time": round(self.capture_time, 6),
            "emit_time": round(self.emit_time, 6),
            "media_time": round(self.media_time, 4),
            "latency_ms": round(1000 * (self.emit_time - self.capture_time), 2),
        }


@dataclass(frozen=True)
class Prediction:
    """The head's output for one window: ``probs`` (n_labels,), smoothed and the debouncer's verdict."""

    frame_id: int
    probs: np.ndarray
    smoothed: np.ndarray
    capture_time: float
    decided_time: float
    event: Event | None


class Stats:
    """Counters and per-stage timings (seconds), shared between threads; bounded history."""

    STAGES = ("preprocess", "c3d", "head", "debounce")

    def __init__(self, history: int = 4096):
        self._lock = threading.Lock()
        self.times = {s: deque(maxlen=history) for s in self.STAGES}
        self.latency = deque(maxlen=history)
        self.capture_stamps = deque(maxlen=256)
        self.clip_stamps = deque(maxlen=256)
        self.frames = 0
        self.clips = 0
        self.decisions = 0
        self.events = 0
        self.skipped_frames = 0
        self.status = "starting"
        self.light = None   # the capture thread's light.LightState for the latest frame (None before the first)

    def add(self, stage: str, seconds: float, n: int = 1) -> None:
        with self._lock:
            for _ in range(n):
                self.times[stage].append(seconds / n)

    def frame(self, t: float) -> None:
        with self._lock:
            self.frames += 1
            self.capture_stamps.append(t)

    def clips_done(self, n: int, t: float) -> None:
        with self._lock:
            self.clips += n
            for _ in range(n):
                self.clip_stamps.append(t)

    @staticmethod
    def _rate(stamps) -> float:
        if len(stamps) < 2 or stamps[-1] <= stamps[0]:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def snapshot(self) -> dict:
        with self._lock:
            def q(v, p):
                return float(np.percentile(v, p)) * 1000 if len(v) else float("nan")

            return {
                "capture_fps": self._rate(self.capture_stamps),
                "clips_per_s": self._rate(self.clip_stamps),
                "frames": self.frames,
                "clips": self.clips,
                "decisions": self.decisions,
                "events": self.events,
                "latency_median_ms": q(self.latency, 50),
                "latency_p95_ms": q(self.latency, 95),
                "stages_ms": {s: {"median": q(v, 50), "p95": q(v, 95)} for s, v in self.times.items()},
                "status": self.status,
                "light": self.light,
            }


class InferenceEngine:
    """Clips in, decisions out. Holds the compiled models, the feature bank and the debouncer.

    Not a thread: :class:`InferenceWorker` drives it from the ring buffer, tests drive it directly.
    """

    def __init__(self, model: LoadedModel, cfg: Config, fps: float = 30.0, stats: Stats | None = None):
        self.model, self.cfg, self.fps = model, cfg, float(fps)
        p = cfg.pipeline
        self.clip_len, self.spacing, self.window, self.stride = p.clip_len, p.feature_spacing, p.window, p.stride
        self.labels = model.labels
        self.debouncer = Debouncer.from_config(self.labels, cfg.debounce)
        self.stats = stats or Stats()
        # uint8 crops in: the mean subtraction runs inside the compiled call (no float copy in NumPy)
        self._bb = predict_fn(model.backbone, mean_bgr=cfg.preprocess.mean_bgr)
        self._head = predict_fn(model.head)
        # pipeline.mirror_average: each clip is also seen mirrored; features[end] holds (views, D), views 1 or 2
        self.mirror = mirror.enabled(p.mirror_average, model.spec)
        self._views = 2 if self.mirror else 1
        self._swap = mirror.swap_index(self.labels)
        self.features: dict[int, np.ndarray] = {}
        self._feat_dim = model.feature_dim
        self._win = np.zeros((self._views * p.max_batch, self.window, self._feat_dim), np.float32)

    def warmup(self) -> None:
        """Trace/compile every batch size once so the first real frame pays nothing."""
        p = self.cfg.pipeline
        for n in range(self._views, self._views * p.max_batch + 1, self._views):
            self._bb(np.zeros((n, self.clip_len, p.size, p.size, 3), np.uint8))
            self._head(np.zeros((n, self.window, self._feat_dim), np.float32))

    def add_clips(self, ends: list[int], crops: np.ndarray) -> None:
        """Compute features of clips ``crops (n, clip_len, size, size, 3) uint8`` ending at ``ends``."""
        if not ends:
            return
        if self.mirror:  # one call for both views: the mirrored clips after the plain ones
            crops = np.concatenate([crops, mirror.mirror_clips(crops)])
        t0 = time.perf_counter()
        feats = self._bb(crops)  # == bb(to_model_input(crops)), the subtraction done in the graph
        self.stats.add("c3d", time.perf_counter() - t0, len(ends))
        feats = np.asarray(feats).reshape(self._views, len(ends), -1)
        for i, e in enumerate(ends):
            self.features[e] = feats[:, i]
        keep_from = max(ends) - self.spacing * self.window
        for e in [e for e in self.features if e < keep_from]:
            del self.features[e]

    def decide(self, ends: list[int], capture_times: list[float], source_ids: list[int] | None = None
               ) -> list[Prediction]:
        """Run the head for each end whose whole window of features exists; debounce in order.

        ``source_ids``: the source frame each end shows (events and predictions carry it as
        ``frame_id``); default the end itself. The debouncer's clock is ``end / fps``."""
        sids = dict(zip(ends, source_ids if source_ids is not None else ends))
        ready = [(e, ct) for e, ct in zip(ends, capture_times)
                 if all(w in self.features for w in window_clip_ends(e, self.window, self.spacing))]
        if not ready:
            return []
        n, v = len(ready), self._views
        win = (self._win[: v * n] if v * n <= len(self._win)
               else np.zeros((v * n, self.window, self._feat_dim), np.float32))
        for i, (e, _) in enumerate(ready):
            for k, w in enumerate(window_clip_ends(e, self.window, self.spacing)):
                win[i :: n, k] = self.features[w]  # rows i (plain) and n + i (mirrored)
        t0 = time.perf_counter()
        probs = np.asarray(self._head(win))
        if self.mirror:
            probs = mirror.combine(probs[:n], probs[n:], self._swap)
        self.stats.add("head", time.perf_counter() - t0, n)
        out = []
        for (e, ct), p in zip(ready, probs):
            t1 = time.perf_counter()
            d = self.debouncer.update(p, e / self.fps)
            self.stats.add("debounce", time.perf_counter() - t1)
            now = time.monotonic()
            ev = Event(d.label, d.confidence, sids[e], ct, now, e / self.fps) if d.label else None
            self.stats.latency.append(now - ct)
            self.stats.decisions += 1
            if ev:
                self.stats.events += 1
            out.append(Prediction(sids[e], np.asarray(p), d.smoothed, ct, now, ev))
        return out


class InferenceWorker(threading.Thread):
    """Reads due clips from the ring buffer, runs the engine, hands predictions to ``on_prediction``.

    Stops on ``stop_event`` or when ``eof_event`` is set and every due clip is done.
    An exception is stored in ``self.error`` for the main thread to re-raise.
    """

    def __init__(self, engine: InferenceEngine, ring: FrameRing, stop_event: threading.Event,
                 eof_event: threading.Event, on_prediction, stats: Stats):
        super().__init__(name="inference-worker", daemon=True)
        self.engine, self.ring, self.stop_event, self.eof_event = engine, ring, stop_event, eof_event
        self.on_prediction, self.stats = on_prediction, stats
        self.error: BaseException | None = None
        p = engine.cfg.pipeline
        self._buf = np.empty((p.max_batch, p.clip_len, p.size, p.size, 3), np.uint8)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # handed to the main thread
            self.error = e
        finally:
            self.ring.close()

    def _loop(self) -> None:
        eng = self.engine
        p = eng.cfg.pipeline
        clip_len, stride, max_batch = p.clip_len, p.stride, p.max_batch
        next_end = first_clip_end(clip_len)
        self.ring.release(next_end - clip_len + 1)
        while not self.stop_event.is_set():
            newest = self.ring.wait_newer(next_end - 1, timeout=0.05)
            ends = due_clip_ends(next_end, newest, stride)
            if not ends:
                if self.eof_event.is_set() and self.ring.newest < next_end:
                    return
                continue
            last_due = ends[-1]
            if self.ring.policy is DropPolicy.DROP_OLDEST and len(ends) > max_batch:
                # Behind a live source: skip to the newest clips so latency stays bounded. Only clips
                # on the head's spacing grid (the stride-16 ends, from frame clip_len - 1) are kept:
                # a window reads 8 features spaced `spacing` apart, so the newest few consecutive
                # ends alone would almost never complete one and decisions would stop altogether.
                # On the grid they go on, at an effective stride of `spacing`. A skipped end counts
                # `stride` frames, as before.
                grid = [e for e in ends if (e - first_clip_end(clip_len)) % eng.spacing == 0]
                kept = grid[-max_batch:]
                self.stats.skipped_frames += (len(ends) - len(kept)) * stride
                ends = kept
            ends = ends[:max_batch]
            good, ctimes, sids = [], [], []
            for e in ends:
                i = len(good)
                r = self.ring.read(e - clip_len + 1, clip_len, out=self._buf[i])
                if r is None:
                    continue
                good.append(e)
                ctimes.append(float(r[1][-1]))
                sid = self.ring.source_id(e)
                sids.append(e if sid is None else sid)
            next_end = (last_due if self.ring.policy is DropPolicy.DROP_OLDEST else ends[-1]) + stride
            self.ring.release(next_end - clip_len + 1)
            if good:
                eng.add_clips(good, self._buf[: len(good)])
                self.stats.clips_done(len(good), time.monotonic())
                for pred in eng.decide(good, ctimes, sids):
                    self.on_prediction(pred)
