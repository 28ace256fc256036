"""Simple event sinks: a JSON-lines event log and a stdout printer.

The window overlay, keystrokes and the recorder are sinks too, in their own modules.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .engine import Event
from .errors import GestureError


class JsonlEventSink:
    """Appends one JSON object per event to a file, flushed at once (a crash loses nothing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")
        except OSError as e:  # a folder of that name, a read-only place: said before the run, in one line
            raise GestureError(f"{self.path}: cannot write the events there ({e.strerror or e})") from None

    def on_event(self, ev: Event) -> None:
        self._f.write(json.dumps(ev.to_json()) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class PrintSink:
    """Prints each event as one JSON line on stdout (``--headless``)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def on_event(self, ev: Event) -> None:
        print(json.dumps(ev.to_json()), file=self.stream, flush=True)
