"""A picture of a stream evaluation (``gesture eval --stream S.mp4 --plot T.png``).

One row per stretch of the video (a minute, longer for long videos): the smoothed probability of each
gesture as the debouncer saw it, the threshold it had to pass, the annotated gestures as bars above,
and the events as markers: matched, false (a red cross) and the gestures that were missed (hatched).
What a person checks first when a recognizer misbehaves on their footage: did it see the gesture at
all (a peak under the line), or did it fire on something else (a peak without a bar)?
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .engine import Prediction
from .errors import GestureError, writable_file

MAX_ROWS = 15
# label colours (matplotlib's tab10), in label order; no_gesture is not drawn
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


class PredictionLog:
    """A pipeline sink that keeps every decision: the window's end frame, the head's probabilities and the
    smoothed ones the debouncer judged (``scripts/tune_debounce.py`` replays the raw ones)."""

    def __init__(self):
        self.frames: list[int] = []
        self.probs: list[np.ndarray] = []
        self.smoothed: list[np.ndarray] = []

    def on_prediction(self, pred: Prediction) -> None:
        self.frames.append(int(pred.frame_id))
        self.probs.append(np.asarray(pred.probs, np.float32).copy())
        self.smoothed.append(np.asarray(pred.smoothed, np.float32).copy())

    def arrays(self, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
        """``(frames (n,), smoothed (n, n_labels))``, in the order decided (the worker decides window ends in order)."""
        if not self.frames:
            return np.zeros(0, int), np.zeros((0, n_labels), np.float32)
        return np.asarray(self.frames), np.stack(self.smoothed)


def check_plot_path(path: str | Path) -> Path:
    """The picture's path, checked before minutes of playback: a PNG name in a folder that exists or can be made."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise GestureError(f"{path}: --plot writes a PNG picture; give a name ending in .png")
    return writable_file(path, "--plot")


def row_seconds(duration_s: float) -> float:
    """Seconds per row: one minute, or whole minutes enough to keep the picture to MAX_ROWS rows."""
    return 60.0 * max(1, math.ceil(duration_s / 60.0 / MAX_ROWS))


def plot_timeline(path: str | Path, *, labels, fps: float, n_frames: int, frames: np.ndarray,
                  smoothed: np.ndarray, threshold: float, events: list[dict],
                  gestures: list[tuple[str, int, int]] | None = None, pairs: dict[int, int] | None = None,
                  title: str = "") -> Path:
    """Write the picture to ``path`` (PNG). ``events``: dicts with ``label`` and ``frame_id``; ``gestures``:
    ``(label, start_frame, end_frame)`` or None for unannotated footage; ``pairs``: gesture -> event index."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    path = check_plot_path(path)
    labels = list(labels)
    shown = [i for i, lab in enumerate(labels) if lab != "no_gesture"]
    colour = {labels[i]: COLOURS[k % len(COLOURS)] for k, i in enumerate(shown)}
    duration = max(n_frames, 1) / fps
    row_s = row_seconds(duration)
    n_rows = max(1, math.ceil(duration / row_s))
    pairs = pairs or {}
    matched_events = set(pairs.values())
    t = np.asarray(frames, float) / fps

    fig = Figure(figsize=(16, 1.25 + 1.45 * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, 1, squeeze=False)[:, 0]
    for r, ax in enumerate(axes):
        t0, t1 = r * row_s, (r + 1) * row_s
        sel = (t >= t0 - 1) & (t <= t1 + 1)
        for i in shown:
            ax.plot(t[sel], smoothed[sel, i], color=colour[labels[i]], lw=1.1)
        ax.axhline(threshold, color="0.35", lw=0.8, ls="--")
        for g, (lab, s, e) in enumerate(gestures or ()):
            gs, ge = s / fps, (e + 1) / fps
            if ge < t0 or gs > t1:
                continue
            missed = g not in pairs
            ax.add_patch(_bar(gs, ge, colour.get(lab, "0.5"), missed))
        for k, ev in enumerate(events):
            te = ev["frame_id"] / fps
            if not t0 <= te < t1:
                continue
            c = colour.get(ev["label"], "0.5")
            if gestures is None or k in matched_events:
                ax.plot([te], [1.27], marker="v", ms=8, color=c, mec="black", mew=0.5, ls="none")
            else:
                ax.plot([te], [1.27], marker="X", ms=10, color="#d62728", mec=c, mew=1.5, ls="none")
        ax.set_xlim(t0, t1 if n_rows > 1 else max(duration, 1.0))   # a short video fills its one row
        ax.set_ylim(0, 1.36)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", color="0.9", lw=0.6)
    axes[-1].set_xlabel("seconds into the video", fontsize=9)

    handles = [Line2D([], [], color=colour[labels[i]], lw=2, label=labels[i]) for i in shown]
    handles.append(Line2D([], [], color="0.35", lw=0.8, ls="--", label=f"threshold {threshold:g}"))
    handles.append(Line2D([], [], marker="v", color="0.6", mec="black", ls="none", label="event"))
    if gestures is not None:
        handles.append(Patch(facecolor="0.75", edgecolor="none", label="annotated gesture"))
        handles.append(Line2D([], [], marker="X", color="#d62728", ls="none", ms=9, label="false event"))
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="////", label="missed gesture"))
    h = fig.get_figheight()
    fig.suptitle(title, fontsize=10, y=1 - 0.06 / h, va="top")
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.32 / h))
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.55 / h, hspace=0.35, top=1 - 0.8 / h)
    tmp = path.with_name(path.stem + ".tmp.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)   # never a half-written picture under the asked name
    return path


def _bar(start_s: float, end_s: float, colour: str, missed: bool):
    from matplotlib.patches import Rectangle

    if missed:
        return Rectangle((start_s, 1.06), end_s - start_s, 0.12, facecolor="white", edgecolor=colour,
                         hatch="////", lw=1.2)
    return Rectangle((start_s, 1.06), end_s - start_s, 0.12, facecolor=colour, edgecolor="none")


def timeline_title(stream: str | Path, result: dict) -> str:
    """One line under which the picture stands: the video, and its scores when it was annotated."""
    name = Path(stream).name
    if result.get("levenshtein_accuracy") is None:
        return f"{name}: {result['n_events']} events (no annotations: unscored)"
    return (f"{name}: Levenshtein accuracy {result['levenshtein_accuracy']:.3f}, {result['matched']} of "
            f"{result['n_gestures']} gestures matched, {result['false_events']} false events "
            f"({result['false_per_min']:.2f} a minute of no_gesture)")
