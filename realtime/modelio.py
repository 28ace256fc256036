"""Model folders: backbone + head weights, labels and the preprocessing they were trained with.

A model folder holds::

    model.json          clip_len, size, feature_spacing, window, fps, preprocess, labels,
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
from .preprocess import describe, for_model

FORMAT_VERSION = 1
BUNDLED_MODEL_DIR = REPO_ROOT / "models" / "synthetic_small"
REQUIRED_FILES = ("model.json", "labels.json", "head.weights.h5")
HEAD_KINDS = ("small", "seed")   # realtime.head builds them; here so that reading model.json needs no TensorFlow


@dataclass
class ModelSpec:
    """The contents of ``model.json``."""

    labels: list[str]
    clip_len: int = 16
    size: int = 112
    feature_spacing: int = 16
    window: int = 8
    fps: float = 30.0       # the frame rate it was trained at; sources are brought to it (realtime.framerate)
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
            fps=float(cfg.pipeline.fps),
            preprocess=describe(for_model(cfg.preprocess, width), cfg.pipeline),
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
    parsed = {}
    for name in ("model.json", "labels.json"):
        try:
            parsed[name] = json.loads((d / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GestureError(f"{d / name}: cannot read it as JSON ({e})") from None
    raw, labels = parsed["model.json"], parsed["labels.json"]
    if not isinstance(raw, dict):
        raise GestureError(f"{d / 'model.json'}: must be a JSON object")
    unknown = set(raw) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise GestureError(f"{d / 'model.json'}: unknown field '{sorted(unknown)[0]}'")
    if "labels" not in raw:
        raise GestureError(f"{d / 'model.json'}: missing field 'labels'")
    spec = ModelSpec(**raw)
    _check_spec_types(spec, d / "model.json")
    if labels != spec.labels:
        raise GestureError(f"{d}: labels.json {labels} disagrees with model.json labels {spec.labels}")
    return spec


def _check_spec_types(spec: ModelSpec, where: Path) -> None:
    """A hand-edited model.json must fail here with the field named, not as a TypeError deep in Keras
    (or, with ``backbone.width: 1000``, by trying to allocate a model a million times too big)."""
    def bad(fld, want, got):
        raise GestureError(f"{where}: field '{fld}' must be {want}, got {got!r}")

    if not isinstance(spec.labels, list) or not all(isinstance(x, str) and x for x in spec.labels):
        bad("labels", "a list of label names", spec.labels)
    for fld in ("clip_len", "size", "feature_spacing", "window"):
        v = getattr(spec, fld)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 512:
            bad(fld, "an integer in 1..512", v)
    if isinstance(spec.fps, bool) or not isinstance(spec.fps, (int, float)) or not 1 <= spec.fps <= 240:
        bad("fps", "a number in 1..240", spec.fps)
    for fld in ("preprocess", "backbone", "head", "trained"):
        if not isinstance(getattr(spec, fld), dict):
            bad(fld, "a JSON object", getattr(spec, fld))
    bb = spec.backbone
    if bb.get("kind", "c3d") not in ("c3d", "sports1m"):
        bad("backbone.kind", "'c3d' or 'sports1m'", bb.get("kind"))
    w = bb.get("width", 1.0)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
        bad("backbone.width", "a number in (0, 1]", w)
    sc = bb.get("input_scale", 1.0)
    if isinstance(sc, bool) or not isinstance(sc, (int, float)) or not 0 < sc <= 1:
        bad("backbone.input_scale", "a number in (0, 1]", sc)
    for flag in ("motion", "norm"):
        if not isinstance(bb.get(flag, False), bool):
            bad(f"backbone.{flag}", "true or false", bb.get(flag))
    if bb.get("downsample", 1) not in (1, 2, 4):
        bad("backbone.downsample", "1, 2 or 4", bb.get("downsample"))
    if not isinstance(bb.get("weights", ""), str):
        bad("backbone.weights", "a file name", bb.get("weights"))
    hd = spec.head
    if hd.get("kind", "small") not in HEAD_KINDS:
        bad("head.kind", f"one of {list(HEAD_KINDS)}", hd.get("kind"))
    for k, v in hd.items():
        if k == "kind":
            continue
        if k in ("units", "proj"):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
                bad(f"head.{k}", "an integer in 1..4096", v)
        elif k == "dropout":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                bad("head.dropout", "a number in [0, 1)", v)
        else:
            raise GestureError(f"{where}: unknown field 'head.{k}' (allowed: kind, units, proj, dropout)")


def check_against_config(spec: ModelSpec, cfg: Config, where: str = "model") -> None:
    """Refuse a model trained with other windowing, preprocessing or labels than ``cfg``; name the field."""
    p = cfg.pipeline
    for fld in ("clip_len", "size", "feature_spacing", "window"):
        if getattr(spec, fld) != getattr(p, fld):
            raise GestureError(
                f"{where}: model field '{fld}' = {getattr(spec, fld)} disagrees with config 'pipeline.{fld}' = {getattr(p, fld)}"
            )
    if abs(float(spec.fps) - p.fps) > 1e-6:
        raise GestureError(f"{where}: model field 'fps' = {spec.fps} disagrees with config 'pipeline.fps' = {p.fps}")
    want = describe(for_model(cfg.preprocess, spec.width, spec.preprocess), p)
    for k, v in want.items():
        got = spec.preprocess.get(k)
        # saved before the field existed (the bundled model: 320x240 4:3 frames, where both aspects and both
        # downscales agree, and rooms lit above min_level's default, which it then almost never changes): either way
        if k in ("aspect", "downscale", "min_level") and got is None:
            continue
        if isinstance(v, list):  # a hand-edited model.json may hold anything here: compare, never crash
            same = isinstance(got, list) and len(got) == len(v) and all(
                isinstance(g, (int, float)) and not isinstance(g, bool) for g in got) and np.allclose(got, v)
        else:
            same = got == v
        if got is None or not same:
            raise GestureError(
                f"{where}: model field 'preprocess.{k}' = {got} disagrees with config ({v}): use the config it "
                f"was trained with, or --set preprocess.{k}=..."
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
        bb = build_c3d(spec.width, spec.clip_len, spec.size, with_fc8=False,
                       input_scale=float(spec.backbone.get("input_scale", 1.0)),
                       motion=bool(spec.backbone.get("motion", False)),
                       norm=bool(spec.backbone.get("norm", False)),
                       downsample=int(spec.backbone.get("downsample", 1)))
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
    import warnings

    try:
        # Keras only *warns* when layers nested in a container found no weights in the file and
        # keeps their random initialisation: a half-random model must be refused, not run.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
    except Exception as e:  # Keras raises ValueError/KeyError/OSError on mismatch or corrupt files
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        msg = lines[0] if lines else type(e).__name__
        if msg.endswith(":") and len(lines) > 1:  # "... Example error message for object <X>:" + the error
            msg = f"{msg} {lines[1]}"
        msg = msg.split(" Target variable:")[0]
        raise GestureError(f"{path}: weights do not fit this model ({msg[:300]})") from None
    partial = [w for w in caught if "freshly-initialized" in str(w.message)]
    if partial:
        first = str(partial[0].message).split(":")[0]
        raise GestureError(f"{path}: weights do not fit this model ({first}; some layers would stay random)")


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 instructions oneDNN uses (AVX512_BF16 or AMX); False where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def predict_fn(model, mean_bgr=None):
    """A fast inference callable ``np.ndarray -> np.ndarray`` for ``model`` (compiled on TensorFlow).

    ``mean_bgr``: the callable takes ``(N, L, S, S, 3) uint8`` crops and subtracts these BGR means
    inside the compiled function (the same float32 numbers as :func:`preprocess.to_model_input`,
    without a float32 copy of the batch made in NumPy first).

    A bf16 model on a CPU without bf16 instructions (e.g. AVX2-only) is compiled with XLA: there
    TensorFlow's own bf16 convolutions are emulated (about 33 s per full C3D clip on 2 Zen 3
    cores, against about 2 s with XLA). Where oneDNN has AMX/AVX512_BF16, or for fp32, the plain
    graph is faster than XLA and is used.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        layers = [model, *getattr(model, "layers", [])]  # an fc7 extractor's own policy may say float32
        bf16 = any(getattr(l, "compute_dtype", None) == "bfloat16" for l in layers)
        jit = bf16 and not cpu_has_native_bf16() and not tf.config.list_physical_devices("GPU")

        def fwd(x):
            return model(x, training=False)

        if mean_bgr is None:
            f = tf.function(fwd, reduce_retracing=True, jit_compile=jit)
        else:
            mean = tf.constant(np.asarray(mean_bgr, np.float32))
            f = tf.function(lambda x: fwd(tf.cast(x, tf.float32) - mean), reduce_retracing=True, jit_compile=jit)
        return lambda x: np.asarray(f(x)).astype(np.float32, copy=False)
    # JAX (and others): the model's own compiled predict step, the batch padded to a power of two
    # so a few shapes are compiled once each instead of one compile per batch size seen
    mean = None if mean_bgr is None else np.asarray(mean_bgr, np.float32)

    def run(x):
        x = np.asarray(x, np.float32) if mean is None else np.asarray(x, np.float32) - mean
        n = len(x)
        pad = (1 << max(n - 1, 0).bit_length()) - n
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        return np.asarray(model.predict_on_batch(x), dtype=np.float32)[:n]

    return run
