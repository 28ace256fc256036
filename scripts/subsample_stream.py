"""A lower-frame-rate copy of an annotated stream: every K-th frame, annotations divided by K.

What a camera at 1/K of the frame rate would have shown of the same scene (without its longer
exposure). Used to measure the frame-rate adapter (docs/ablation.md, "Session 7").
Usage: python scripts/subsample_stream.py IN.mp4 OUT.mp4 K   (IN.csv -> OUT.csv)
"""

import csv
import sys
from pathlib import Path

import cv2


USAGE = "usage: python scripts/subsample_stream.py IN.mp4 OUT.mp4 K   (K: keep every K-th frame, an integer >= 1)"


def main():
    if len(sys.argv) != 4 or not sys.argv[3].isdigit() or int(sys.argv[3]) < 1:
        sys.exit(USAGE)
    src, out, k = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    ann = src.with_suffix(".csv")
    if not src.exists() or not ann.exists():
        sys.exit(f"{src if not src.exists() else ann}: not found")
    cap = cv2.VideoCapture(str(src))
    fps, w, h = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps / k, (w, h))
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i % k == 0:
            vw.write(f)
        i += 1
    vw.release()
    cap.release()
    with open(ann, newline="") as f_in, open(out.with_suffix(".csv"), "w", newline="") as f_out:
        w_ = csv.writer(f_out, lineterminator="\n")
        w_.writerow(["label", "start_frame", "end_frame"])
        for r in csv.DictReader(f_in):
            w_.writerow([r["label"], int(r["start_frame"]) // k, int(r["end_frame"]) // k])
    print(f"wrote {out} ({fps / k:g} fps, {(i + k - 1) // k} frames) and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
