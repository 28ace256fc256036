"""A simulated user's recordings: what the live window's 1-4 / 0 keys would have saved from an annotated video.

The live window saves the last ``recorder_frames`` (128) frames when a correction key is pressed, so a recording
ends a reaction time after its gesture. For the first N gestures of each class in the video, this writes the 128
crops ending 8-25 frames (``--reaction``) after the gesture's end; for ``no_gesture``, N windows of 128 frames with
no gesture frame in them. They are written by the app's own recorder (``realtime.recorder.write_clip``), so
``gesture train --meta OUT/meta.csv`` reads them as it reads a user's. The README's "Retraining on your own
mistakes" numbers come from recordings made this way from a video in one look (``restyle_stream.py --look-seed``).
Usage: python scripts/simulate_recordings.py VIDEO.mp4 --out DIR [--per-class N] [--seed S] [--reaction LO,HI]
       [--annotations CSV]   (default: VIDEO's .csv beside it, as `gesture synth stream` writes it)
"""

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from realtime.config import NO_GESTURE, load_config
from realtime.errors import GestureError
from realtime.evaluate import read_annotations
from realtime.features import read_video
from realtime.preprocess import crop_frames
from realtime.recorder import write_clip


def simulate(video, annotations, out, per_class=10, seed=0, reaction=(8, 25)) -> dict:
    """Write the recordings; returns how many of each label were written."""
    cfg = load_config()
    labels, n_keep = list(cfg.labels), cfg.recorder_frames
    rng = np.random.default_rng(seed)
    frames, fps = read_video(video, with_fps=True)
    crops = crop_frames(frames, cfg.preprocess, cfg.pipeline.size)
    del frames
    if len(crops) < n_keep:
        raise GestureError(f"{video}: {len(crops)} frames, fewer than one recording ({n_keep})")
    gestures = read_annotations(annotations, labels)
    busy = np.zeros(len(crops), bool)
    for _, s, e in gestures:
        busy[s : e + 1] = True
    t0 = datetime(2026, 1, 1).astimezone()  # distinct, ordered names: one second apart
    count = dict.fromkeys(labels, 0)

    def save(end, label):
        write_clip(out, crops[end - n_keep + 1 : end + 1], label, fps=fps, labels=labels,
                   now=t0 + timedelta(seconds=sum(count.values())))
        count[label] += 1

    for lab, _, e in gestures:
        end = e + int(rng.integers(reaction[0], reaction[1] + 1))
        if count[lab] < per_class and n_keep - 1 <= end < len(crops):
            save(end, lab)
    quiet = [i for i in range(n_keep - 1, len(crops)) if not busy[i - n_keep + 1 : i + 1].any()]
    used: list[int] = []
    for end in rng.permutation(quiet):
        if count[NO_GESTURE] >= per_class:
            break
        if all(abs(int(end) - u) >= n_keep for u in used):  # no two share a frame
            save(int(end), NO_GESTURE)
            used.append(int(end))
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--out", required=True, help="the recordings folder (meta.csv, Train_Data/<label>/)")
    ap.add_argument("--annotations", help="label,start_frame,end_frame CSV (default: the video's .csv)")
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reaction", default="8,25", help="frames from a gesture's end to the key press: LO,HI")
    a = ap.parse_args()
    try:
        lo, hi = (int(v) for v in a.reaction.split(","))
        if not 0 <= lo <= hi:
            raise ValueError
    except ValueError:
        sys.exit(f"simulate_recordings: --reaction {a.reaction}: want LO,HI frames with 0 <= LO <= HI, e.g. 8,25")
    if a.per_class < 1:
        sys.exit(f"simulate_recordings: --per-class {a.per_class}: must be at least 1")
    try:
        count = simulate(a.video, a.annotations or Path(a.video).with_suffix(".csv"), a.out, a.per_class, a.seed,
                         (lo, hi))
    except GestureError as e:
        sys.exit(f"simulate_recordings: {e}")
    print(f"wrote {sum(count.values())} recordings to {a.out}: "
          + ", ".join(f"{k} {v}" for k, v in count.items()))


if __name__ == "__main__":
    main()
