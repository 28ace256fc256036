"""The live window: camera image, class probabilities, last event, pipeline health, keys.

Layout (``(480, W + 300, 3)`` BGR canvas)::

    +------------------------------------+----------------------+
    | camera image, scaled to 480 px     | status               |
    | high, mirrored for display only;   | probability bars     |
    | dimmed outside the model's view    |                      |
    |  (toast messages top left)         | last event           |
    |                                    | fps, clips/s, latency|
    |  [ last event banner, fading ]     | keys, recording      |
    +------------------------------------+----------------------+

:meth:`OverlayApp.tick` runs on the main thread (``Pipeline.run`` calls it
about 30 times a second): it draws, shows (``cv2.imshow``; never when
``show=False``), handles keys (``cv2.waitKey(1)``) and writes the canvas to
``--record-overlay`` once per new camera frame. Predictions and events arrive
on the inference thread and are only stored (under a lock) there.

Mirroring flips the displayed image only; the model sees the camera's own
image, so ``2_Fingers_Left`` is always the user's own left. The model sees only a
centre box of the image (the 112x112 crop, :func:`realtime.preprocess.model_view`);
the rest is drawn at half brightness, so that a hand gesturing out there is seen to be
out of view rather than ignored for no reason.

Keys: ``q``/Esc quit, space pause (the display freezes, events are ignored and
keystrokes are held off; the pipeline keeps running), ``k`` arm/disarm
keystrokes, ``1``..``4`` "that was gesture N", ``0`` "that was no gesture"
(saves the last ``cfg.recorder_frames`` frames from the ring buffer through
:class:`realtime.recorder.ClipRecorder`), ``h`` help.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from .config import NO_GESTURE, Config
from .engine import Event, Prediction
from .errors import GestureError
from .preprocess import model_view
from .xwindow import PaintGuard

WINDOW = "gesture"
HEIGHT = 480          # displayed image height (pixels); the width follows the camera's aspect
PANEL = 300           # side panel width (pixels)
FONT = cv2.FONT_HERSHEY_SIMPLEX
AA = cv2.LINE_AA

SETTLE_S = 0.3        # seconds the window serves its events after opening, before the pipeline starts

# BGR. One colour per gesture, grey for no_gesture; more labels cycle through the list.
PALETTE = [(40, 190, 250), (245, 160, 60), (90, 210, 90), (210, 110, 250), (80, 200, 200), (100, 130, 250)]
GREY = (150, 150, 150)
WHITE = (240, 240, 240)
DIM = (165, 165, 165)
BG = (32, 30, 28)
GREEN = (110, 215, 110)
RED = (70, 70, 235)
YELLOW = (60, 200, 235)


def _put(img, text, org, scale=0.5, color=WHITE, thick=1):
    cv2.putText(img, text, org, FONT, scale, color, thick, AA)


def open_window(name: str, canvas: np.ndarray, settle_s: float = 0.0) -> tuple[list[int], PaintGuard | None]:
    """An autosized OpenCV window without the Qt toolbar, showing ``canvas``; Qt's missing-font
    warnings are silenced.

    Serves the window's events for ``settle_s`` seconds and returns the keys pressed meanwhile, and
    the :class:`~realtime.xwindow.PaintGuard` that watches the window (None without X): a window
    that Qt maps while the CPU is busy can stay black for good (see :mod:`realtime.xwindow`), so
    open it before anything loads the CPU and pass each shown canvas to the guard's ``check``.
    """
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false;qt.text.font.*=false")
    cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    cv2.imshow(name, canvas)
    keys: list[int] = []
    deadline = time.monotonic() + settle_s
    while True:
        key = cv2.waitKey(1)
        if key != -1:
            keys.append(key & 0xFF)
        if time.monotonic() >= deadline:
            return keys, PaintGuard.create(name)
        time.sleep(0.01)


def window_closed(name: str) -> bool:
    """Whether the user closed the window with its own close button. Qt (OpenCV's highgui on Linux)
    deletes its event receiver when its last window closes, so the query then raises instead of
    answering, and the next ``imshow`` would open the window again."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True


def _name(label: str) -> str:
    """Display form of a label: ``2_Fingers_Left`` -> ``2 Fingers Left``."""
    return label.replace("_", " ")


def _blend_rect(img, x0, y0, x1, y1, color, alpha):
    """Darken/tint a rectangle in place: ``img = (1 - alpha) * img + alpha * color``."""
    roi = img[y0:y1, x0:x1]
    if roi.size:
        cv2.addWeighted(roi, 1.0 - alpha, np.full_like(roi, color), alpha, 0, dst=roi)


def dim_outside_model_view(view: np.ndarray, w: int, h: int, cfg: Config, mirrored: bool) -> None:
    """Halve the brightness of what the model never sees, in place, and mark the corners of what it does.

    ``view``: a ``w x h`` camera frame as displayed (scaled to any size; flipped when ``mirrored``). A hand
    gesturing in the dimmed part is out of the model's view (:func:`realtime.preprocess.model_view`).
    """
    vh, vw = view.shape[:2]
    x0, y0, x1, y1 = model_view(w, h, cfg.preprocess, cfg.pipeline.size, flip=cfg.capture.mirrored)
    x0, x1, y0, y1 = x0 * vw / w, x1 * vw / w, y0 * vh / h, y1 * vh / h   # frame -> view pixels
    if mirrored:
        x0, x1 = vw - x1, vw - x0
    x0, x1 = (min(vw, max(0, int(round(v)))) for v in (x0, x1))
    y0, y1 = (min(vh, max(0, int(round(v)))) for v in (y0, y1))
    for region in (view[:y0], view[y1:], view[y0:y1, :x0], view[y0:y1, x1:]):
        np.right_shift(region, 1, out=region)
    n = max(8, (x1 - x0) // 12)
    for (cx, cy, dx, dy) in ((x0, y0, 1, 1), (x1 - 1, y0, -1, 1), (x0, y1 - 1, 1, -1), (x1 - 1, y1 - 1, -1, -1)):
        cv2.line(view, (cx, cy), (cx + dx * n, cy), DIM, 1, AA)
        cv2.line(view, (cx, cy), (cx, cy + dy * n), DIM, 1, AA)


class OverlayApp:
    """The OpenCV window sink. ``attach(pipeline)`` before ``pipeline.run(tick=app.tick)``.

    ``show=False`` draws without any window (for ``--record-overlay`` headless).
    ``clock`` (``time.monotonic`` by default) is injectable so fading can be tested.
    """

    def __init__(self, cfg: Config, labels, show: bool = True, record_path: str | None = None,
                 mirror: bool = True, keys=None, record_dir: str | None = None,
                 clock=time.monotonic, fade_s: float = 1.5):
        self.cfg = cfg
        self.labels = list(labels)
        self.show = bool(show)
        self.record_path = Path(record_path) if record_path else None
        self.mirror = bool(mirror)
        self.keys = keys
        self.record_dir = Path(record_dir or cfg.recorder.dir)
        self.clock = clock
        self.fade_s = float(fade_s)
        self.gestures = [lab for lab in self.labels if lab != NO_GESTURE]
        self.colors = {lab: (GREY if lab == NO_GESTURE else PALETTE[i % len(PALETTE)])
                       for i, lab in enumerate(self.gestures + [NO_GESTURE])}
        self.pipeline = None
        self.recorder = None
        self.paused = False
        self.help = False
        self.quit = False
        self._keys_were_armed = False
        self._lock = threading.Lock()
        self._pred: Prediction | None = None
        self._event: tuple[Event, float] | None = None   # (event, clock() when it arrived)
        self._toast: tuple[str, float, tuple] | None = None
        self._stats: dict = {}
        self._stats_at = -1.0
        self._frozen = None            # the Frame on screen when paused
        self._last_id = -1
        self._canvas: np.ndarray | None = None
        self._writer = None
        self._window_open = False
        self._guard: PaintGuard | None = None
        self.frames_written = 0

    # -- wiring -----------------------------------------------------------------------------
    def attach(self, pipeline, settle_s: float = SETTLE_S) -> "OverlayApp":
        """Wire to ``pipeline`` and, with ``show=True``, open the window now (see :meth:`open`).

        Call it before the pipeline starts: the window must be on screen before the model's
        warm-up and threads load the CPU.
        """
        self.pipeline = pipeline
        if self.show:
            self.open(settle_s)
        return self

    def open(self, settle_s: float = SETTLE_S) -> None:
        """Open the window with its first canvas and serve its events for ``settle_s`` seconds.

        Before the pipeline starts, not on the first tick: a window mapped while the CPU is busy
        can stay black (see :func:`open_window`). The user also sees it during the warm-up.
        """
        if self._window_open:
            return
        keys, self._guard = open_window(WINDOW, self.draw(None), settle_s)
        self._window_open = True
        for key in keys:
            self.handle_key(key)

    @property
    def fps(self) -> float:
        """The source's frame rate (what the window shows)."""
        src = getattr(self.pipeline, "source", None)
        return float(getattr(src, "fps", 0) or self.cfg.capture.fps)

    @property
    def ring_fps(self) -> float:
        """The rate of the frames the model sees, which corrections save (the model's, see realtime.framerate)."""
        return float(getattr(self.pipeline, "frame_rate", 0) or self.fps)

    # -- sink callbacks (inference thread) -------------------------------------------------------
    def on_prediction(self, pred: Prediction) -> None:
        if self.paused:
            return
        with self._lock:
            self._pred = pred

    def on_event(self, ev: Event) -> None:
        if self.paused:
            return
        with self._lock:
            self._event = (ev, self.clock())

    # -- main thread --------------------------------------------------------------------------
    def tick(self) -> bool:
        """Draw, show, handle keys, record. False when the user asked to quit."""
        if self.quit:
            return False
        frame = self.pipeline.latest.get() if self.pipeline is not None else None
        if self.paused and self._frozen is not None:
            frame = self._frozen
        new = frame is not None and frame.frame_id != self._last_id
        if self.show or new or self._canvas is None:
            canvas = self.draw(frame)
        else:
            canvas = self._canvas
        if new:
            self._last_id = frame.frame_id
            if self.record_path is not None and not self.paused:
                self._record(canvas)
        if self.show:
            if not self._window_open:
                self.open(0.0)
            cv2.imshow(WINDOW, canvas)
            key = cv2.waitKey(1)
            if key != -1:
                self.handle_key(key & 0xFF)
            elif window_closed(WINDOW):
                self.quit = True
            if self._guard is not None and self._guard.active:
                w = canvas.shape[1]
                self._guard.check(canvas, (w - PANEL, 0, w, HEIGHT))   # the side panel: no camera image
        return not self.quit

    def handle_key(self, key: int) -> None:
        """One key press (an ASCII code): see the module docstring."""
        ch = chr(key) if 0 <= key < 256 else ""
        if key in (27,) or ch == "q":
            self.quit = True
        elif ch == " ":
            self.set_paused(not self.paused)
        elif ch == "k":
            if self.keys is None:
                self.toast("no keys mapped (keys.map in config.yaml)", YELLOW)
            else:
                try:
                    self.keys.toggle()
                except GestureError as e:   # no keyboard backend: stay disarmed, say why
                    self.toast(str(e)[:70], RED, 5.0)
                    return
                self.toast("keystrokes ARMED" if self.keys.armed else "keystrokes off",
                           RED if self.keys.armed else GREY)
        elif ch == "h":
            self.help = not self.help
        elif ch == "0":
            self.correct(NO_GESTURE)
        elif ch.isdigit() and 1 <= int(ch) <= len(self.gestures):
            self.correct(self.gestures[int(ch) - 1])

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self._frozen = self.pipeline.latest.get() if self.pipeline is not None else None
            # Nothing should happen while the user is not watching: hold keystrokes off too.
            self._keys_were_armed = bool(self.keys is not None and self.keys.armed)
            if self._keys_were_armed:
                self.keys.toggle()
        else:
            self._frozen = None
            if self._keys_were_armed and self.keys is not None and not self.keys.armed:
                self.keys.toggle()
        self.toast("paused (space resumes)" if paused else "resumed", YELLOW)

    def toast(self, text: str, color=WHITE, seconds: float = 2.5) -> None:
        self._toast = (text, self.clock() + seconds, color)

    # -- corrections ----------------------------------------------------------------------------
    def correct(self, true_label: str) -> bool:
        """Save the last ``cfg.recorder_frames`` frames as ``true_label`` (the user's correction)."""
        if self.pipeline is None:
            return False
        frames, ids, _ = self.pipeline.ring.latest(self.cfg.recorder_frames)
        if len(frames) < self.cfg.pipeline.clip_len:
            self.toast("not enough frames yet to save a clip", YELLOW)
            return False
        predicted, conf = "", ""
        with self._lock:
            ev = self._event[0] if self._event else None
            pred = self._pred
        first = self.pipeline.ring.source_id(int(ids[0]))
        if ev is not None and ev.frame_id >= (int(ids[0]) if first is None else first):
            predicted, conf = ev.label, ev.confidence        # the event the user is correcting
        elif pred is not None:                                # a missed gesture: what the model thought
            p = np.asarray(pred.smoothed if pred.smoothed is not None else pred.probs)
            i = int(np.argmax(p))
            predicted, conf = self.labels[i], float(p[i])
        if self.recorder is None:
            from .recorder import ClipRecorder

            self.recorder = ClipRecorder(self.record_dir, fps=self.ring_fps, labels=self.labels)
        ok = self.recorder.save(frames, true_label, predicted, conf)
        if ok:
            self.toast(f"saving {len(frames)} frames as {true_label}", GREEN)
        else:
            self.toast(self.recorder.last_error or "recorder refused the clip", RED)
        return ok

    # -- drawing ----------------------------------------------------------------------------------
    def _snapshot(self) -> dict:
        now = self.clock()
        if self.pipeline is not None and now - self._stats_at >= 0.25:  # percentiles are not free
            self._stats = self.pipeline.stats.snapshot()
            self._stats_at = now
        return self._stats

    def draw(self, frame) -> np.ndarray:
        """The full canvas for ``frame`` (a pipeline Frame or None) and the current state."""
        if frame is not None:
            img = frame.image
            h, w = img.shape[:2]
            iw = max(1, int(round(w * HEIGHT / h)))
        else:
            img, iw = None, (self._canvas.shape[1] - PANEL if self._canvas is not None else 640)
        if self._canvas is None or self._canvas.shape[1] != iw + PANEL:
            if self._canvas is not None and self._writer is not None:
                iw = self._canvas.shape[1] - PANEL   # the recorded video keeps its size
            else:
                self._canvas = np.zeros((HEIGHT, iw + PANEL, 3), np.uint8)
        canvas = self._canvas
        view = canvas[:, :iw]
        if img is None:
            view[...] = 20
            _put(view, "waiting for the camera...", (20, HEIGHT // 2), 0.7, DIM, 1)
        else:
            scaled = cv2.resize(img, (iw, HEIGHT), interpolation=cv2.INTER_LINEAR)
            view[...] = cv2.flip(scaled, 1) if self.mirror else scaled
            dim_outside_model_view(view, w, h, self.cfg, self.mirror)
        now = self.clock()
        with self._lock:
            pred, event = self._pred, self._event
        self._draw_event(view, event, now)
        if self.paused:
            (tw, _), _ = cv2.getTextSize("PAUSED", FONT, 0.8, 2)
            _blend_rect(view, iw - tw - 34, 10, iw - 10, 48, (0, 0, 0), 0.6)
            _put(view, "PAUSED", (iw - tw - 22, 38), 0.8, YELLOW, 2)
        self._draw_toast(view, now)
        if self.help:
            self._draw_help(view)
        self._draw_panel(canvas[:, iw:], pred, event, now)
        return canvas

    def _draw_event(self, view, event, now) -> None:
        if event is None:
            return
        ev, t = event
        age = now - t
        if age >= self.fade_s:
            return
        a = 1.0 - age / self.fade_s
        h, w = view.shape[:2]
        y0 = h - 70
        roi = view[y0:h - 12, 12:w - 12]
        tinted = roi.copy()
        tinted[...] = (tinted * 0.3).astype(np.uint8)
        color = self.colors.get(ev.label, WHITE)
        cv2.rectangle(tinted, (0, 0), (6, roi.shape[0] - 1), color, -1)
        cv2.putText(tinted, _name(ev.label), (20, 40), FONT, 1.0, color, 2, AA)
        cv2.putText(tinted, f"{ev.confidence:.0%}", (roi.shape[1] - 90, 40), FONT, 1.0, WHITE, 2, AA)
        cv2.addWeighted(tinted, a, roi, 1.0 - a, 0, dst=roi)

    def _draw_toast(self, view, now) -> None:
        if self._toast is None:
            return
        text, until, color = self._toast
        if now >= until:
            self._toast = None
            return
        (tw, th), _ = cv2.getTextSize(text, FONT, 0.6, 1)
        _blend_rect(view, 10, 10, 10 + tw + 20, 10 + th + 20, (0, 0, 0), 0.6)
        _put(view, text, (20, 20 + th), 0.6, color, 1)

    def _draw_help(self, view) -> None:
        lines = [("q / Esc", "quit"), ("space", "pause / resume"), ("k", "arm / disarm keystrokes"),
                 ("h", "this help")]
        secs = self.cfg.recorder_frames / max(1.0, self.ring_fps)
        lines += [(str(i + 1), f"that was {_name(g)}") for i, g in enumerate(self.gestures[:9])]
        lines += [("0", "that was no gesture")]
        h, w = view.shape[:2]
        bw, bh = min(w - 40, 400), 94 + 24 * len(lines)
        x0, y0 = (w - bw) // 2, max(10, (h - bh) // 2)
        _blend_rect(view, x0, y0, x0 + bw, y0 + bh, (0, 0, 0), 0.75)
        _put(view, "keys", (x0 + 16, y0 + 28), 0.65, WHITE, 1)
        for i, (k, what) in enumerate(lines):
            y = y0 + 56 + 24 * i
            _put(view, k, (x0 + 16, y), 0.5, YELLOW, 1)
            _put(view, what, (x0 + 100, y), 0.5, WHITE, 1)
        _put(view, f"0-{min(9, len(self.gestures))} save the last {secs:.1f} s as a training clip",
             (x0 + 16, y0 + bh - 30), 0.42, DIM, 1)
        _put(view, "the model sees only the bright box",
             (x0 + 16, y0 + bh - 12), 0.42, DIM, 1)

    def keys_status(self) -> tuple[str, tuple]:
        """The panel's keystroke line and its colour; ``[k]`` only where the k key can arm them."""
        if self.keys is None:   # no map, or no key sink in this run (headless --record-overlay, no pynput)
            return ("none mapped" if not self.cfg.keys.map else "not sent in this run"), DIM
        if getattr(self.keys, "dry_run", False):
            return "dry run (printed)   [k]", YELLOW
        if self.keys.armed:
            return "ARMED   [k]", RED
        return "off   [k]", DIM

    def _draw_panel(self, panel, pred, event, now) -> None:
        panel[...] = BG
        w = panel.shape[1]
        x = 16
        s = self._snapshot()
        status = "paused" if self.paused else s.get("status", "starting")
        scol = {"running": GREEN, "paused": YELLOW, "camera lost": RED}.get(status, YELLOW)
        _put(panel, "gesture", (x, 30), 0.7, WHITE, 2)
        (tw, _), _ = cv2.getTextSize(status, FONT, 0.5, 1)
        cv2.circle(panel, (w - tw - 30, 25), 5, scol, -1)
        _put(panel, status, (w - tw - 16, 30), 0.5, scol, 1)
        model = getattr(self.pipeline, "model", None)
        y = 52
        if model is not None and getattr(model, "untrained", False):
            _put(panel, "UNTRAINED model: events meaningless", (x, y), 0.42, RED, 1)
        # probabilities (smoothed, what the debouncer compares with the threshold)
        probs = None
        if pred is not None:
            probs = np.asarray(pred.smoothed if pred.smoothed is not None else pred.probs, np.float32)
        top = int(np.argmax(probs)) if probs is not None and len(probs) else -1
        bx0, bx1 = x, w - 62
        thr = self.cfg.debounce.threshold
        y = 76
        for i, lab in enumerate(self.labels):
            p = float(probs[i]) if probs is not None and i < len(probs) else 0.0
            color = self.colors.get(lab, WHITE)
            _put(panel, _name(lab), (x, y), 0.45, WHITE if i == top else DIM, 1)
            hint = "0" if lab == NO_GESTURE else (str(self.gestures.index(lab) + 1)
                                                  if self.gestures.index(lab) < 9 else "")
            if hint:  # the correction key for this label
                _put(panel, f"[{hint}]", (w - 40, y), 0.4, (110, 110, 110), 1)
            yb = y + 6
            cv2.rectangle(panel, (bx0, yb), (bx1, yb + 12), (58, 56, 54), -1)
            if p > 0:
                cv2.rectangle(panel, (bx0, yb), (bx0 + int((bx1 - bx0) * min(1.0, p)), yb + 12), color, -1)
            tx = bx0 + int((bx1 - bx0) * thr)
            cv2.line(panel, (tx, yb - 2), (tx, yb + 14), WHITE, 1)
            _put(panel, f"{p:.2f}" if probs is not None else "-", (bx1 + 8, yb + 11), 0.45,
                 WHITE if i == top else DIM, 1)
            y += 36
        # last event
        y += 4
        if event is not None:
            ev, t = event
            _put(panel, "last event", (x, y), 0.42, DIM, 1)
            _put(panel, f"{now - t:.1f} s ago", (w - 90, y), 0.42, DIM, 1)
            y += 22
            _put(panel, f"{_name(ev.label)}  {ev.confidence:.2f}", (x, y), 0.55,
                 self.colors.get(ev.label, WHITE), 1)
        else:
            _put(panel, "last event", (x, y), 0.42, DIM, 1)
            y += 22
            _put(panel, "none yet", (x, y), 0.55, DIM, 1)
        y += 12
        cv2.line(panel, (x, y), (w - 16, y), (70, 68, 66), 1)
        # pipeline health
        lat = (1000 * (pred.decided_time - pred.capture_time)) if pred is not None else float("nan")
        p95 = s.get("latency_p95_ms", float("nan"))
        dropped = getattr(self.pipeline, "dropped_frames", 0) if self.pipeline is not None else 0
        ad = getattr(self.pipeline, "adapter", None)
        to = f" -> {self.pipeline.frame_rate:g}" if ad is not None and ad.resampling else ""
        light = s.get("light")
        rows = [
            ("capture", f"{s.get('capture_fps', 0.0):.1f} fps{to}", WHITE),
            ("inference", f"{s.get('clips_per_s', 0.0):.1f} clips/s", WHITE),
            ("latency", "-" if np.isnan(lat) else f"{lat:.0f} ms (p95 {p95:.0f})", WHITE),
            ("dropped", f"{dropped} frames", RED if dropped else WHITE),
            ("light", light.text if light is not None else "-",
             (WHITE, YELLOW, RED)[light.severity] if light is not None else WHITE),
        ]
        y += 22
        for k, v, col in rows:
            _put(panel, k, (x, y), 0.45, DIM, 1)
            (tw, _), _ = cv2.getTextSize(v, FONT, 0.45, 1)
            _put(panel, v, (x + 96, y), 0.45 if x + 96 + tw <= w - 8 else 0.45 * (w - 8 - x - 96) / tw, col, 1)
            y += 20
        y += 2
        cv2.line(panel, (x, y - 10), (w - 16, y - 10), (70, 68, 66), 1)
        # keystrokes and recording
        y += 10
        ktext, kcol = self.keys_status()
        _put(panel, "keys", (x, y), 0.45, DIM, 1)
        _put(panel, ktext, (x + 96, y), 0.45, kcol, 1)
        y += 21
        rec = self.recorder.status() if self.recorder is not None else "0-4 saves a clip"
        _put(panel, "clips", (x, y), 0.45, DIM, 1)
        _put(panel, rec, (x + 96, y), 0.45, WHITE if self.recorder is not None else DIM, 1)
        if self.record_path is not None:   # --record-overlay: beside the title (the rows below fill the panel)
            cv2.circle(panel, (x + 112, 25), 5, RED, -1)
            _put(panel, "rec", (x + 122, 30), 0.42, WHITE, 1)
        _put(panel, "h help   q quit   space pause", (x, HEIGHT - 14), 0.42, DIM, 1)

    # -- --record-overlay -----------------------------------------------------------------------
    def _record(self, canvas: np.ndarray) -> None:
        if self._writer is None:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            h, w = canvas.shape[:2]
            self._writer = cv2.VideoWriter(str(self.record_path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                self.record_path, path = None, self.record_path
                raise GestureError(f"{path}: cannot write the overlay video (use a .mp4 path in a writable folder)")
        self._writer.write(canvas)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the overlay video, drain the clip recorder, close the window. Idempotent."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.recorder is not None:
            self.recorder.close()
        if self._guard is not None:
            self._guard.close()
            self._guard = None
        if self._window_open:
            self._window_open = False
            try:
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            except cv2.error:
                pass
