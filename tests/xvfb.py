"""A private X server for the window and keystroke tests, and a real X client that logs keys.

``Xvfb -displayfd`` picks a free display number itself, so parallel runs never
collide, and the tests never touch (or type into) the user's own display.

Fixtures (import them into a test module: ``from xvfb import xserver, xdisplay``):

* ``xserver`` (session): one :class:`Xvfb` shared by every module that imports it;
  skips with a reason when ``Xvfb`` or python-xlib is not installed.
* ``xdisplay``: sets ``DISPLAY`` to that server for one test (restored afterwards).
"""

from __future__ import annotations

import gc
import os
import select
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

XVFB = shutil.which("Xvfb")


class Xvfb:
    """``Xvfb :N -screen 0 1024x768x24 -nolisten tcp -noreset`` on a free display; ``stop()`` kills it."""

    def __init__(self, width: int = 1024, height: int = 768):
        self.width, self.height = width, height
        self.proc: subprocess.Popen | None = None
        self.display: str | None = None

    def start(self, timeout: float = 15.0) -> "Xvfb":
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [XVFB, "-displayfd", str(w), "-screen", "0", f"{self.width}x{self.height}x24", "-nolisten", "tcp",
                 # no reset when the last client leaves: a client connecting during a reset is dropped
                 "-noreset"],
                pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(w)
        try:
            buf = b""
            deadline = time.monotonic() + timeout
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    self.stop()
                    raise RuntimeError(f"Xvfb did not report a display within {timeout} s")
                chunk = os.read(r, 64)
                if not chunk:
                    self.stop()
                    raise RuntimeError("Xvfb exited before reporting its display")
                buf += chunk
        finally:
            os.close(r)
        self.display = ":" + buf.decode().strip()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def screenshot(self) -> np.ndarray:
        """The whole screen as ``(H, W, 3) uint8 BGR`` (python-xlib GetImage on the root window)."""
        import Xlib.X
        import Xlib.display

        d = Xlib.display.Display(self.display)
        try:
            root = d.screen().root
            g = root.get_geometry()
            raw = root.get_image(0, 0, g.width, g.height, Xlib.X.ZPixmap, 0xFFFFFFFF)
            # depth 24 in 32 bits per pixel, little-endian: B, G, R, pad
            return np.frombuffer(raw.data, np.uint8).reshape(g.height, g.width, 4)[:, :, :3].copy()
        finally:
            d.close()

    def windows(self) -> list[str]:
        """Every window on the server, one line each: id, name, map state, geometry (for failure messages)."""
        import Xlib.X
        import Xlib.display

        states = {Xlib.X.IsUnmapped: "unmapped", Xlib.X.IsUnviewable: "unviewable", Xlib.X.IsViewable: "viewable"}
        d = Xlib.display.Display(self.display)
        out = []
        try:
            def walk(win, depth):
                for child in win.query_tree().children:
                    try:
                        g, a = child.get_geometry(), child.get_attributes()
                        name = child.get_wm_name()
                    except Exception as e:  # the window went away meanwhile
                        out.append(f"{'  ' * depth}{child.id:#x} gone ({type(e).__name__})")
                        continue
                    out.append(f"{'  ' * depth}{child.id:#x} {name!r} {states.get(a.map_state, a.map_state)} "
                               f"{g.width}x{g.height}+{g.x}+{g.y}")
                    walk(child, depth + 1)
            walk(d.screen().root, 0)
        finally:
            d.close()
        return out


    def close_window(self, name: str) -> int:
        """Ask every top-level window named ``name`` to close, as a window manager does when its close
        button is clicked (a WM_DELETE_WINDOW message; Xvfb has no window manager). Returns how many."""
        import Xlib.X
        import Xlib.display
        import Xlib.error
        from Xlib.protocol import event

        d = Xlib.display.Display(self.display)
        try:
            protocols, delete = d.intern_atom("WM_PROTOCOLS"), d.intern_atom("WM_DELETE_WINDOW")
            n = 0
            for win in d.screen().root.query_tree().children:
                try:
                    if win.get_wm_name() == name and delete in (win.get_wm_protocols() or ()):
                        msg = event.ClientMessage(window=win, client_type=protocols,
                                                  data=(32, [delete, Xlib.X.CurrentTime, 0, 0, 0]))
                        win.send_event(msg, event_mask=Xlib.X.NoEventMask)
                        n += 1
                except Xlib.error.XError:   # the window went away meanwhile
                    continue
            d.flush()
        finally:
            d.close()
        return n


_shared: dict = {"server": None, "users": 0}
_shared_lock = threading.Lock()


@pytest.fixture(scope="session")
def xserver():
    if XVFB is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb); the window and keystroke tests need an X server")
    pytest.importorskip("Xlib", reason="python-xlib (a pynput dependency) is needed to talk to the X server")
    with _shared_lock:
        if _shared["server"] is None:
            _shared["server"] = Xvfb().start()
        _shared["users"] += 1
        server = _shared["server"]
    yield server
    with _shared_lock:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            gc.collect()  # X clients still referenced (pynput controllers) disconnect while the server is up
            _shared["server"].stop()
            _shared["server"] = None


@pytest.fixture
def xdisplay(xserver, monkeypatch):
    monkeypatch.setenv("DISPLAY", xserver.display)
    return xserver


# X keysym names of the non-modifier keys, and the modifier bits of an event's state.
_MODIFIER_KEYSYMS = {"Control_L", "Control_R", "Shift_L", "Shift_R", "Alt_L", "Alt_R", "Meta_L", "Meta_R",
                     "Super_L", "Super_R", "ISO_Level3_Shift", "Mode_switch"}
_STATE_BITS = (("ctrl", 1 << 2), ("shift", 1 << 0), ("alt", 1 << 3), ("cmd", 1 << 6))
# pynput key names -> X keysym names, for the keys the tests map.
PYNPUT_TO_KEYSYM = {"left": "Left", "right": "Right", "up": "Up", "down": "Down", "space": "space",
                    "enter": "Return", "tab": "Tab", "esc": "Escape", "backspace": "BackSpace"}


class KeyLogger:
    """A real X client: a small window that takes the input focus and records every KeyPress.

    ``presses``: ``[(keysym_name, frozenset(modifiers))]`` for non-modifier keys, in arrival order.
    ``with KeyLogger(display) as log: ...; log.wait_for(3)``.
    """

    def __init__(self, display: str):
        import Xlib.X
        import Xlib.XK
        import Xlib.display

        self._X = Xlib.X
        self.d = Xlib.display.Display(display)
        self._names = {}
        for group in ("miscellany", "latin1"):
            Xlib.XK.load_keysym_group(group)
        for n in dir(Xlib.XK):
            if n.startswith("XK_"):
                self._names.setdefault(getattr(Xlib.XK, n), n[3:])
        screen = self.d.screen()
        self.win = screen.root.create_window(
            0, 0, 200, 120, 0, screen.root_depth, Xlib.X.InputOutput, Xlib.X.CopyFromParent,
            background_pixel=screen.white_pixel,
            event_mask=Xlib.X.KeyPressMask | Xlib.X.StructureNotifyMask | Xlib.X.FocusChangeMask,
        )
        self.win.set_wm_name("keylogger")
        self.presses: list[tuple[str, frozenset]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="x-keylogger", daemon=True)

    def __enter__(self):
        X = self._X
        self.win.map()
        self.d.sync()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until it is viewable before focusing it
            if self.d.pending_events():
                if self.d.next_event().type == X.MapNotify:
                    break
            else:
                time.sleep(0.01)
        self.focus()
        self._thread.start()
        return self

    def focus(self) -> None:
        self.win.set_input_focus(self._X.RevertToParent, self._X.CurrentTime)
        self.d.sync()

    def _run(self) -> None:
        X = self._X
        while not self._stop.is_set():
            if not self.d.pending_events():
                select.select([self.d.fileno()], [], [], 0.02)
                continue
            e = self.d.next_event()
            if e.type != X.KeyPress:
                continue
            name = self._names.get(self.d.keycode_to_keysym(e.detail, 0), f"keycode{e.detail}")
            if name in _MODIFIER_KEYSYMS:
                continue
            mods = frozenset(m for m, bit in _STATE_BITS if e.state & bit)
            with self._lock:
                self.presses.append((name, mods))

    def wait_for(self, n: int, timeout: float = 5.0) -> list[tuple[str, frozenset]]:
        """The presses once there are ``n`` (or when ``timeout`` s pass)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.presses) >= n:
                    break
            time.sleep(0.02)
        with self._lock:
            return list(self.presses)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        self.win.destroy()
        self.d.close()


def expected_press(combo) -> tuple[str, frozenset]:
    """What :class:`KeyLogger` records for a :class:`realtime.keys.KeyCombo`."""
    key = PYNPUT_TO_KEYSYM.get(combo.key, combo.key)
    mods = frozenset(m.split("_")[0] for m in combo.modifiers)
    return key, mods
