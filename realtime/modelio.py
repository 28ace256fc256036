"""Model folders: backbone + head weights, labels and the preprocessing they were trained with.

A model folder holds::

    model.json          clip_len, size, feature_spacing, window, preprocess, labels,
                        backbone (kind, width, weights file), head (kind, sizes)
    labels.json         the label order of the head's outputs
    backbone.weights.h5 the C3D (small backbones; a Sports1M backbone names the user's file instead)
    head.weights.h5     the BiLSTM head
    MODEL_CARD.md       what it was trained on, how, and where it will not work

Loading only builds the architectures in code and reads weights into them: no
code or config objects are ever deserialized from a model file (Keras safe mode
is moot because nothing is unpickled). :func:`check_against_config` refuses a
model whose preprocessing or windowing disagrees with ``config.yaml`` and names
the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import REPO_ROOT, Config
from .errors import GestureError
from .preprocess import describe

FORMAT_VERSION = 1
BUNDLED_MODEL_DIR = REPO_ROOT / "models" / "synthetic_small"
REQUIRED_FILES = ("model.json", "labels.json", "head.weights.h5")


@dataclass
class ModelSpec:
    """The contents of ``model.json``."""

    labels: list[str]
    clip_len: int = 16
    size: int = 112
    feature_spacing: int = 16
    window: int = 8
    preprocess: dict = field(default_factory=dict)
    backbone: dict = field(default_factory=lambda: {"kind": "c3d", "width": 0.125, "weights": "backbone.weights.h5"})
    head: dict = field(default_factory=lambda: {"kind": "small", "units": 64, "proj": 128})
    trained: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_config(cls, cfg: Config, width: float, head_kind: str = "small", weights: str | None = None, **head):
        return cls(
            labels=list(cfg.labels),
            clip_len=cfg.pipeline.clip_len,
            size=cfg.pipeline.size,
            feature_spacing=cfg.pipeline.feature_spacing,
            window=cfg.pipeline.window,
            preprocess=describe(cfg.preprocess, cfg.pipeline),
            backbone={"kind": "c3d", "width": float(width), "weights": weights or "backbone.weights.h5"},
            head={"kind": head_kind, **({"units": 64, "proj": 128} if head_kind == "small" else {}), **head},
        )

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @property
    def width(self) -> float:
        return float(self.backbone.get("width", 1.0))


def read_spec(model_dir: str | Path) -> ModelSpec:
    d = Path(model_dir)
    if not d.is_dir():
        raise GestureError(f"{d}: model folder not found")
    for name in REQUIRED_FILES:
        if not (d / name).is_file():
            raise GestureError(f"{d}: model folder is missing {name}")
    try:
        raw = json.loads((d / "model.json").read_text())
        labels = json.loads((d / "labels.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GestureError(f"{d}: cannot read model.json/labels.json ({e})") from None
    if not isinstance(raw, dict):
        raise GestureError(f"{d / 'model.json'}: must be a JSON object")
    unknown = set(raw) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise GestureError(f"{d / 'model.json'}: unknown field '{sorted(unknown)[0]}'")
    if "labels" not in raw:
        raise GestureError(f"{d / 'model.json'}: missing field 'labels'")
    spec = ModelSpec(**raw)
    if labels != spec.labels:
        raise GestureError(f"{d}: labels.json {labels} disagrees with model.json labels {spec.labels}")
    return spec


def check_against_config(spec: ModelSpec, cfg: Config, where: str = "model") -> None:
    """Refuse a model trained with other windowing, preprocessing or labels than ``cfg``; name the field."""
    p = cfg.pipeline
    for fld in ("clip_len", "size", "feature_spacing", "window"):
        if getattr(spec, fld) != getattr(p, fld):
            raise GestureError(
                f"{where}: model field '{fld}' = {getattr(spec, fld)} disagrees with config 'pipeline.{fld}' = {getattr(p, fld)}"
            )
    want = describe(cfg.preprocess, p)
    for k, v in want.items():
        got = spec.preprocess.get(k)
        if isinstance(v, list):  # a hand-edited model.json may hold anything here: compare, never crash
            same = isinstance(got, list) and len(got) == len(v) and all(
                isinstance(g, (int, float)) and not isinstance(g, bool) for g in got) and np.allclose(got, v)
        else:
            same = got == v
        if got is None or not same:
            raise GestureError(
                f"{where}: model field 'preprocess.{k}' = {got} disagrees with config ({v})"
            )
    if list(spec.labels) != list(cfg.labels):
        raise GestureError(f"{where}: model labels {spec.labels} disagree with config 'labels' {list(cfg.labels)}")


def write_model(model_dir: str | Path, spec: ModelSpec, backbone, head, card: str | None = None) -> Path:
    """Write a model folder (weights, model.json, labels.json, card). ``backbone`` None = external weights."""
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    if backbone is not None:
        backbone.save_weights(str(d / "backbone.weights.h5"))
    head.save_weights(str(d / "head.weights.h5"))
    (d / "model.json").write_text(json.dumps(spec.to_json(), indent=2))
    (d / "labels.json").write_text(json.dumps(list(spec.labels)))
    if card:
        (d / "MODEL_CARD.md").write_text(card)
    return d


def set_precision(precision: str) -> None:
    """fp32 or bf16 (Keras mixed_bfloat16: bf16 matmuls/convs, fp32 variables) for models built next."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bf16" else "float32")


@dataclass
class LoadedModel:
    spec: ModelSpec
    backbone: object        # keras.Model clip -> feature
    head: object            # keras.Model features -> probabilities
    untrained: bool = False
    path: Path | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.output_shape[-1])


def build_models(spec: ModelSpec, precision: str = "fp32"):
    """Fresh (random) backbone and head for ``spec``."""
    from .c3d import build_c3d, feature_dim
    from .head import build_head

    set_precision(precision)
    try:
        bb = build_c3d(spec.width, spec.clip_len, spec.size, with_fc8=False)
        set_precision("fp32")  # the head is tiny; keep it exact
        hk = dict(spec.head)
        kind = hk.pop("kind", "small")
        hd = build_head(feature_dim(spec.width), len(spec.labels), spec.window, kind=kind, **hk)
    finally:
        set_precision("fp32")
    return bb, hd


def load_model(
    model_dir: str | Path | None,
    cfg: Config,
    precision: str = "fp32",
    weights: str | Path | None = None,
    allow_untrained: bool = False,
) -> LoadedModel:
    """Load a model folder (None = the bundled model) and check it against ``cfg``.

    ``weights``: a Sports1M Keras-2 HDF5 for a model whose backbone is the full C3D.
    ``allow_untrained``: when no model folder exists, return a random small model flagged ``untrained``.
    """
    d = Path(model_dir) if model_dir else BUNDLED_MODEL_DIR
    if model_dir is None and not (d / "model.json").exists():
        if not allow_untrained:
            raise GestureError(f"{d}: no bundled model; train one with `gesture train` or pass --model DIR")
        spec = ModelSpec.from_config(cfg, width=0.125)
        bb, hd = build_models(spec, precision)
        return LoadedModel(spec, bb, hd, untrained=True, path=None)
    spec = read_spec(d)
    check_against_config(spec, cfg, where=str(d))
    bb, hd = build_models(spec, precision)
    src = spec.backbone.get("weights")
    if spec.backbone.get("kind") == "sports1m" or weights is not None:
        from .c3d import load_sports1m_weights

        wfile = Path(weights) if weights else Path(str(src))
        if not wfile.exists():
            raise GestureError(
                f"{d}: backbone weights '{wfile}' not found; pass --weights C3D_Sport1M_weights_keras_2.2.4.h5"
            )
        from .c3d import build_c3d, fc7_extractor

        set_precision(precision)
        try:  # built to fc8 so the whole Sports1M file must fit, then cut at fc7
            full = build_c3d(spec.width, spec.clip_len, spec.size, with_fc8=True)
        finally:
            set_precision("fp32")
        load_sports1m_weights(full, wfile)
        bb = fc7_extractor(full)
    else:
        wfile = d / str(src)
        if not wfile.is_file():
            raise GestureError(f"{d}: model folder is missing {src}")
        _load_weights(bb, wfile)
    _load_weights(hd, d / "head.weights.h5")
    return LoadedModel(spec, bb, hd, untrained=False, path=d)


def _load_weights(model, path: Path) -> None:
    try:
        model.load_weights(str(path))
    except Exception as e:  # Keras raises ValueError/KeyError/OSError on mismatch or corrupt files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GestureError(f"{path}: weights do not fit this model ({msg[:200]})") from None


def predict_fn(model):
    """A fast inference callable ``np.ndarray -> np.ndarray`` for ``model`` (compiled on TensorFlow)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        f = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: np.asarray(f(x)).astype(np.float32, copy=False)
    return lambda x: np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), dtype=np.float32)
