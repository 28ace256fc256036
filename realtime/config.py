"""Typed, validated configuration: ``config.yaml`` maps onto frozen dataclasses.

Validation lives here and only here. Every error names the dotted key
(``debounce.threshold``) and what is allowed, so a user can fix the file at once.
Command-line overrides use the same dotted names (``--set pipeline.stride=4``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

GESTURES = ("1_Finger_Click", "2_Fingers_Left", "2_Fingers_Right", "Shake_Hand")
NO_GESTURE = "no_gesture"
DEFAULT_LABELS = GESTURES + (NO_GESTURE,)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"


def _rng(lo=None, hi=None, choices=None, lo_open=False):
    """Field metadata: numeric range or allowed choices, checked by ``_check``."""
    return {"lo": lo, "hi": hi, "choices": choices, "lo_open": lo_open}


@dataclass(frozen=True)
class PreprocessConfig:
    """The Caffe C3D recipe: resize (w, h) INTER_LINEAR, subtract BGR means, crop (row, col)."""

    resize: tuple[int, int] = (171, 128)
    crop: tuple[int, int] = (8, 29)
    mean_bgr: tuple[float, float, float] = (90.25, 97.66, 101.41)
    # a frame not shaped like the resize (16:9, a 9:16 phone video): stretch = squeeze it whole (the Caffe recipe),
    # crop = cut its middle to the resize's shape first, so hands keep their proportions (see preprocess.py)
    aspect: str = field(default="stretch", metadata=_rng(choices=("stretch", "crop")))
    # a frame more than twice the resize's size (a 640x480 or 1280x720 webcam): area = average it down to twice the
    # resize first, so the model sees what a 320x240 frame gives it; linear = INTER_LINEAR straight down (the Caffe
    # recipe; aliased at such sizes); auto = the model's own (model.json), else area for small backbones and linear
    # for the full Sports1M C3D (preprocess.for_model)
    downscale: str = field(default="auto", metadata=_rng(choices=("auto", "linear", "area")))
    # a crop darker than this mean grey level (0-255) is brightened to it, by at most 4x, as a camera's gain would
    # (a webcam in a dim room); 0 = off. The rendered rooms the bundled model learned from sit above it in all but
    # a few percent of frames, where it changes nothing measurable (docs/ablation.md, "Session 27")
    min_level: float = field(default=55.0, metadata=_rng(0, 255))


@dataclass(frozen=True)
class PipelineConfig:
    clip_len: int = field(default=16, metadata=_rng(1, 64))
    size: int = field(default=112, metadata=_rng(16, 512))
    feature_spacing: int = field(default=16, metadata=_rng(1, 64))
    window: int = field(default=8, metadata=_rng(1, 64))
    stride: int = field(default=4, metadata=_rng(choices=(1, 2, 4, 8, 16)))
    precision: str = field(default="fp32", metadata=_rng(choices=("fp32", "bf16")))
    max_batch: int = field(default=4, metadata=_rng(1, 64))
    fps: float = field(default=30.0, metadata=_rng(1, 240))
    mirror_average: str = field(default="auto", metadata=_rng(choices=("auto", "on", "off")))

    @property
    def span(self) -> int:
        """Frames covered by one head window: (window - 1) * spacing + clip_len (128)."""
        return (self.window - 1) * self.feature_spacing + self.clip_len


@dataclass(frozen=True)
class CaptureConfig:
    buffer_frames: int = field(default=256, metadata=_rng(144, 100_000))
    realtime: bool = False
    fps: float = field(default=30.0, metadata=_rng(1, 240))
    resample: str = field(default="flow", metadata=_rng(choices=("flow", "linear", "nearest", "off")))
    mirrored: bool = False  # the source is a mirror image (a selfie-view recording): flipped back before the model
    # rolling light bands (LED/fluorescent light on 50 Hz mains, a rolling shutter) divided out of each crop
    deflicker: bool = True
    # a shaking camera's wobble followed by the crop window (realtime.stabilize)
    stabilize: bool = False


@dataclass(frozen=True)
class DebounceConfig:
    smoothing: int = field(default=3, metadata=_rng(1, 64))
    threshold: float = field(default=0.97, metadata=_rng(0, 1, lo_open=True))
    rearm: float = field(default=0.4, metadata=_rng(0, 1))
    cooldown_s: float = field(default=0.8, metadata=_rng(0, 60))
    opposite_s: float = field(default=1.0, metadata=_rng(0, 60))


@dataclass(frozen=True)
class KeysConfig:
    armed: bool = False
    map: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OverlayConfig:
    mirror: bool = True


@dataclass(frozen=True)
class RecorderConfig:
    dir: str = "recordings"
    seconds: float | None = field(default=None, metadata=_rng(0.1, 600, lo_open=False))


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = None


@dataclass(frozen=True)
class Config:
    labels: tuple[str, ...] = DEFAULT_LABELS
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    debounce: DebounceConfig = field(default_factory=DebounceConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def replace(self, **dotted: Any) -> "Config":
        """A copy with dotted keys overridden and re-validated: ``cfg.replace(**{"pipeline.stride": 4})``."""
        raw = to_dict(self)
        for key, value in dotted.items():
            node = raw
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"config: unknown key '{key}'")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"config: unknown key '{key}'")
            node[parts[-1]] = value
        return from_dict(raw)

    @property
    def recorder_frames(self) -> int:
        """Frames the recorder saves: ``recorder.seconds`` at the model's frame rate, default the head's window."""
        if self.recorder.seconds is None:
            return self.pipeline.span
        return max(self.pipeline.clip_len, int(round(self.recorder.seconds * self.pipeline.fps)))


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _check(key: str, tp, value, meta, source: str):
    """Coerce ``value`` to ``tp`` or raise ConfigError naming ``key``."""
    where = f"{source}: " if source else ""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}'{key}' must be a mapping, got {type(value).__name__}")
        return _build(tp, value, key + ".", source)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}'{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}'{key}' must be an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}'{key}' must be a number, got {value!r}")
        try:  # an integer beyond float range (10**400 in YAML) overflows: a bad value, not a crash
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:20] + "..." + repr(value)[-8:]
            raise ConfigError(f"{where}'{key}' must be a finite number, got {shown}")
        value = number
    elif tp is str:
        choices = (meta or {}).get("choices") or ()
        if value is False and "off" in choices:
            value = "off"  # YAML 1.1 reads a bare `off` as false
        elif value is True and "on" in choices:
            value = "on"  # and a bare `on` as true
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}'{key}' must be a non-empty string, got {value!r}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}'{key}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_check(f"{key}[{i}]", args[0], v, {}, source) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise ConfigError(f"{where}'{key}' must have {len(args)} items, got {len(value)}")
            items = [_check(f"{key}[{i}]", a, v, {}, source) for i, (a, v) in enumerate(zip(args, value))]
        value = tuple(items)
    elif origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}'{key}' must be a mapping, got {value!r}")
        value = {
            _check(f"{key} (a key)", args[0], k, {}, source): _check(f"{key}.{k}", args[1], v, {}, source)
            for k, v in value.items()
        }
    if meta:
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where}'{key}' must be one of {list(choices)}, got {value!r}")
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
            op = ">" if meta.get("lo_open") else ">="
            raise ConfigError(f"{where}'{key}' must be {op} {lo}, got {value!r}")
        if hi is not None and value > hi:
            raise ConfigError(f"{where}'{key}' must be <= {hi}, got {value!r}")
    return value


def _build(cls, raw: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in fields:
            where = f"{source}: " if source else ""
            raise ConfigError(
                f"{where}unknown key '{prefix}{k}' (allowed: {', '.join(prefix + n for n in fields)})"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _check(prefix + name, hints[name], raw[name], dict(f.metadata), source)
    return cls(**kwargs)


def from_dict(raw: dict | None, source: str = "") -> Config:
    """Validate a plain mapping into a Config; errors name ``source`` and the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source or 'config'}: top level must be a mapping, got {type(raw).__name__}")
    cfg = _build(Config, raw, "", source)
    _cross_check(cfg, source)
    return cfg


def _cross_check(cfg: Config, source: str) -> None:
    where = f"{source}: " if source else ""
    labels = cfg.labels
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}'labels' has duplicates: {list(labels)}")
    if NO_GESTURE not in labels:
        raise ConfigError(f"{where}'labels' must include '{NO_GESTURE}' (the background class)")
    if len(labels) < 2:
        raise ConfigError(f"{where}'labels' needs at least one gesture besides '{NO_GESTURE}'")
    for lab in labels:
        if not all(c.isalnum() or c in "_-" for c in lab):
            raise ConfigError(f"{where}label {lab!r} in 'labels' may only use letters, digits, '_' and '-'")
    p = cfg.pipeline
    if p.feature_spacing % p.stride:
        raise ConfigError(
            f"{where}'pipeline.stride' ({p.stride}) must divide 'pipeline.feature_spacing' ({p.feature_spacing})"
        )
    if cfg.capture.buffer_frames < p.span + p.clip_len:
        raise ConfigError(
            f"{where}'capture.buffer_frames' must be >= {p.span + p.clip_len} (window span + one clip), "
            f"got {cfg.capture.buffer_frames}"
        )
    d = cfg.debounce
    if d.rearm >= d.threshold:
        raise ConfigError(f"{where}'debounce.rearm' ({d.rearm}) must be below 'debounce.threshold' ({d.threshold})")
    w, h = cfg.preprocess.resize
    r, c = cfg.preprocess.crop
    if w <= 0 or h <= 0 or r < 0 or c < 0 or r + p.size > h or c + p.size > w:
        raise ConfigError(
            f"{where}'preprocess.crop' {list(cfg.preprocess.crop)} + size {p.size} does not fit "
            f"'preprocess.resize' {list(cfg.preprocess.resize)}"
        )
    for lab in cfg.keys.map:
        if lab not in labels:
            raise ConfigError(f"{where}'keys.map.{lab}' is not a label (labels: {list(labels)})")
    # Key names too, even while keystrokes are off: a typo shows at start-up with the file's name, not
    # when the user first arms keys (reading pynput's key names imports nothing that needs a display).
    from .keys import parse_keymap

    try:
        parse_keymap(cfg.keys.map)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None


def to_dict(cfg) -> dict:
    """Plain, YAML-safe mapping (tuples become lists)."""

    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a YAML config. ``None`` = the repository's ``config.yaml`` (defaults if absent)."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return Config()
        path = DEFAULT_CONFIG_PATH
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except Exception as e:  # explicit tags on bad scalars ('!!int abc') raise ValueError etc. from PyYAML
        raise ConfigError(f"{path}: not valid YAML ({type(e).__name__}: {_first_line(e)})") from None
    return from_dict(raw, source=str(path))


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else ""


def parse_override(text: str) -> tuple[str, Any]:
    """``"pipeline.stride=4"`` -> ("pipeline.stride", 4); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. pipeline.stride=4")
    key, _, val = text.partition("=")
    try:
        value = yaml.safe_load(val)
    except Exception:  # YAMLError, or ValueError etc. for '!!int abc'
        raise ConfigError(f"--set {key}: value {val!r} is not valid YAML") from None
    return key.strip(), value
