"""scripts/soup.py: weight arithmetic on model folders, loaded back by the same code `gesture live` uses."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import helpers

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soup.py"


def _soup(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=helpers.subprocess_env(), timeout=120)


def _weights(d):
    from realtime.modelio import load_model

    m = load_model(d, helpers.tiny_config())
    return [np.asarray(w) for w in m.backbone.weights + m.head.weights], m


@pytest.mark.timeout(300)
def test_average_and_task_vector_load_as_the_arithmetic_says(tmp_path):
    a, *_ = helpers.write_tiny_model(tmp_path / "a", seed=1)
    b, *_ = helpers.write_tiny_model(tmp_path / "b", seed=2)
    wa, _ = _weights(a)
    wb, _ = _weights(b)

    r = _soup(tmp_path / "half", a, f"0.5:{b}")
    assert r.returncode == 0, r.stderr
    wh, model = _weights(tmp_path / "half")
    assert len(wh) == len(wa) > 10
    for x, y, h in zip(wa, wb, wh):
        np.testing.assert_allclose(h, (x + y) / 2, rtol=1e-6, atol=1e-6)
    assert any(not np.allclose(x, y) for x, y in zip(wa, wb))     # the two ingredients did differ
    clip = np.random.default_rng(0).uniform(0, 255, (1, 16, 112, 112, 3)).astype("float32")
    assert np.all(np.isfinite(np.asarray(model.backbone(clip, training=False))))

    r = _soup(tmp_path / "back", a, f"1:{b}", f"-1:{b}")          # A + (B - A) - (B - A) = A
    assert r.returncode == 0, r.stderr
    for x, y in zip(wa, _weights(tmp_path / "back")[0]):
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-6)
    trained = json.loads((tmp_path / "back" / "model.json").read_text())["trained"]
    assert [t["coef"] for t in trained["soup"]["terms"]] == [1.0, -1.0]


@pytest.mark.timeout(300)
def test_folders_that_do_not_match_are_refused_with_one_line(tmp_path):
    a, *_ = helpers.write_tiny_model(tmp_path / "a", seed=1)
    wide, *_ = helpers.write_tiny_model(tmp_path / "wide", width=helpers.TINY_WIDTH * 2, seed=1)
    r = _soup(tmp_path / "out", a, f"0.5:{wide}")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [f"{wide / 'model.json'}: 'backbone' differs from {a / 'model.json'}"]
    assert not (tmp_path / "out").exists()

    r = _soup(tmp_path / "out", a, "half:" + str(a))
    assert r.returncode != 0 and "COEF:MODEL_DIR" in r.stderr
    r = _soup(tmp_path / "out", a, f"0.5:{tmp_path / 'nowhere'}")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [f"{tmp_path / 'nowhere' / 'model.json'}: not found (not a model folder)"]
    r = _soup(a, a, f"0.5:{a}")                                       # never writes over a folder
    assert r.returncode != 0 and "already exists" in r.stderr
