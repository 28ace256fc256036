"""Composes the stages: source -> capture thread -> ring buffer -> inference worker -> sinks.

Threads stop on one ``threading.Event``, are joined with a timeout and store
their exception; :meth:`Pipeline.run` re-raises it in the main thread after
cleanup. Sinks (event log, overlay, keystrokes, recorder) are callbacks; a sink
that raises is reported once and switched off, never allowed to stop recognition.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from .config import Config
from .deflicker import Deflicker
from .engine import Event, InferenceEngine, InferenceWorker, Prediction, Stats
from .framerate import FrameRateAdapter
from .light import LightMeter
from .modelio import LoadedModel
from .preprocess import brighten, config_for_model, crop_frame
from .ringbuffer import FrameRing
from .sources import FrameSource, SourceError, SourceLost
from .stabilize import Stabilizer


@dataclass(frozen=True)
class Frame:
    """A captured frame, stamped once at capture."""

    image: np.ndarray   # (H, W, 3) uint8 BGR, as the source gave it (for display)
    frame_id: int
    timestamp: float    # time.monotonic() at capture


class LatestFrame:
    """A locked single slot holding the newest captured frame (drop policy: keep newest), for display."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frame: Frame | None = None

    def set(self, f: Frame) -> None:
        with self._lock:
            self._frame = f

    def get(self) -> Frame | None:
        with self._lock:
            return self._frame


class CaptureThread(threading.Thread):
    """Reads the source, stamps each frame, crops it once into the ring buffer.

    With an ``adapter`` (:class:`FrameRateAdapter`) the crops go through it first and the ring
    holds frames at the model's rate, each committed with the source frame it shows. Its clock
    is the file's own frame times (deterministic; the frame index / fps where a source has none),
    the capture time for cameras.

    A lost live source (camera unplugged) is retried with exponential backoff
    (0.1 s .. 2 s); ``status`` says "camera lost" meanwhile.
    """

    def __init__(self, source: FrameSource, ring: FrameRing, cfg: Config, stop_event: threading.Event,
                 eof_event: threading.Event, latest: LatestFrame, stats: Stats, max_frames: int | None = None,
                 adapter: FrameRateAdapter | None = None):
        super().__init__(name="capture", daemon=True)
        self.source, self.ring, self.cfg = source, ring, cfg
        self.stop_event, self.eof_event, self.latest, self.stats = stop_event, eof_event, latest, stats
        self.max_frames = max_frames
        self.adapter = adapter
        self.error: BaseException | None = None
        self.frame_id = 0       # source frames read
        self.ring_id = 0        # frames committed to the ring through the adapter (model frames)
        self.lost_count = 0
        self._scratch = np.empty((cfg.pipeline.size, cfg.pipeline.size, 3), np.uint8)
        self.deflicker = Deflicker() if cfg.capture.deflicker else None
        self.stabilizer = Stabilizer(source.fps) if cfg.capture.stabilize else None
        # crop_frame's last step, preprocess.min_level's gain, is done here after the crop's level is read for the
        # light meter (the overlay's "light" row): the same crop, and the level the camera gave
        self._pre_ungained = dataclasses.replace(cfg.preprocess, min_level=0)
        self.meter = LightMeter(cfg.preprocess.min_level)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:
            self.error = e
        finally:
            self.eof_event.set()  # end-of-stream is always signalled, even on error

    def _read(self):
        backoff = 0.1
        while not self.stop_event.is_set():
            try:
                frame = self.source.read()
                if self.stats.status == "camera lost":
                    self.stats.status = "running"
                    if self.deflicker is not None:   # the camera is back: what it shows now is not what it showed
                        self.deflicker.reset()
                    if self.stabilizer is not None:
                        self.stabilizer.reset()
                return frame
            except SourceLost:
                if not self.source.live:
                    raise
                self.stats.status = "camera lost"
                self.lost_count += 1
                if self.stop_event.wait(backoff):
                    return None
                backoff = min(2.0, backoff * 2)
                reopen = getattr(self.source, "reopen", None)
                if reopen is not None:
                    reopen()
        return None

    def _loop(self) -> None:
        self.stats.status = "running"
        while not self.stop_event.is_set():
            if self.max_frames is not None and self.frame_id >= self.max_frames:
                return
            image = self._read()
            if image is None:
                return
            t = time.monotonic()
            fid = self.frame_id
            if self.adapter is None:
                slot = self._reserve(fid)
                if slot is None:
                    return
                t0 = time.perf_counter()
                self._crop(image, slot, fid)
                self.stats.add("preprocess", time.perf_counter() - t0)
                self.ring.commit(fid, t)
            else:
                t0 = time.perf_counter()
                self._crop(image, self._scratch, fid)
                mt = self.source.media_time
                clock = t if self.source.live else (mt if mt is not None else fid / self.source.fps)
                frames = self.adapter.push(self._scratch, clock)
                self.stats.add("preprocess", time.perf_counter() - t0)
                for crop in frames:
                    slot = self._reserve(self.ring_id)
                    if slot is None:
                        return
                    slot[...] = crop
                    self.ring.commit(self.ring_id, t, source_id=fid)
                    self.ring_id += 1
            self.latest.set(Frame(image, fid, t))
            self.stats.frame(t)
            self.frame_id += 1

    def _crop(self, image, out, fid: int) -> None:
        """The model's crop of ``image`` into ``out``: crop_frame, the dark-room gain, deflicker; the light meter fed."""
        crop_frame(image, self._pre_ungained, self.cfg.pipeline.size, out=out, source=f"{self.source.name} frame {fid}",
                   flip=self.cfg.capture.mirrored, stabilizer=self.stabilizer)
        level = float(out.mean())
        min_level = self.cfg.preprocess.min_level
        if level < min_level:
            out[...] = brighten(out, min_level)
        if self.deflicker is not None:
            self.deflicker.apply(out)
        self.stats.light = self.meter.update(level, self.deflicker.gains if self.deflicker is not None else None)

    def _reserve(self, rid: int):
        """The ring slot for frame ``rid``; None when stopping (WAIT sources wait for the worker here)."""
        slot = None
        while slot is None and not self.stop_event.is_set():
            slot = self.ring.reserve(rid, timeout=0.1)
            if slot is None and self.ring._closed:
                return None
        return slot


class Pipeline:
    """The live recognizer. ``with Pipeline(src, model, cfg) as p: p.run(seconds=20)``.

    ``sinks``: objects with optional ``on_event(Event)``, ``on_prediction(Prediction)``,
    ``close()``. ``start()``/``stop()`` are idempotent.
    """

    def __init__(self, source: FrameSource, model: LoadedModel, cfg: Config, sinks=(),
                 max_frames: int | None = None, warmup: bool = True):
        # preprocess.downscale: auto becomes the model's own (preprocess.for_model) before any frame is cut
        cfg = config_for_model(cfg, model.spec.width, model.spec.preprocess)
        self.source, self.model, self.cfg = source, model, cfg
        self.sinks = list(sinks)
        self.stats = Stats()
        self.ring = FrameRing(cfg.capture.buffer_frames, cfg.pipeline.size, source.policy)
        self.stop_event = threading.Event()
        self.eof_event = threading.Event()
        self.latest = LatestFrame()
        # the ring runs at the model's frame rate unless resampling is off (then at the source's)
        rate = float(model.spec.fps)
        # (a source at the model's rate passes through it unchanged, ids and all; a variable-rate file
        # is resampled only where it runs more than 25% off)
        self.adapter = FrameRateAdapter(rate, cfg.capture.resample) if cfg.capture.resample != "off" else None
        self.frame_rate = rate if self.adapter is not None else float(source.fps)
        self.engine = InferenceEngine(model, cfg, fps=self.frame_rate, stats=self.stats)
        self.last_prediction: Prediction | None = None
        self.events: list[Event] = []
        self._warmup = warmup
        self._sink_errors: dict[int, str] = {}
        self._lock = threading.Lock()
        self.capture = CaptureThread(source, self.ring, cfg, self.stop_event, self.eof_event,
                                     self.latest, self.stats, max_frames, self.adapter)
        self.worker = InferenceWorker(self.engine, self.ring, self.stop_event, self.eof_event,
                                      self._on_prediction, self.stats)
        self._started = False
        self._stopped = False
        self._sinks_closed = False

    # -- sinks ------------------------------------------------------------------------------
    def _call_sinks(self, method: str, arg) -> None:
        if self._sinks_closed:  # a worker still finishing a model call after stop(): sinks are gone
            return
        for i, s in enumerate(self.sinks):
            if i in self._sink_errors:
                continue
            fn = getattr(s, method, None)
            if fn is None:
                continue
            try:
                fn(arg)
            except Exception as e:  # contained: a broken sink never stops recognition
                self._sink_errors[i] = f"{type(s).__name__}: {e}"
                print(f"warning: sink {type(s).__name__} failed and was switched off: {e}", file=sys.stderr)

    def _on_prediction(self, pred: Prediction) -> None:
        with self._lock:
            self.last_prediction = pred
            if pred.event:
                self.events.append(pred.event)
        self._call_sinks("on_prediction", pred)
        if pred.event:
            self._call_sinks("on_event", pred.event)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Pipeline":
        if self._started:
            return self
        self._started = True
        if self._warmup:
            self.stats.status = "warming up"
            self.engine.warmup()
        self.worker.start()
        self.capture.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop both threads, waiting at most ``timeout`` seconds in all (Ctrl-C exits within a second).

        A capture thread stuck inside ``source.read()`` (a hung camera) cannot be interrupted; it is a
        daemon, and closing the source below is what unblocks most sources.
        """
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        self.ring.close()
        deadline = time.monotonic() + timeout
        # The worker first: it only ever waits on the ring (which is closed), so it ends at once
        # unless a model call is in flight; the capture thread may be blocked in the source.
        for t in (self.worker, self.capture):
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        self.source.close()
        self._sinks_closed = True
        for s in self.sinks:
            close = getattr(s, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:
                    print(f"warning: closing {type(s).__name__} failed: {e}", file=sys.stderr)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def dropped_frames(self) -> int:
        return self.ring.dropped + self.stats.skipped_frames

    @property
    def done(self) -> bool:
        return not self.worker.is_alive() and self._started

    def check(self) -> None:
        """Re-raise a thread's exception in the caller's (main) thread."""
        for t in (self.capture, self.worker):
            if t.error is not None:
                err, t.error = t.error, None
                raise err

    def run(self, seconds: float | None = None, tick=None, tick_interval: float = 0.03) -> None:
        """Run until the source ends, ``seconds`` pass, ``tick()`` returns False, or Ctrl-C.

        ``tick`` (main thread; e.g. the overlay window) is called every ``tick_interval`` s.
        Thread exceptions are re-raised here after the pipeline is stopped.
        """
        t_end = None
        try:
            # start() runs the warm-up in this thread: if the model fails there, the source and the
            # sinks (event file, window, recorder thread) must still be closed by stop().
            self.start()
            t_end = None if seconds is None else time.monotonic() + seconds
            while True:
                if self.capture.error is not None or self.worker.error is not None:
                    break
                if not self.worker.is_alive():
                    break
                if t_end is not None and time.monotonic() >= t_end:
                    break
                if tick is not None:
                    if tick() is False:
                        break
                self.worker.join(tick_interval)
        finally:
            self.stop()
        self.check()
        if self.stats.frames == 0 and (t_end is None or time.monotonic() >= t_end):
            raise SourceError(f"{self.source.name}: no frames could be read (empty or unreadable video)")
