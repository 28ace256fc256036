"""``gesture features`` against an independent NumPy implementation of the Caffe C3D recipe.

The reference side imports nothing from ``realtime``: it reads frames with cv2,
resizes each uint8 BGR frame to 171x128 with INTER_LINEAR, subtracts the
Sports1M means (B, G, R) = (90.25, 97.66, 101.41), crops rows 8:120 and
cols 29:141, then runs C3D with plain NumPy: 3x3x3 "same" convolutions + ReLU
(a sum over the 27 taps), max pools (1,2,2) then (2,2,2) as in C3D, Caffe
ceil-mode pool5 (windows clipped at the bottom/right edge), flatten, fc6 + ReLU,
fc7 + ReLU. Weights are random, written in the Keras-2 HDF5 layout with raw h5py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

MEAN_BGR = np.array([90.25, 97.66, 101.41])
TOL = 1e-3


# ---------------------------------------------------------------------------------------------
# the reference (NumPy only)
# ---------------------------------------------------------------------------------------------
def ref_frames(path) -> np.ndarray:
    return helpers.read_video_frames(path)  # plain cv2 (tests/helpers.py), no project code


def ref_preprocess(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3) uint8 BGR`` -> ``(T, 112, 112, 3) float64`` as the Caffe model was trained."""
    out = []
    for f in frames:
        r = cv2.resize(f, (171, 128), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        r -= MEAN_BGR
        out.append(r[8:120, 29:141])
    return np.stack(out)


def ref_conv3d_relu(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3x3 cross-correlation, zero 'same' padding, stride 1, then ReLU. ``x (T, H, W, Cin)``."""
    T, H, W, _ = x.shape
    xp = np.pad(x, ((1, 1), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((T, H, W, k.shape[-1]))
    for dt in range(3):
        for dh in range(3):
            for dw in range(3):
                out += xp[dt : dt + T, dh : dh + H, dw : dw + W] @ k[dt, dh, dw].astype(np.float64)
    return np.maximum(out + b, 0.0)


def ref_maxpool_caffe(x: np.ndarray, kt: int, ks: int) -> np.ndarray:
    """Caffe max pooling, kernel = stride, no pad, ceil mode: out = ceil((L - k) / s) + 1,
    the last window clipped to the input."""
    T, H, W, C = x.shape
    ot, oh, ow = (-(-(L - k) // k) + 1 for L, k in ((T, kt), (H, ks), (W, ks)))
    full = np.full((ot * kt, oh * ks, ow * ks, C), -np.inf)
    full[:T, :H, :W] = x
    return full.reshape(ot, kt, oh, ks, ow, ks, C).max(axis=(1, 3, 5))


def ref_c3d_fc7(clip: np.ndarray, w: dict) -> np.ndarray:
    """``(16, 112, 112, 3)`` mean-subtracted clip -> fc7 after ReLU."""
    x = ref_conv3d_relu(clip, *w["conv1"])
    x = ref_maxpool_caffe(x, 1, 2)
    x = ref_conv3d_relu(x, *w["conv2"])
    x = ref_maxpool_caffe(x, 2, 2)
    for a, b in (("conv3a", "conv3b"), ("conv4a", "conv4b")):
        x = ref_conv3d_relu(ref_conv3d_relu(x, *w[a]), *w[b])
        x = ref_maxpool_caffe(x, 2, 2)
    x = ref_conv3d_relu(ref_conv3d_relu(x, *w["conv5a"]), *w["conv5b"])
    x = ref_maxpool_caffe(x, 2, 2)          # 7x7 -> 4x4: ceil mode
    x = x.reshape(-1)                       # channels-last flatten, as the Keras port stores fc6
    x = np.maximum(x @ w["fc6"][0].astype(np.float64) + w["fc6"][1], 0.0)
    return np.maximum(x @ w["fc7"][0].astype(np.float64) + w["fc7"][1], 0.0)


def ref_features(video, w: dict) -> np.ndarray:
    x = ref_preprocess(ref_frames(video))
    n = len(x) // 16
    return np.stack([ref_c3d_fc7(x[16 * i : 16 * i + 16], w) for i in range(n)]) if n else np.zeros((0, 0))


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


# ---------------------------------------------------------------------------------------------
# sanity of the reference's own pieces
# ---------------------------------------------------------------------------------------------
def test_reference_pool_is_ceil_mode():
    x = np.arange(7 * 7, dtype=np.float64).reshape(1, 7, 7, 1)
    y = ref_maxpool_caffe(np.concatenate([x, x]), 2, 2)
    assert y.shape == (1, 4, 4, 1)
    assert y[0, 3, 3, 0] == 48 and y[0, 0, 0, 0] == 8 and y[0, 3, 0, 0] == 43


def test_reference_conv_matches_direct_sum():
    rng = np.random.default_rng(0)
    x, k, b = rng.normal(size=(3, 4, 5, 2)), rng.normal(size=(3, 3, 3, 2, 3)), rng.normal(size=3)
    y = ref_conv3d_relu(x, k, b)
    xp = np.pad(x, ((1, 1), (1, 1), (1, 1), (0, 0)))
    t, i, j, o = 1, 3, 0, 2
    want = max(0.0, float(np.einsum("abcd,abcd->", xp[t : t + 3, i : i + 3, j : j + 3], k[..., o]) + b[o]))
    assert y[t, i, j, o] == pytest.approx(want)


# ---------------------------------------------------------------------------------------------
# the project against the reference
# ---------------------------------------------------------------------------------------------
WIDTH = 0.06


@pytest.fixture(scope="module")
def reference_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    video, _ = helpers.write_video(d / "clip.avi", n=40, width=200, height=150, seed=3)  # 2 clips + 8 spare
    w = helpers.random_c3d_weights(WIDTH, seed=11)
    h5 = helpers.write_keras2_h5_raw(d / "c3d_keras2.h5", w)
    return d, video, w, h5, ref_features(video, w)


def test_preprocessing_matches_the_recipe(reference_case):
    from realtime.config import Config
    from realtime.features import video_crops
    from realtime.preprocess import to_model_input

    _, video, _, _, _ = reference_case
    cfg = Config()
    ours = to_model_input(video_crops(video, cfg), cfg.preprocess)
    want = ref_preprocess(ref_frames(video))
    assert ours.shape == want.shape == (40, 112, 112, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, want, atol=1e-4)


def test_features_match_independent_caffe_recipe(reference_case):
    from realtime.config import Config
    from realtime.features import features_command

    d, video, w, h5, ref = reference_case
    out = d / "feats.npy"
    feats = features_command(video, h5, out, Config(), width=WIDTH)
    D = max(4, int(round(4096 * WIDTH)))
    assert ref.shape == (40 // 16, D)
    assert feats.shape == ref.shape and feats.dtype == np.float32
    saved = np.load(out)
    assert saved.dtype == np.float32 and np.array_equal(saved, feats)
    assert (ref > 0).mean() > 0.1                      # not a degenerate all-zero comparison
    assert _rel(feats, ref) <= TOL, _rel(feats, ref)
    for i in range(len(ref)):
        assert _rel(feats[i], ref[i]) <= TOL


def test_features_refuse_short_or_missing_video(reference_case, tmp_path):
    from realtime.config import Config
    from realtime.errors import GestureError
    from realtime.features import features_command

    _, _, _, h5, _ = reference_case
    short, _ = helpers.write_video(tmp_path / "short.avi", n=10)
    with pytest.raises(GestureError, match="short.avi: 10 frames"):
        features_command(short, h5, tmp_path / "o.npy", Config(), width=WIDTH)
    with pytest.raises(GestureError, match="missing.avi: video file not found"):
        features_command(tmp_path / "missing.avi", h5, tmp_path / "o.npy", Config(), width=WIDTH)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_gesture_features_cli_full_width(tmp_path):
    """The real CLI at width 1.0 (a ~300 MB random Sports1M-layout file) on a 32-frame video."""
    video, _ = helpers.write_video(tmp_path / "clip32.avi", n=32, width=200, height=150, seed=5)
    w = helpers.random_c3d_weights(1.0, seed=12)
    h5 = helpers.write_keras2_h5_raw(tmp_path / "C3D_Sport1M_weights_keras_2.2.4.h5", w)
    out = tmp_path / "feats.npy"
    r = subprocess.run(helpers.gesture_cmd() + ["features", str(video), "--weights", str(h5), "--out", str(out)],
                       capture_output=True, text=True, env=helpers.subprocess_env(), timeout=1100)
    assert r.returncode == 0, r.stderr[-2000:]
    feats = np.load(out)
    assert feats.shape == (2, 4096) and feats.dtype == np.float32
    ref = ref_features(video, w)
    assert (ref > 0).mean() > 0.1
    assert _rel(feats, ref) <= TOL, _rel(feats, ref)
