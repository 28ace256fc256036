"""``gesture train``: labelled clips -> a model folder the live engine runs.

Two backbones:

* ``--backbone small`` (default): the width-scaled C3D trained from scratch in
  two stages, the backbone on single augmented clips, then the head on windows
  of its frozen features with the clips placed in context (:mod:`realtime.small`).
* ``--weights sports1m.h5``: the frozen full C3D. fc7 features of every clip in
  a fixed context (held edge frames) are computed once at an 8-frame stride and
  cached on disk, keyed by the video's bytes and the preprocessing; the head is
  then trained on the cache (:mod:`realtime.frozen`).

Both train on what the live engine sees: windows of 8 features 16 frames apart,
labelled by where the gesture ends in the window. Split by video, stratified;
progress bars; early stopping; the best checkpoint kept; an interrupted run
resumes from its last checkpoint (``OUT/.checkpoint``).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import NO_GESTURE, Config
from .dataset import Item, load_crops, read_meta
from .errors import GestureError, writable_file


@dataclass
class Clip:
    crops: np.ndarray   # (T, size, size, 3) uint8
    label: int
    item: Item


def load_dataset(metas, cfg: Config, strict: bool = False, progress: bool = True):
    """Read every meta, load every clip's crops. Clips shorter than one C3D clip are skipped and listed."""
    from tqdm import tqdm

    items: list[Item] = []
    for m in metas:
        items += read_meta(m, cfg.labels)
    L = cfg.pipeline.clip_len
    clips, skipped = [], []
    # OpenCV decodes and resizes without the GIL: one thread per core loads clips that much faster
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        loaded = pool.map(lambda it: load_crops(it, cfg), items)
        for it, crops in tqdm(zip(items, loaded), total=len(items), desc="loading clips", unit="clip",
                              disable=not progress or None):
            if len(crops) < L:
                msg = f"{it.path}: {len(crops)} frames, fewer than {L} ({it.source})"
                if strict:
                    raise GestureError(msg + "; --strict makes this fatal")
                skipped.append(msg)
                continue
            clips.append(Clip(crops, cfg.labels.index(it.label), it))
    finally:
        pool.shutdown(cancel_futures=True)  # an error (--strict, a bad file) stops the rest at once
    if skipped:
        print(f"skipped {len(skipped)} clip(s) shorter than {L} frames:", file=sys.stderr)
        for s in skipped:
            print(f"  {s}", file=sys.stderr)
    if not clips:
        raise GestureError("no usable clips (all were missing or shorter than one clip)")
    have = {c.label for c in clips}
    absent = [lab for i, lab in enumerate(cfg.labels) if i not in have and lab != NO_GESTURE]
    if absent:  # a user's own recordings alone: a head retrained on them forgets every other gesture
        print(f"warning: no clips of {', '.join(absent)}: the model will not learn "
              f"{'it' if len(absent) == 1 else 'them'}; add rendered clips beside yours (gesture synth clips --out "
              "data/train --per-class 200 --seed 1, then --meta data/train/meta.csv as well)", file=sys.stderr)
    return clips, skipped


def plot_report(out: Path, histories: dict[str, list[dict]], cm: np.ndarray, labels: list[str]) -> None:
    """``curves.png`` (one row of loss / accuracy per training stage) and ``confusion.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = {k: v for k, v in histories.items() if v}
    if histories:
        fig, axes = plt.subplots(len(histories), 2, figsize=(10, 3.4 * len(histories)), squeeze=False)
        for (title, history), ax in zip(histories.items(), axes):
            st = [h["step"] for h in history]
            ax[0].plot(st, [h["loss"] for h in history], label="train")
            ax[0].plot(st, [h["val_loss"] for h in history], label="val")
            if any("val_stream_loss" in h for h in history):
                ax[0].plot(st, [h.get("val_stream_loss", np.nan) for h in history], label="val (stream pieces)")
            ax[0].set_title(f"{title}: loss", fontsize=10)
            ax[0].legend()
            if any("acc" in h for h in history):
                ax[1].plot(st, [h["acc"] for h in history if "acc" in h], label="train")
            ax[1].plot(st, [h["val_acc"] for h in history], label="val")
            if any("val_stream_acc" in h for h in history):
                ax[1].plot(st, [h.get("val_stream_acc", np.nan) for h in history], label="val (stream pieces)")
            ax[1].set_title(f"{title}: accuracy", fontsize=10)
            ax[1].set_ylim(0, 1)
            ax[1].legend()
            for a in ax:
                a.set_xlabel("step" if "stage 1" in title else "epoch")
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=9)
    ax.set_title("clip confusion (validation)")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)


def train_command(args, cfg: Config) -> int:
    out = Path(args.out)
    if (out / "model.json").exists() and not (out / ".checkpoint").is_dir() and not getattr(args, "overwrite", False):
        # a finished model this run did not start (the bundled one, one trained elsewhere or by --head-only):
        # hours of training must not go because --out was mistyped
        raise GestureError(f"{out}: holds a trained model already; training would replace it: choose another "
                           "--out, or give --overwrite")
    if args.weights and getattr(args, "stream", None):
        raise GestureError("--stream trains the small backbone's head; it cannot be combined with --weights")
    if args.weights and getattr(args, "init", None):
        raise GestureError("--init fine-tunes a small-backbone model; it cannot be combined with --weights")
    if getattr(args, "head_only", False) and not getattr(args, "init", None):
        raise GestureError("--head-only retrains the head of an existing model: give it --init MODEL_DIR")
    if args.weights and getattr(args, "colour_jitter", 0.0):
        raise GestureError("--colour-jitter augments the small backbone's training clips; the frozen --weights "
                           "path trains on cached features and cannot use it")
    if out.exists() and not out.is_dir():
        raise GestureError(f"{out}: --out is a file; give a folder for the model")
    writable_file(out / "model.json", "--out")   # the model is written at the end of the run: not lost there
    if getattr(args, "stream", None):  # before minutes of reading clips, not after
        from .small import stream_files

        for sp in args.stream:
            stream_files(sp)
    if args.weights:
        return train_frozen(args, cfg, out)
    return train_small(args, cfg, out)


def train_small(args, cfg: Config, out: Path) -> int:
    from .small import train_small as run

    return run(args, cfg, out)


def train_frozen(args, cfg: Config, out: Path) -> int:
    from .frozen import train_frozen_head

    return train_frozen_head(args, cfg, out)
