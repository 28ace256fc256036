"""Labelled clip datasets for training and evaluation (never imported by the live path).

Two layouts are read:

* a meta CSV in the seed's format, ``file_path,action[,frame_count]`` with paths
  relative to the CSV (``gesture synth clips`` and the desktop recorder write
  it; the recorder adds ``predicted,confidence,recorded_at``);
* a folder with one subfolder per label (``DIR/<label>/*.mp4``, or
  ``DIR/Train_Data/<label>/*.mp4``).

Clips the recorder saved are already the 112x112 crops the model sees (the
ring buffer holds crops); rows from a CSV with a ``recorded_at`` column are
therefore used as they are, every other video goes through the Caffe recipe. Every clip
is then brought to the model's frame rate (``pipeline.fps``, see ``realtime.framerate``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import GestureError
from .features import read_video
from .framerate import to_rate
from .preprocess import crop_frames

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class Item:
    path: Path
    label: str
    source: str            # "<csv>:<row>" or the folder, for error messages
    precropped: bool = False


def read_csv_rows(path: Path, what: str, need: str) -> list[list[str]]:
    """The rows of a CSV file, header first, or a one-line error naming ``path`` (``what``: the kind of file,
    ``need``: what its header must hold). utf-8-sig: a spreadsheet's byte-order mark is not part of the
    first column's name."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise GestureError(f"{path}: cannot read {what} ({type(e).__name__})") from None
    except csv.Error as e:  # e.g. a field over the csv module's size limit
        raise GestureError(f"{path}: not a valid CSV ({e})") from None
    if not rows:
        raise GestureError(f"{path}: empty {what} (need {need})")
    return rows


def read_meta(path: str | Path, labels) -> list[Item]:
    """Rows of a meta CSV or a label-per-subfolder directory. Errors name the file, row and field."""
    path = Path(path)
    labels = list(labels)
    if path.is_dir():
        return _read_folder(path, labels)
    if not path.exists():
        raise GestureError(f"{path}: meta CSV or dataset folder not found")
    rows = read_csv_rows(path, "meta CSV", "columns file_path,action")
    header = [h.strip() for h in rows[0]]
    for col in ("file_path", "action"):
        if col not in header:
            raise GestureError(f"{path}: missing column '{col}' (header: {','.join(header)})")
    fi, ai = header.index("file_path"), header.index("action")
    precropped = "recorded_at" in header
    items = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(fi, ai):
            raise GestureError(f"{path}: row {n}: expected {len(header)} fields, got {len(row)}")
        fp, action = row[fi].strip().strip("'\""), row[ai].strip()
        if action not in labels:
            raise GestureError(f"{path}: row {n}: unknown label '{action}' in 'action' (labels: {', '.join(labels)})")
        if not fp:
            raise GestureError(f"{path}: row {n}: empty 'file_path'")
        p = Path(fp)
        if not p.is_absolute():
            p = (path.parent / p)
        items.append(Item(p, action, f"{path}:{n}", precropped))
    if not items:
        raise GestureError(f"{path}: no rows (need at least one clip)")
    return items


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name == "__MACOSX"


def _read_folder(d: Path, labels) -> list[Item]:
    root = d / "Train_Data" if (d / "Train_Data").is_dir() else d
    meta = d / "meta.csv"
    if meta.is_file():
        return read_meta(meta, labels)
    items = []
    # hidden entries are not data: .ipynb_checkpoints, macOS's __MACOSX folders and "._clip.mp4" forks
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p)):
        if sub.name not in labels:
            raise GestureError(f"{sub}: folder name is not a label (labels: {', '.join(labels)})")
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in VIDEO_EXTS and not _hidden(f):
                items.append(Item(f, sub.name, str(sub)))
    if not items:
        raise GestureError(f"{d}: no videos found in label subfolders")
    return items


def load_crops(item: Item, cfg: Config) -> np.ndarray:
    """``(T, size, size, 3) uint8`` model-ready crops of one clip."""
    try:
        frames, fps = read_video(item.path, with_fps=True)
    except GestureError as e:  # which row of which CSV named it, too
        raise GestureError(f"{e} ({item.source})") from None
    s = cfg.pipeline.size
    if not (item.precropped and frames.shape[1:3] == (s, s)):
        frames = crop_frames(frames, cfg.preprocess, s)
    # at the model's frame rate, as the live path sees it (a 15 fps recording is not a fast gesture)
    return to_rate(frames, fps, cfg.pipeline.fps, cfg.capture.resample)


def content_key(path: Path, extra: str = "") -> str:
    """Hash of a file's bytes plus ``extra`` (preprocessing, model): the feature cache key."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    h.update(extra.encode())
    return h.hexdigest()[:32]


def stratified_split(items: list[Item], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val), split by video and stratified by label."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    by_label: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_label.setdefault(it.label, []).append(i)
    for lab in sorted(by_label):
        idx = np.array(by_label[lab])
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        if val_fraction > 0 and len(idx) > 1:
            n_val = max(1, n_val)
        val += idx[:n_val].tolist()
        train += idx[n_val:].tolist()
    return sorted(train), sorted(val)
