"""A window that stays black: a Qt bug on X11, and the guard that undoes it.

OpenCV's windows on Linux are Qt 5 windows. Qt's X11 backend can drop a burst of X events, the
window's ``MapNotify`` among them, when the CPU is busy while the window is being mapped. Qt then
takes the window for unmapped and never paints it: it is on screen, the right size, and black (or
whatever was beneath it) for good. Measured with a bare ``cv2.namedWindow`` + ``imshow`` under
Xvfb: black 10 times in 100 with two busy threads in the process, 0 in 200 idle, and 0 in 150
with the threads started only after the window had been shown and served its events for 0.3 s
(which is why :func:`realtime.overlay.open_window` can settle a window before the pipeline starts).
Other busy processes defeat that: the overlay window test under Xvfb, with two busy processes on the
machine's two cores, still failed 1 time in 5 with the settling alone.

:class:`PaintGuard` watches a window for its first seconds from a second X connection (python-xlib,
which pynput installs on Linux): when the pixels the X server holds for the window are not what was
shown, it unmaps and maps the window once more, which hands Qt a fresh ``MapNotify`` (the same
standalone test: 8 black windows of 100, all 8 painted after it). Nothing here is needed, or
done, where there is no X server or no python-xlib; any X error only ends the watch.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import deque

import numpy as np


class NoXServer(Exception):
    """No X server to talk to; the message says why, in one line."""


def open_display():
    """A python-xlib connection to ``$DISPLAY``.

    Raises :class:`NoXServer` (DISPLAY unset, or nothing answers there) or ImportError (no
    python-xlib, which pynput installs on Linux). A DISPLAY on a host that is gone fails in 5 s.
    """
    name = os.environ.get("DISPLAY")
    if not name:
        raise NoXServer("DISPLAY is not set")
    import Xlib.display

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5.0)
    try:
        return Xlib.display.Display(name)
    except Exception as e:   # python-xlib raises several kinds (no socket, refused, bad auth, bad name)
        why = " ".join(str(e).split()) or type(e).__name__
        raise NoXServer(f"DISPLAY={name}: no X server answers there ({why})") from e
    finally:
        socket.setdefaulttimeout(old)


class PaintGuard:
    """Watch the X window titled ``title`` (of this process) until it shows what was drawn.

    Call :meth:`check` with each canvas just shown (``cv2.imshow``); it compares the window's
    pixels in ``region`` (``(x0, y0, x1, y1)`` of the canvas; the whole canvas by default) with the
    canvas every ``every`` seconds, from ``first`` seconds after the guard was made, and maps the
    window again when they differ (at most ``max_remaps`` times, ``every * 3`` s apart). It stops
    once the window is seen painted, after ``give_up`` seconds, or on any X error.
    ``clock`` is injectable.
    """

    def __init__(self, display, title: str, first: float = 1.0, every: float = 0.5, give_up: float = 15.0,
                 max_remaps: int = 3, clock=time.monotonic, log=None):
        self.d = display
        self.title = title
        self.clock = clock
        self.t0 = clock()
        self.first, self.every, self.give_up, self.max_remaps = first, every, give_up, max_remaps
        self.log = log if log is not None else (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.window = None
        self.state = "watching"     # -> painted | gave up | error | closed (closed before it saw the window painted)
        self.remaps = 0
        self._next = self.t0 + first
        self._last_remap = -1e9

    @classmethod
    def create(cls, title: str, **kw) -> "PaintGuard | None":
        """A guard on ``$DISPLAY``, or None where there is none to watch (no X, no python-xlib)."""
        if sys.platform in ("win32", "darwin"):
            return None
        try:
            return cls(open_display(), title, **kw)
        except (NoXServer, ImportError):
            return None

    @property
    def active(self) -> bool:
        return self.state == "watching"

    def close(self) -> None:
        if self.d is not None:
            try:
                self.d.close()
            except Exception:
                pass
            self.d = None
        if self.state == "watching":
            self.state = "closed"

    def _find(self):
        """This process's top-level window with the title (under a window manager's frame too)."""
        root = self.d.screen().root
        pid_atom = self.d.intern_atom("_NET_WM_PID")
        queue = deque((c, 1) for c in root.query_tree().children)
        while queue:
            win, depth = queue.popleft()
            if win.get_wm_name() == self.title:
                prop = win.get_full_property(pid_atom, 0)
                if prop is None or (len(prop.value) and int(prop.value[0]) == os.getpid()):
                    return win
            if depth < 3:
                queue.extend((c, depth + 1) for c in win.query_tree().children)
        return None

    def _on_screen(self, x0: int, y0: int, x1: int, y1: int):
        """The part of the region (window coordinates) that lies on the screen, or None if under 16x16.

        An X server answers GetImage only for a window region that is on the screen (BadMatch
        otherwise), and a window manager may place the window partly off it.
        """
        root = self.d.screen().root
        o = root.translate_coords(self.window, 0, 0)     # the window's origin on the screen
        sw, sh = self.d.screen().width_in_pixels, self.d.screen().height_in_pixels
        g = self.window.get_geometry()
        x0, y0 = max(x0, -o.x, 0), max(y0, -o.y, 0)
        x1, y1 = min(x1, sw - o.x, g.width), min(y1, sh - o.y, g.height)
        return (x0, y0, x1, y1) if x1 - x0 >= 16 and y1 - y0 >= 16 else None

    def _pixels(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray | None:
        """The window's pixels in the region (BGR), or None when they cannot be read."""
        import Xlib.X

        w, h = x1 - x0, y1 - y0
        raw = self.window.get_image(x0, y0, w, h, Xlib.X.ZPixmap, 0xFFFFFFFF)
        if len(raw.data) != w * h * 4:      # not a 24/32-bit visual: cannot tell
            return None
        return np.frombuffer(raw.data, np.uint8).reshape(h, w, 4)[:, :, :3]

    def shows(self, canvas: np.ndarray, region=None) -> bool | None:
        """Whether the window holds ``canvas`` in ``region`` (the part of it on the screen: half its
        pixels within 6 levels); None: cannot tell (no window yet, or too little of it on the screen)."""
        if self.window is None:
            self.window = self._find()
            if self.window is None:
                return None
        visible = self._on_screen(*(region or (0, 0, canvas.shape[1], canvas.shape[0])))
        if visible is None:
            return None
        x0, y0, x1, y1 = visible
        got = self._pixels(x0, y0, x1, y1)
        if got is None:
            return None
        diff = np.abs(got.astype(np.int16) - canvas[y0:y1, x0:x1].astype(np.int16)).max(axis=2)
        return bool((diff <= 6).mean() >= 0.5)

    def remap(self) -> None:
        """Unmap and map the window again: Qt gets a fresh MapNotify and paints it."""
        self.window.unmap()
        self.d.sync()
        self.window.map()
        self.d.sync()

    def check(self, canvas: np.ndarray, region=None) -> str:
        """One look, if one is due; returns :attr:`state`."""
        if self.state != "watching":
            return self.state
        now = self.clock()
        if now < self._next:
            return self.state
        self._next = now + self.every
        try:
            seen = self.shows(canvas, region)
            if seen:
                self.state = "painted"
            elif now - self.t0 > self.give_up:
                self.state = "gave up"
                if seen is False:
                    self.log("window: still not painted after remapping it; move or resize it to redraw")
            elif seen is False and self.remaps < self.max_remaps and now - self._last_remap >= 3 * self.every:
                self.remap()
                self.remaps += 1
                self._last_remap = now
                self.log("window: the X server shows it unpainted (a Qt bug under CPU load); mapped it again")
        except Exception:   # an X error (window gone, off screen, server gone): stop watching, harmlessly
            self.state = "error"
        if self.state != "watching":
            self.close()
        return self.state
