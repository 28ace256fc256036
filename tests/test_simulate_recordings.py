"""scripts/simulate_recordings.py: the recordings the README's retraining numbers are measured with."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.preprocess import crop_frame

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "simulate_recordings.py"


def _read(path):
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            return np.stack(out)
        out.append(f)


def test_recordings_end_a_reaction_after_their_gesture(tmp_path):
    video = tmp_path / "s.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (171, 128))
    for i in range(300):                               # a bar that moves every frame: a frame off shows
        f = np.full((128, 171, 3), 40, np.uint8)
        x = 29 + (7 * i) % 100
        f[:, x : x + 8] = 230
        vw.write(f)
    vw.release()
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,140,160\n2_Fingers_Left,200,220\n")
    out = tmp_path / "rec"
    r = subprocess.run([sys.executable, str(SCRIPT), str(video), "--out", str(out), "--per-class", "1",
                        "--reaction", "5,5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "meta.csv")))
    assert [x["action"] for x in rows] == ["Shake_Hand", "2_Fingers_Left", "no_gesture"]
    assert all(x["frame_count"] == "128" and x["recorded_at"] for x in rows)   # the app's own rows
    crops = np.stack([crop_frame(f) for f in _read(video)])
    for row, end in zip(rows[:2], (165, 225)):
        clip = _read(out / row["file_path"]).astype(int)
        assert np.abs(clip - crops[end - 127 : end + 1]).mean() < 6               # ends 5 frames after the gesture
        assert np.abs(clip - crops[end - 126 : end + 2]).mean() > 12              # not one frame later
    quiet = _read(out / rows[2]["file_path"]).astype(int)
    ends = [e for e in range(127, 140) if np.abs(quiet - crops[e - 127 : e + 1]).mean() < 6]
    assert len(ends) == 1                              # 128 frames before the first gesture starts


def test_bad_reaction_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "x.mp4", "--out", str(tmp_path), "--reaction", "9,3"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "simulate_recordings: --reaction 9,3: want LO,HI frames with 0 <= LO <= HI, e.g. 8,25"
