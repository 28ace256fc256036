"""scripts/subsample_stream.py: the 15 fps copies the frame-rate numbers in the docs are measured on."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "subsample_stream.py"


def test_every_kth_frame_and_annotations_divided(tmp_path):
    src = tmp_path / "s.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    for i in range(31):                                   # frame i: a white bar at x = 2i..2i+3
        f = np.zeros((48, 64, 3), np.uint8)
        f[:, 2 * i : 2 * i + 4] = 255
        vw.write(f)
    vw.release()
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,9,20\n")
    out = tmp_path / "o.mp4"
    r = subprocess.run([sys.executable, str(SCRIPT), str(src), str(out), "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    assert abs(cap.get(cv2.CAP_PROP_FPS) - 15.0) < 0.01
    bars = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        bars.append(int(np.argmax(np.convolve(f.mean(axis=(0, 2)), np.ones(4), "valid"))))
    assert bars == [4 * j for j in range(16)]             # frames 0, 2, ..., 30
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert rows == [{"label": "Shake_Hand", "start_frame": "4", "end_frame": "10"}]


def test_bad_arguments_are_one_line(tmp_path):
    for args in ([], ["a.mp4", "b.mp4", "x"], ["a.mp4", "b.mp4", "0"]):
        r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.strip().startswith("usage:") and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none.mp4"), str(tmp_path / "o.mp4"), "2"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"{tmp_path / 'none.mp4'}: not found"
    assert not (tmp_path / "o.mp4").exists()
