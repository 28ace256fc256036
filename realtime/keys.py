"""Gesture -> keystroke sink: sends the key or key combination mapped to an event's label.

``keys.map`` in ``config.yaml`` maps labels to pynput key names::

    2_Fingers_Left: left        # a named key (pynput's ``Key.left``)
    1_Finger_Click: space
    Shake_Hand: ctrl+z          # modifiers, then one key: press ctrl, tap z, release ctrl
    2_Fingers_Right: d          # one character

Names are checked when the sink is built, against the member names of
pynput's ``Key`` enum read from pynput's source (importing pynput on X11
needs a display, and validation must not), so a typo fails at start-up with
the config key and the bad name, not at the first gesture.

Safety: only keys from the map are ever sent, nothing is sent while disarmed,
and nothing from the config is ever run as a command. ``dry_run`` prints
``would send: ctrl+z (Shake_Hand)`` instead of sending.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .engine import Event
from .errors import ConfigError, GestureError

# Only used when pynput is not installed, so validation still works (and names the problem).
_FALLBACK_KEY_NAMES = frozenset(
    "alt alt_l alt_r alt_gr backspace caps_lock cmd cmd_l cmd_r ctrl ctrl_l ctrl_r delete down end enter esc "
    "home left page_down page_up right shift shift_l shift_r space tab up insert menu num_lock pause "
    "print_screen scroll_lock media_play_pause media_volume_mute media_volume_down media_volume_up "
    "media_previous media_next".split()
    + [f"f{i}" for i in range(1, 21)]
)

MODIFIERS = frozenset(
    "alt alt_l alt_r alt_gr cmd cmd_l cmd_r ctrl ctrl_l ctrl_r shift shift_l shift_r".split()
)


@lru_cache(maxsize=1)
def key_names() -> frozenset[str]:
    """pynput's named keys (``Key.<name>``), read from its source without importing it.

    ``import pynput`` picks a backend at import time and on X11 fails without a
    display; parsing ``pynput/keyboard/_base.py`` gives the same names anywhere.
    """
    try:
        spec = importlib.util.find_spec("pynput")  # locates the package without running it
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return _FALLBACK_KEY_NAMES
    base = Path(spec.origin).parent / "keyboard" / "_base.py"
    try:
        tree = ast.parse(base.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return _FALLBACK_KEY_NAMES
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Key":
            names = {t.id for stmt in node.body if isinstance(stmt, ast.Assign)
                     for t in stmt.targets if isinstance(t, ast.Name) and not t.id.startswith("_")}
            if names:
                return frozenset(names)
    return _FALLBACK_KEY_NAMES


@dataclass(frozen=True)
class KeyCombo:
    """``modifiers`` (pynput names, pressed in order) then ``key`` (a pynput name or one character)."""

    modifiers: tuple[str, ...]
    key: str

    def __str__(self) -> str:
        return "+".join(self.modifiers + (self.key,))


def _split(spec: str) -> list[str]:
    """``"ctrl+z"`` -> ["ctrl", "z"]; a literal plus is allowed last: ``"ctrl++"`` -> ["ctrl", "+"]."""
    if spec == "+":
        return ["+"]
    if spec.endswith("++"):
        return spec[:-2].split("+") + ["+"]
    return spec.split("+")


def parse_combo(spec: str, where: str = "key") -> KeyCombo:
    """Validate one key spec (``left``, ``ctrl+z``, ``shift+tab``, ``a``, ``f5``) or raise ConfigError.

    Named keys are case-insensitive; a single character is kept as written.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"'{where}' must be a key name such as left, space, ctrl+z; got {spec!r}")
    names = key_names()
    parts = [p.strip() for p in _split(spec.strip())]
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not part:
            raise ConfigError(f"'{where}': {spec!r} has an empty part (write combinations like ctrl+z)")
        if len(part) == 1:
            if not part.isprintable():
                raise ConfigError(f"'{where}': {part!r} in {spec!r} is not a printable character")
            if not last:
                raise ConfigError(f"'{where}': {part!r} in {spec!r} is not a modifier; only the last key of a "
                                  f"combination may be a character (modifiers: {', '.join(sorted(MODIFIERS))})")
            out.append(part)
            continue
        name = part.lower()
        if name not in names:
            raise ConfigError(
                f"'{where}': unknown key name {part!r} in {spec!r} (use a single character or one of "
                f"pynput's key names: {', '.join(sorted(names))})"
            )
        if not last and name not in MODIFIERS:
            raise ConfigError(f"'{where}': {part!r} in {spec!r} is not a modifier; only the last key of a "
                              f"combination may be a plain key (modifiers: {', '.join(sorted(MODIFIERS))})")
        out.append(name)
    return KeyCombo(tuple(out[:-1]), out[-1])


def parse_keymap(keymap: dict[str, str], labels=None) -> dict[str, KeyCombo]:
    """``{label: spec}`` -> ``{label: KeyCombo}``; errors name ``keys.map.<label>`` and the bad name."""
    out = {}
    for label, spec in (keymap or {}).items():
        where = f"keys.map.{label}"
        if labels is not None and label not in labels:
            raise ConfigError(f"'{where}' is not a label (labels: {list(labels)})")
        out[label] = parse_combo(spec, where)
    return out


class KeySink:
    """Sends ``keymap[event.label]`` when armed. Sinks protocol: ``on_event``, ``close``.

    ``armed``: start armed (``--keys`` or ``keys.armed``); ``toggle()`` flips it (``k`` in the window).
    ``dry_run``: print ``would send: ctrl+z (Shake_Hand)`` to ``stream`` and send nothing, armed or not.
    ``controller``: a pynput ``keyboard.Controller``-like object; default: pynput's, made on first send.
    """

    def __init__(self, keymap: dict[str, str], armed: bool = False, dry_run: bool = False,
                 labels=None, stream=None, controller=None):
        self.combos = parse_keymap(keymap, labels)
        self.dry_run = bool(dry_run)
        self.stream = stream if stream is not None else sys.stdout
        self._armed = bool(armed)
        self._lock = threading.Lock()
        self._controller = controller
        self.sent: list[str] = []   # what was sent (or would have been), newest last; bounded below
        self.last: str | None = None
        if self._armed and not self.dry_run:
            self._get_controller()   # armed from the start: fail now, with a clear message, not at the first event

    # -- arming -----------------------------------------------------------------------------
    @property
    def armed(self) -> bool:
        return self._armed

    def toggle(self) -> bool:
        """Arm if disarmed and vice versa; returns the new state.

        Arming reaches the keyboard backend at once; if that fails the sink stays
        disarmed and the :class:`GestureError` is raised.
        """
        with self._lock:
            if not self._armed and not self.dry_run:
                self._get_controller()
            self._armed = not self._armed
            return self._armed

    # -- sending ----------------------------------------------------------------------------
    def _get_controller(self):
        if self._controller is None:
            try:
                from pynput.keyboard import Controller  # lazy: needs a display on X11
            except ImportError as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise GestureError(f"keystrokes: the pynput keyboard backend is unavailable ({first}); "
                                   "--dry-run prints the keys instead of pressing them") from None
            self._controller = Controller()
        return self._controller

    @staticmethod
    def _resolve(name: str):
        from pynput.keyboard import Key

        return getattr(Key, name) if len(name) > 1 else name

    def send(self, combo: KeyCombo) -> None:
        """Press the modifiers in order, tap the key, release the modifiers in reverse order."""
        kb = self._get_controller()
        mods = [self._resolve(m) for m in combo.modifiers]
        key = self._resolve(combo.key)
        pressed = []
        try:
            for m in mods:
                kb.press(m)
                pressed.append(m)
            kb.press(key)
            kb.release(key)
        finally:
            for m in reversed(pressed):  # never leave a modifier held down
                kb.release(m)

    def on_event(self, ev: Event) -> None:
        combo = self.combos.get(ev.label)
        if combo is None:
            return
        if self.dry_run:
            print(f"would send: {combo} ({ev.label})", file=self.stream, flush=True)
        elif not self._armed:
            return
        else:
            with self._lock:  # one combination at a time, so modifiers never interleave
                self.send(combo)
        self.last = f"{combo} ({ev.label})"
        self.sent.append(str(combo))
        del self.sent[:-100]

    def close(self) -> None:
        self._controller = None
