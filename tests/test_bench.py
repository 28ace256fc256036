"""``gesture bench`` returns its numbers with the promised keys and sane types (functional, never timed).

Both modes run in-process on a tiny C3D (``args.width``) with 32x32 crops, so each takes a few
seconds on two cores; no assertion is made on any speed.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

from realtime.bench import bench_command, live_table, offline_table  # noqa: E402
from realtime.cli import build_parser, load_cfg  # noqa: E402

SET_SMALL = ["--set", "pipeline.size=32", "--set", "pipeline.max_batch=2"]


def _run(capsys, argv):
    args = build_parser().parse_args(["bench", *argv, *SET_SMALL])
    args.width = helpers.TINY_WIDTH  # tests only: a tiny backbone instead of full/small
    rc = bench_command(args, load_cfg(args))
    out = capsys.readouterr().out
    return rc, out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@pytest.mark.timeout(120)
def test_live_json_keys_and_types(capsys):
    rc, out = _run(capsys, ["--json", "--backbone", "small", "--seconds", "3", "--stride", "16",
                            "--precision", "fp32"])
    assert rc == 0
    r = json.loads(out.strip().splitlines()[-1])  # one JSON object on stdout, strict JSON (no NaN)
    for k in ("capture_fps", "clips_per_s", "dropped_frames", "latency_median_ms", "latency_p95_ms",
              "cpu_percent", "peak_rss_mb", "rss_growth_pct", "rss_start_mb", "rss_end_mb", "seconds"):
        assert _number(r[k]) or (k.startswith("latency") and r[k] is None), (k, r[k])
    assert r["backbone"] == "small" and r["precision"] == "fp32" and r["stride"] == 16
    assert r["note"] == "random weights: timing only"
    assert isinstance(r["dropped_frames"], int) and r["dropped_frames"] >= 0
    assert r["frames"] > 0 and 0 < r["capture_fps"] <= 2 * r["fps_target"]
    assert r["clips"] >= 1 and r["peak_rss_mb"] >= r["rss_start_mb"] > 0
    assert set(r["stages_ms"]) == {"preprocess", "c3d", "head", "debounce"}
    for stage, q in r["stages_ms"].items():
        assert set(q) == {"median", "p95"}
    assert _number(r["stages_ms"]["c3d"]["median"]) and _number(r["stages_ms"]["preprocess"]["p95"])
    m = r["machine"]
    assert isinstance(m["cpu"], str) and isinstance(m["cores"], int) and m["cores"] >= 1
    assert "| capture fps" in live_table(r)


@pytest.mark.timeout(120)
def test_live_table_says_random_weights(capsys):
    rc, out = _run(capsys, ["--backbone", "small", "--seconds", "1", "--stride", "16", "--precision", "fp32"])
    assert rc == 0
    assert "random weights: timing only" in out
    assert "| decision latency ms (median / p95)" in out and "| dropped frames" in out


@pytest.mark.timeout(180)
def test_offline_json_keys_and_types(capsys):
    rc, out = _run(capsys, ["--json", "--offline", "--precision", "fp32"])
    assert rc == 0
    r = json.loads(out.strip().splitlines()[-1])
    assert r["mode"] == "offline" and r["note"] == "random weights: timing only"
    assert set(r["c3d_clips_per_s"]) == {"1", "4", "16"}
    assert all(_number(v) and v > 0 for v in r["c3d_clips_per_s"].values())
    fe = r["features"]
    assert fe["clips"] == 32 and _number(fe["clips_per_s"]) and fe["clips_per_s"] > 0
    assert r["feature_dim"] > 0
    assert "| C3D clips/s, batch 16" in offline_table(r)
