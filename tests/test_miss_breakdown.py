"""scripts/miss_breakdown.py: which gestures of a rendered stream were missed, counted by what made them."""

import json
import subprocess
import sys
from pathlib import Path

import helpers
from realtime.evaluate import match_events, read_annotations
from realtime.synth import SyntheticStream, write_stream

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "miss_breakdown.py"


def _run(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=helpers.subprocess_env(), timeout=120)


def test_misses_are_counted_in_the_bins_of_the_gestures_that_were_missed(tmp_path):
    mp4, csv_path = write_stream(tmp_path / "s.mp4", 0.5, 5, width=160, height=120, progress=False)
    ann = read_annotations(csv_path, helpers.tiny_config().labels)
    assert len(ann) >= 4
    # the engine's events as `gesture eval` reports them: every gesture answered at its end but the first and
    # the third, and one false event
    events = [{"label": lab, "frame_id": b + 5} for i, (lab, a, b) in enumerate(ann) if i not in (0, 2)]
    events.append({"label": "Shake_Hand", "frame_id": 3})
    run = {"annotations": str(csv_path), "frames": 900, "source_fps": 30.0, "events": events}
    (tmp_path / "ev.json").write_text(json.dumps(run))

    r = _run("--eval", "ev.json", "--seed", 5, "--width", 160, "--height", 120, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["n"] == len(ann) and b["missed"] == 2 == match_events(events, ann, 30.0, 900)["missed"]

    st = SyntheticStream(5, width=160, height=120)
    for _ in range(900):
        st.advance()
    missed = [st.details[0], st.details[2]]
    labels = [ann[0][0], ann[2][0]]
    for part, key in (("by_label", "label"), ("by_motion", "motion")):
        assert sum(d["n"] for d in b[part]) == len(ann)
        got = {d[key]: d["missed"] for d in b[part]}
        want = labels if key == "label" else [d["motion"] for d in missed]
        assert got == {k: want.count(k) for k in got}, (part, got)
    hand = b["by_hand_length"]
    assert sum(d["n"] for d in hand) == len(ann) and sum(d["missed"] for d in hand) == 2
    for d in missed:
        length = d["palm_px"] * 1.95 / 120
        assert sum(h["missed"] for h in hand if h["from"] <= length < h["to"]) >= 1
    swipes = sum(lab.startswith("2_Fingers") for lab, _, _ in ann)
    assert sum(d["n"] for d in b["swipes_by_travel"]) == swipes

    table = _run("--eval", "ev.json", "--seed", 5, "--width", 160, "--height", 120, cwd=tmp_path).stdout
    assert table.startswith(f"{len(ann)} gestures, 2 missed") and "motion: real" in table


def test_the_wrong_seed_or_a_file_that_is_not_an_eval_run_is_one_line(tmp_path):
    _, csv_path = write_stream(tmp_path / "s.mp4", 0.3, 5, width=160, height=120, progress=False)
    (tmp_path / "ev.json").write_text(json.dumps({"annotations": str(csv_path), "frames": 540, "source_fps": 30.0,
                                                  "events": []}))
    r = _run("--eval", "ev.json", "--seed", 6, "--width", 160, "--height", 120, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert str(csv_path) in r.stderr and "seed 6" in r.stderr
    (tmp_path / "clips.json").write_text(json.dumps({"clip_accuracy": 0.9}))
    r = _run("--eval", "clips.json", "--seed", 5, cwd=tmp_path)
    assert r.returncode == 2 and "clips.json" in r.stderr and r.stderr.count("\n") == 1
    r = _run("--eval", "ev.json", "--eval", "clips.json", "--seed", 5, cwd=tmp_path)
    assert r.returncode == 2 and "one --seed per --eval" in r.stderr
