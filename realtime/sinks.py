"""Simple sinks: a JSON-lines event log, a stdout printer and a progress bar over a file's frames.

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


class ProgressSink:
    """A progress bar over a video file's frames (on stderr, and only on a terminal unless ``disable=False``),
    moved by each decision's frame: ``gesture eval --stream`` plays a 10-minute video for a minute with the
    bundled model, and for over an hour with the full Sports1M C3D."""

    def __init__(self, total: int | None, desc: str, file=None, disable: bool | None = None):
        from tqdm import tqdm

        self.bar = tqdm(total=total or None, desc=desc, unit="frame", file=file or sys.stderr, disable=disable,
                        leave=False)

    def on_prediction(self, pred) -> None:
        n = int(pred.frame_id) + 1
        if n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def close(self) -> None:
        self.bar.close()
