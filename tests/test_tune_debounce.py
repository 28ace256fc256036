"""scripts/tune_debounce.py replays the Debouncer over kept head outputs instead of running the engine: its
numbers are only worth anything if the replay gives what `gesture eval --stream` gives with the same settings."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import helpers

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "tune_debounce.py"


def _run(args, cwd):
    r = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       env=helpers.subprocess_env(), timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.timeout(300)
def test_a_setting_scored_by_replay_matches_the_live_engine(tmp_path):
    model, *_ = helpers.write_tiny_model(tmp_path / "tiny", seed=3)
    stream, _ = helpers.write_video(tmp_path / "s.mp4", n=300, seed=4)
    (tmp_path / "s.csv").write_text("label,start_frame,end_frame\nShake_Hand,100,140\n2_Fingers_Left,220,250\n")

    _run([model, stream, 4], tmp_path)                      # the grid: plays the stream once, keeps the outputs
    cache = next(tmp_path.glob("s_tiny_*_s4*.npz"))
    best = cache.with_suffix(".json")
    kept = best.read_text()
    z = np.load(cache)
    gesture = z["probs"][:, :4].max(1)                       # no_gesture is the last label
    thr = round(float(np.quantile(gesture, 0.7)), 4)         # a threshold this random model passes now and then
    assert 0.1 < thr < 0.5

    out = _run([model, stream, 4, "--at", f"1,{thr},0.5,0"], tmp_path)
    first = out.splitlines()[0]
    assert first.startswith(f"smoothing 1 threshold {thr} cooldown 0.5 opposite 0.0")
    matched, false = map(int, re.search(r"\(matched (\d+), false (\d+)\)", first).groups())
    assert best.read_text() == kept                          # one setting does not overwrite the grid's best

    live = subprocess.run(
        [*helpers.gesture_cmd(), "eval", "--model", str(model), "--stream", str(stream), "--json",
         "--set", "pipeline.stride=4", "--set", "debounce.smoothing=1", "--set", f"debounce.threshold={thr}",
         "--set", f"debounce.rearm={round(thr - 0.1, 6)}", "--set", "debounce.cooldown_s=0.5",
         "--set", "debounce.opposite_s=0"],
        capture_output=True, text=True, env=helpers.subprocess_env(), timeout=240)
    assert live.returncode == 0, live.stderr[-2000:]
    res = json.loads(live.stdout)
    assert res["n_events"] > 0                               # the comparison is about events, not their absence
    assert (res["matched"], res["false_events"]) == (matched, false)

    # --max-delay: annotate a gesture ending 6 frames (0.2 s) before one of the events, so that it is matched late
    label, frame = re.search(r"wrong (\S+) at frame (\d+)", out).groups()
    (tmp_path / "s.csv").write_text(f"label,start_frame,end_frame\n{label},{int(frame) - 36},{int(frame) - 6}\n")
    setting = [model, stream, 4, "--at", f"1,{thr},0.5,0"]

    def score_and_delay(text):
        line = text.splitlines()[0]
        return (float(re.search(r"score (\S+) \(", line).group(1)),
                float(re.search(r"delay median (\S+) missed", line).group(1)))

    score, delay = score_and_delay(_run(setting, tmp_path))
    assert np.isfinite(score) and delay == pytest.approx(0.2)           # under the default cap of 0.4 s
    assert score_and_delay(_run(setting + ["--max-delay", 0.15], tmp_path)) == (-np.inf, delay)
    assert score_and_delay(_run(setting + ["--max-delay", 0.25], tmp_path)) == (score, delay)

    # --set: outputs made under an override are kept apart (a 30 fps video plays the same with resampling off)
    assert score_and_delay(_run(setting + ["--set", "capture.resample=off"], tmp_path)) == (score, delay)
    other = next(tmp_path.glob("s_tiny_*_s4*_capture.resample-off.npz"))
    assert other != cache and np.allclose(np.load(other)["probs"], z["probs"], atol=1e-6)


def test_a_malformed_setting_is_one_line_naming_the_flag(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "models/x", "s.mp4", "--at", "3,0.98"], capture_output=True,
                       text=True, env=helpers.subprocess_env(), timeout=60)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        "tune_debounce: --at wants SMOOTHING,THRESHOLD,COOLDOWN_S,OPPOSITE_S, e.g. --at 3,0.98,0.8,0"]


@pytest.mark.parametrize("value, message", [
    ("soon", "tune_debounce: --max-delay wants seconds, e.g. --max-delay 0.5"),
    ("0", "tune_debounce: --max-delay 0.0: must be more than 0 and at most 5 seconds"),
])
def test_a_malformed_delay_cap_is_one_line_naming_the_flag(value, message):
    r = subprocess.run([sys.executable, str(SCRIPT), "models/x", "s.mp4", "--max-delay", value], capture_output=True,
                       text=True, env=helpers.subprocess_env(), timeout=60)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [message]


def test_a_bad_config_override_is_one_line_naming_the_key():
    r = subprocess.run([sys.executable, str(SCRIPT), "models/x", "s.mp4", "--set", "preprocess.downscale=cubic"],
                       capture_output=True, text=True, env=helpers.subprocess_env(), timeout=60)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        "tune_debounce: 'preprocess.downscale' must be one of ['auto', 'linear', 'area'], got 'cubic'"]
