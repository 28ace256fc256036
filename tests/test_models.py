"""Models at tiny widths: shapes, pool5 padding, legacy Keras-2 HDF5 weights, model folders, bf16."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

import keras  # noqa: E402

from realtime.c3d import (  # noqa: E402
    CONV_LAYERS,
    FC_LAYERS,
    build_c3d,
    fc7_extractor,
    feature_dim,
    load_sports1m_weights,
    save_keras2_h5,
)
from realtime.errors import GestureError  # noqa: E402
from realtime.head import build_head, window_batches  # noqa: E402
from realtime.modelio import ModelSpec, build_models, load_model, predict_fn, read_spec  # noqa: E402

W = helpers.TINY_WIDTH


def _clips(n: int, size: int = 112, seed: int = 0) -> np.ndarray:
    """``(n, 16, size, size, 3) float32``: uint8-range values minus roughly the Sports1M means."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 16, size, size, 3)).astype(np.float32) - 100.0)


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-12))


@pytest.fixture(scope="module")
def full_tiny():
    """A tiny C3D built to fc8 (as ``gesture features`` builds it) and its fc7 on two clips."""
    keras.utils.set_random_seed(3)
    full = build_c3d(W, with_fc8=True)
    x = _clips(2)
    fc7 = predict_fn(fc7_extractor(full))(x)
    return full, x, fc7


# ---------------------------------------------------------------------------------------------
# shapes and layer names
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width, n", [(0.03, 1), (0.06, 2)])
def test_tiny_widths_give_feature_shapes(width, n):
    m = build_c3d(width, size=112, with_fc8=False)
    y = predict_fn(m)(_clips(n))
    assert y.shape == (n, feature_dim(width)) and y.dtype == np.float32
    assert np.all(y >= 0)                                    # fc7 after its ReLU
    assert feature_dim(1.0) == 4096


def test_layer_names_and_fc8(full_tiny):
    full, x, _ = full_tiny
    names = [l.name for l in full.layers if l.weights]
    assert names == list(CONV_LAYERS) + list(FC_LAYERS)
    p = predict_fn(full)(x)
    assert p.shape == (2, 487)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    assert fc7_extractor(full).output_shape == (None, feature_dim(W))


def test_head_shapes():
    h = build_head(feature_dim(W), 5, 8, units=8, proj=16)
    y = predict_fn(h)(np.random.default_rng(0).random((3, 8, feature_dim(W)), dtype=np.float32))
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    # kind="seed" (BiLSTM 1024/256/64) is not built here: initialising it alone takes ~5 s on 2 cores.
    with pytest.raises(ValueError):
        build_head(10, kind="transformer")


def test_window_batches_give_every_window_once_an_epoch_with_its_label_and_weight():
    n = 37
    X = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 8, 3), np.float32)
    y, w = np.arange(n) % 5, np.arange(n) / 10.0
    ds = window_batches(X, y, w, 8, seed=0)
    assert len(ds) == 5  # 4 full batches and one of 5

    def epoch():
        seen = []
        for i in range(len(ds)):
            xb, yb, wb = ds[i]
            rows = xb[:, 0, 0].astype(int)
            assert xb.shape[1:] == (8, 3) and np.array_equal(yb, y[rows]) and np.allclose(wb, w[rows])
            seen += rows.tolist()
        ds.on_epoch_end()
        return seen

    first, second = epoch(), epoch()
    assert sorted(first) == sorted(second) == list(range(n))
    assert first != second  # reshuffled between epochs


# ---------------------------------------------------------------------------------------------
# pool5: Caffe ceil mode = pad bottom/right only
# ---------------------------------------------------------------------------------------------
def test_pool5_padding_is_bottom_right_only(full_tiny):
    full, x, fc7 = full_tiny
    zp = full.get_layer("zeropadding")
    pad = tuple(tuple(int(v) for v in p) for p in zp.get_config()["padding"])
    assert pad == ((0, 0), (0, 1), (0, 1))
    assert full.get_layer("conv5b").output.shape[1:4] == (2, 7, 7)
    assert full.get_layer("pool5").output.shape[1:4] == (1, 4, 4)

    # The same layers (same weights) with the seed's symmetric padding give other features.
    inp = keras.Input((16, 112, 112, 3))
    h = inp
    for layer in full.layers[1:]:
        if layer.name == "zeropadding":
            h = keras.layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)))(h)
        else:
            h = layer(h)
        if layer.name == "fc7":
            break
    sym = predict_fn(keras.Model(inp, h))(x)
    assert sym.shape == fc7.shape
    assert _rel(sym, fc7) > 1e-2


def test_pool5_equals_caffe_ceil_mode_pooling(full_tiny):
    full, x, _ = full_tiny
    probe = keras.Model(full.input, [full.get_layer("conv5b").output, full.get_layer("pool5").output])
    c5, p5 = (np.asarray(a) for a in probe(x[:1], training=False))
    c5 = c5[0]
    T, H, Wd, C = c5.shape
    # Caffe: out = ceil((L - k) / s) + 1, windows clipped to the input (values are >= 0 after ReLU).
    oh, ow, ot = -(-(H - 2) // 2) + 1, -(-(Wd - 2) // 2) + 1, -(-(T - 2) // 2) + 1
    ref = np.zeros((ot, oh, ow, C), np.float32)
    for t in range(ot):
        for i in range(oh):
            for j in range(ow):
                ref[t, i, j] = c5[2 * t : 2 * t + 2, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1, 2))
    assert ref.shape == p5.shape[1:] == (1, 4, 4, C)
    np.testing.assert_allclose(p5[0], ref, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# legacy Keras-2 HDF5 weights
# ---------------------------------------------------------------------------------------------
def _layer_weights(model) -> dict:
    return {l.name: tuple(l.get_weights()) for l in model.layers if l.name in CONV_LAYERS + FC_LAYERS}


def _fresh_fc7(path, width=W):
    keras.utils.set_random_seed(99)          # different init: the file must overwrite every weight
    m = build_c3d(width, with_fc8=True)
    load_sports1m_weights(m, path)
    return m


def test_save_keras2_h5_layout_and_round_trip(full_tiny, tmp_path):
    import h5py

    full, x, fc7 = full_tiny
    path = tmp_path / "c3d_keras2.h5"
    save_keras2_h5(full, path)
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == list(CONV_LAYERS) + list(FC_LAYERS)
        as_str = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
        assert as_str(f.attrs["keras_version"]) == "2.2.4" and as_str(f.attrs["backend"]) == "tensorflow"
        assert list(f["conv1"].attrs["weight_names"]) == [b"conv1/kernel:0", b"conv1/bias:0"]
        assert f["conv1/conv1/kernel:0"].shape == (3, 3, 3, 3, 4)
    m = _fresh_fc7(path)
    got = predict_fn(fc7_extractor(m))(x)
    np.testing.assert_allclose(got, fc7, rtol=1e-5, atol=1e-6)


def test_raw_h5py_keras2_file_loads(full_tiny, tmp_path):
    full, x, fc7 = full_tiny
    path = helpers.write_keras2_h5_raw(tmp_path / "raw.h5", _layer_weights(full))
    m = _fresh_fc7(path)
    np.testing.assert_allclose(predict_fn(fc7_extractor(m))(x), fc7, rtol=1e-5, atol=1e-6)
    for name in CONV_LAYERS + FC_LAYERS:
        for a, b in zip(m.get_layer(name).get_weights(), full.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_independent_random_weights_fit_the_keras_c3d(tmp_path):
    """Shapes written from the published channel counts (not from realtime.c3d) fit the model."""
    w = helpers.random_c3d_weights(W, seed=5)
    path = helpers.write_keras2_h5_raw(tmp_path / "rand.h5", w)
    m = _fresh_fc7(path)
    np.testing.assert_array_equal(m.get_layer("fc6").get_weights()[0], w["fc6"][0])


def test_model_weights_group_is_accepted(full_tiny, tmp_path):
    """Files from Keras 2 ``model.save`` keep the same layout under ``model_weights``."""
    import h5py

    full, x, fc7 = full_tiny
    path = tmp_path / "saved_model.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        for name, (k, b) in _layer_weights(full).items():
            lg = g.create_group(name)
            lg.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            lg.create_dataset(f"{name}/kernel:0", data=k)
            lg.create_dataset(f"{name}/bias:0", data=b)
    m = _fresh_fc7(path)
    np.testing.assert_allclose(predict_fn(fc7_extractor(m))(x), fc7, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("missing", ["conv3a", "fc8"])
def test_missing_layer_is_refused_naming_it(full_tiny, tmp_path, missing):
    full, _, _ = full_tiny
    path = helpers.write_keras2_h5_raw(tmp_path / "missing.h5", _layer_weights(full), skip=(missing,))
    m = build_c3d(W, with_fc8=True)
    with pytest.raises(GestureError, match=rf"layer '{missing}' missing") as ei:
        load_sports1m_weights(m, path)
    assert str(path) in str(ei.value)


def test_missing_dataset_is_refused_naming_layer(full_tiny, tmp_path):
    import h5py

    full, _, _ = full_tiny
    path = helpers.write_keras2_h5_raw(tmp_path / "nobias.h5", _layer_weights(full))
    with h5py.File(path, "a") as f:
        del f["conv4b/conv4b/bias:0"]
    with pytest.raises(GestureError, match=r"layer 'conv4b'"):
        load_sports1m_weights(build_c3d(W, with_fc8=True), path)


@pytest.mark.parametrize("layer", ["conv2", "fc6"])
def test_wrong_shape_is_refused_naming_layer(full_tiny, tmp_path, layer):
    full, _, _ = full_tiny
    w = _layer_weights(full)
    k, b = w[layer]
    w[layer] = (np.zeros(k.shape[:-1] + (k.shape[-1] + 1,), np.float32), np.zeros(b.shape[0] + 1, np.float32))
    path = helpers.write_keras2_h5_raw(tmp_path / "shape.h5", w)
    with pytest.raises(GestureError, match=rf"layer '{layer}' has weight shapes"):
        load_sports1m_weights(build_c3d(W, with_fc8=True), path)


def test_width_mismatch_is_refused(full_tiny, tmp_path):
    full, _, _ = full_tiny
    path = tmp_path / "tiny.h5"
    save_keras2_h5(full, path)
    # conv1 has 4 filters at both widths (the minimum); conv2 is the first that differs
    with pytest.raises(GestureError, match=r"layer 'conv2'"):
        load_sports1m_weights(build_c3d(0.06, with_fc8=True), path)


def test_missing_or_non_hdf5_file(tmp_path):
    m = build_c3d(W, with_fc8=False)
    with pytest.raises(GestureError, match="not found"):
        load_sports1m_weights(m, tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 10)
    with pytest.raises(GestureError, match="junk.h5: not an HDF5"):
        load_sports1m_weights(m, junk)


# ---------------------------------------------------------------------------------------------
# model folders
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "tiny"
    return helpers.write_tiny_model(d, seed=4)


def test_model_folder_round_trip(model_folder):
    d, spec, bb, hd = model_folder
    for name in ("model.json", "labels.json", "backbone.weights.h5", "head.weights.h5", "MODEL_CARD.md"):
        assert (d / name).is_file()
    assert json.loads((d / "labels.json").read_text()) == list(spec.labels)
    m = load_model(d, helpers.tiny_config())
    assert not m.untrained and m.path == d and m.labels == list(spec.labels)
    assert m.feature_dim == feature_dim(W)
    x = _clips(2, seed=7)
    np.testing.assert_allclose(predict_fn(m.backbone)(x), predict_fn(bb)(x), rtol=1e-5, atol=1e-6)
    f = np.random.default_rng(1).random((2, 8, feature_dim(W)), dtype=np.float32)
    np.testing.assert_allclose(predict_fn(m.head)(f), predict_fn(hd)(f), rtol=1e-5, atol=1e-6)


def _copy_folder(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("field, value, pattern", [
    ("feature_spacing", 8, r"'feature_spacing' = 8 disagrees with config 'pipeline.feature_spacing' = 16"),
    ("clip_len", 8, r"'clip_len'"),
    ("window", 4, r"'window'"),
])
def test_model_disagreeing_with_config_is_refused(model_folder, tmp_path, field, value, pattern):
    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    raw[field] = value
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=pattern):
        load_model(d, helpers.tiny_config())


def test_model_preprocessing_disagreeing_is_refused(model_folder, tmp_path):
    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    raw["preprocess"]["mean_bgr"] = [0.0, 0.0, 0.0]
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=r"'preprocess.mean_bgr'"):
        load_model(d, helpers.tiny_config())
    raw["preprocess"]["mean_bgr"] = [90.25, 97.66, 101.41]
    raw["preprocess"]["interpolation"] = "INTER_AREA"
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=r"'preprocess.interpolation'"):
        load_model(d, helpers.tiny_config())


def test_model_records_how_it_crops_other_frame_shapes_and_is_held_to_it(model_folder, tmp_path):
    """``preprocess.aspect`` is saved beside the weights (``stretch`` by default); a model saved before the field
    existed loads either way; one trained cutting frames to 4:3 (``crop``) is refused under the default with the
    field and the way out named, and runs with ``--set preprocess.aspect=crop``."""
    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    assert raw["preprocess"]["aspect"] == "stretch"
    del raw["preprocess"]["aspect"]
    (d / "model.json").write_text(json.dumps(raw))
    load_model(d, helpers.tiny_config())
    load_model(d, helpers.tiny_config().replace(**{"preprocess.aspect": "crop"}))
    raw["preprocess"]["aspect"] = "crop"
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=r"'preprocess.aspect' = crop disagrees with config \(stretch\).*--set preprocess.aspect"):
        load_model(d, helpers.tiny_config())
    load_model(d, helpers.tiny_config().replace(**{"preprocess.aspect": "crop"}))
    cut = helpers.tiny_config().replace(**{"preprocess.aspect": "crop"})
    assert ModelSpec.from_config(cut, width=0.125).preprocess["aspect"] == "crop"


def test_model_records_how_it_downscales_large_frames_and_is_held_to_it(model_folder, tmp_path):
    """``preprocess.downscale`` is saved resolved (a small backbone: ``area``; the full C3D: ``linear``, the Caffe
    recipe); ``auto`` loads either; a value set against the model's is refused naming the field; a model saved
    before the field existed loads under any."""
    from realtime.preprocess import config_for_model

    def model_config(cfg, spec):
        return config_for_model(cfg, spec.width, spec.preprocess)

    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    assert raw["preprocess"]["downscale"] == "area"
    assert ModelSpec.from_config(helpers.tiny_config(), width=1.0).preprocess["downscale"] == "linear"
    raw["preprocess"]["downscale"] = "linear"
    (d / "model.json").write_text(json.dumps(raw))
    m = load_model(d, helpers.tiny_config())
    assert model_config(helpers.tiny_config(), m.spec).preprocess.downscale == "linear"
    with pytest.raises(GestureError, match=r"'preprocess.downscale' = linear disagrees with config \(area\).*--set"):
        load_model(d, helpers.tiny_config(**{"preprocess.downscale": "area"}))
    del raw["preprocess"]["downscale"]
    (d / "model.json").write_text(json.dumps(raw))
    for mode in ("auto", "area", "linear"):
        m = load_model(d, helpers.tiny_config(**{"preprocess.downscale": mode}))
        assert model_config(helpers.tiny_config(**{"preprocess.downscale": mode}), m.spec).preprocess.downscale == (
            "area" if mode == "auto" else mode)


def test_model_is_held_to_the_min_level_it_was_trained_with(model_folder, tmp_path):
    """``preprocess.min_level`` is saved beside the weights; another value is refused naming the field; a model
    saved before the field existed (the bundled model) runs under any."""
    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    assert raw["preprocess"]["min_level"] == 55.0
    with pytest.raises(GestureError, match=r"'preprocess.min_level' = 55.0 disagrees with config \(0.0\).*--set"):
        load_model(d, helpers.tiny_config(**{"preprocess.min_level": 0}))
    del raw["preprocess"]["min_level"]
    (d / "model.json").write_text(json.dumps(raw))
    for level in (0, 55):
        load_model(d, helpers.tiny_config(**{"preprocess.min_level": level}))


@pytest.mark.parametrize("key, value", [("crop", [8, 29, 1]), ("resize", "171x128"), ("mean_bgr", [90.25, None, 1])])
def test_model_preprocessing_malformed_is_refused_not_crashing(model_folder, tmp_path, key, value):
    d = _copy_folder(model_folder[0], tmp_path / "m")
    raw = json.loads((d / "model.json").read_text())
    raw["preprocess"][key] = value
    (d / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match=rf"'preprocess.{key}'"):
        load_model(d, helpers.tiny_config())


def test_model_labels_disagreeing_is_refused(model_folder, tmp_path):
    d = _copy_folder(model_folder[0], tmp_path / "m")
    (d / "labels.json").write_text(json.dumps(["a", "no_gesture"]))
    with pytest.raises(GestureError, match="labels.json"):
        read_spec(d)
    cfg = helpers.tiny_config(labels=["Wave", "no_gesture"])
    with pytest.raises(GestureError, match="labels"):
        load_model(model_folder[0], cfg)


def test_model_folder_problems_name_the_file(model_folder, tmp_path):
    with pytest.raises(GestureError, match="model folder not found"):
        load_model(tmp_path / "nothing", helpers.tiny_config())
    d = _copy_folder(model_folder[0], tmp_path / "m")
    (d / "head.weights.h5").unlink()
    with pytest.raises(GestureError, match="missing head.weights.h5"):
        load_model(d, helpers.tiny_config())
    d2 = _copy_folder(model_folder[0], tmp_path / "m2")
    raw = json.loads((d2 / "model.json").read_text())
    raw["colour"] = "red"
    (d2 / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match="unknown field 'colour'"):
        load_model(d2, helpers.tiny_config())
    d3 = _copy_folder(model_folder[0], tmp_path / "m3")
    raw = json.loads((d3 / "model.json").read_text())
    raw["backbone"]["width"] = 0.06                      # weights on disk are for 0.03
    (d3 / "model.json").write_text(json.dumps(raw))
    with pytest.raises(GestureError, match="backbone.weights.h5: weights do not fit"):
        load_model(d3, helpers.tiny_config())


def test_model_folder_with_sports1m_weights(model_folder, full_tiny, tmp_path):
    """``--weights FILE.h5`` swaps in a Keras-2 backbone (built to fc8, cut at fc7)."""
    full, x, fc7 = full_tiny
    h5 = tmp_path / "s1m.h5"
    save_keras2_h5(full, h5)
    m = load_model(model_folder[0], helpers.tiny_config(), weights=h5)
    np.testing.assert_allclose(predict_fn(m.backbone)(x), fc7, rtol=1e-5, atol=1e-6)
    with pytest.raises(GestureError, match="not found"):
        load_model(model_folder[0], helpers.tiny_config(), weights=tmp_path / "absent.h5")


# ---------------------------------------------------------------------------------------------
# bf16
# ---------------------------------------------------------------------------------------------
def test_bf16_builds_and_gives_close_fc7(full_tiny, tmp_path):
    full, x, fc7 = full_tiny
    spec = helpers.tiny_spec()
    bb16, hd16 = build_models(spec, precision="bf16")
    assert keras.config.dtype_policy().name == "float32"       # the global policy is restored
    assert bb16.get_layer("conv1").compute_dtype == "bfloat16"
    assert hd16.get_layer("probs").compute_dtype == "float32"
    h5 = tmp_path / "w.h5"
    save_keras2_h5(full, h5)
    # Load the same Keras-2 weights into the bf16 backbone (its fc7 layers are named as in the file).
    from realtime.modelio import set_precision

    set_precision("bf16")
    try:
        full16 = build_c3d(W, with_fc8=True)
    finally:
        set_precision("fp32")
    load_sports1m_weights(full16, h5)
    got = predict_fn(fc7_extractor(full16))(x)
    assert got.dtype == np.float32 and got.shape == fc7.shape
    assert _rel(got, fc7) < 0.05
