"""Fuzzing the two readers of user-written files: the config loader and the meta CSV reader.

Whatever a user (or a broken editor) puts in ``config.yaml``, a ``--set`` override or a
``meta.csv``, the result is either a valid object or a :class:`realtime.errors.GestureError`
whose message names the file: never another exception type, which would reach the user as
a traceback. Bounded example counts keep this file at a few seconds.
"""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from realtime.config import DEFAULT_LABELS, Config, from_dict, load_config, parse_override
from realtime.dataset import Item, read_meta
from realtime.errors import GestureError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a UTF-8 file can hold (no lone surrogates).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.sampled_from([0, 1, 2, 4, 16, 144, 256, -1, 10**400, 0.5, 0.6, 0.4, 1.5])
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(["fp32", "bf16", "no_gesture", "left", "ctrl+z", ""] + list(DEFAULT_LABELS))
)


def _nested(leaves):
    return st.recursive(
        leaves,
        lambda c: st.lists(c, max_size=5) | st.dictionaries(TEXT | st.integers(), c, max_size=4),
        max_leaves=12,
    )


ANY_DATA = _nested(LEAVES)

# Mostly-valid shapes, so the fuzzer also gets past the unknown-key check into types, ranges and
# the cross-field checks.
SECTIONS = {
    "preprocess": ["resize", "crop", "mean_bgr"],
    "pipeline": ["clip_len", "size", "feature_spacing", "window", "stride", "precision", "max_batch"],
    "capture": ["buffer_frames", "realtime", "fps"],
    "debounce": ["smoothing", "threshold", "rearm", "cooldown_s", "opposite_s"],
    "keys": ["armed", "map"],
    "overlay": ["mirror"],
    "recorder": ["dir", "seconds"],
    "model": ["path"],
}
VALUE = LEAVES | st.lists(LEAVES, max_size=4) | st.dictionaries(
    st.sampled_from(list(DEFAULT_LABELS)) | TEXT, LEAVES, max_size=3)


@st.composite
def config_like(draw):
    raw = {}
    for section in draw(st.lists(st.sampled_from(list(SECTIONS) + ["labels", "bogus"]), max_size=5, unique=True)):
        if section == "labels":
            raw["labels"] = draw(st.lists(st.sampled_from(list(DEFAULT_LABELS) + ["x", "../x", "a b"]),
                                          max_size=7) | VALUE)
        elif section == "bogus":
            raw[draw(TEXT)] = draw(VALUE)
        else:
            keys = SECTIONS[section] + ["bogus"]
            raw[section] = {k: draw(VALUE) for k in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))}
    return raw


def _valid_or_config_error(fn, *args, name_in_message: str | None = None):
    try:
        out = fn(*args)
    except GestureError as e:
        msg = str(e)
        assert msg.strip(), "an error must say something"
        if name_in_message is not None:
            assert name_in_message in msg, msg
        return None
    assert isinstance(out, Config)
    return out


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------
@FUZZ
@given(ANY_DATA)
@example({"capture": {"fps": 10**400}})               # once an OverflowError from math.isfinite
@example({"preprocess": {"mean_bgr": [10**400, 1, 2]}})
@example({"labels": [[1]]})
@example({1: 2})
def test_from_dict_on_arbitrary_data(raw):
    _valid_or_config_error(from_dict, raw)


@FUZZ
@given(config_like())
def test_from_dict_on_config_shaped_data(raw):
    cfg = _valid_or_config_error(from_dict, raw, "config.yaml")
    if cfg is not None:  # a valid config keeps its invariants
        assert "no_gesture" in cfg.labels and cfg.capture.buffer_frames >= cfg.pipeline.span
        assert cfg.pipeline.feature_spacing % cfg.pipeline.stride == 0
        assert math.isfinite(cfg.capture.fps)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(config_like() | ANY_DATA)
def test_load_config_on_dumped_yaml(fuzz_dir, raw):
    path = fuzz_dir / "dumped.yaml"
    try:
        text = yaml.safe_dump(raw, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8")
    _valid_or_config_error(load_config, path, name_in_message=str(path))


YAML_BITS = st.sampled_from([
    "labels", "pipeline", "capture", "debounce", "keys", "map", "stride", "fps", "threshold", ":", ": ",
    "\n", "\n  ", "- ", "[", "]", "{", "}", ",", "!!int ", "!!float ", "!!timestamp ", "!!binary ",
    "!!python/object:os.system ", "!!set ", "&a ", "*a", "? ", "'", '"', "#", "abc", "16", "4", "1e999",
    "0x1F", ".nan", "~", "null", "true", "no_gesture", "\t", "---", "...", "%YAML 1.1\n", "|", ">",
])


@FUZZ
@given(st.lists(YAML_BITS, max_size=25).map("".join) | TEXT)
@example("capture:\n  fps: !!int abc\n")             # once a ValueError from PyYAML
@example("!!float x")
@example("!!timestamp x")                           # once an AttributeError from PyYAML
@example("a: &a [*a]\n")
@example("capture: {fps: 1e999}\n")
def test_load_config_on_arbitrary_text(fuzz_dir, text):
    path = fuzz_dir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    _valid_or_config_error(load_config, path, name_in_message=str(path))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_load_config_on_arbitrary_bytes(fuzz_dir, data):
    path = fuzz_dir / "bytes.yaml"
    path.write_bytes(data)
    _valid_or_config_error(load_config, path, name_in_message=str(path))


@FUZZ
@given(st.sampled_from(["pipeline.stride", "capture.fps", "labels", "keys.map", "debounce", "nope", "",
                        "pipeline", "pipeline.stride.x", "keys.map.Shake_Hand"]) | TEXT,
       st.lists(YAML_BITS, max_size=6).map("".join) | TEXT)
@example("capture.fps", "!!int abc")
@example("capture.fps", "10" + "0" * 400)
def test_set_overrides(key, value):
    """``--set KEY=VALUE`` goes through parse_override and Config.replace: same contract."""
    def apply():
        k, v = parse_override(f"{key}={value}")
        return Config().replace(**{k: v})

    _valid_or_config_error(apply)


def test_cli_prints_any_config_error_as_one_line(tmp_path, capsys):
    """A key holding a newline must not break the one-line error (the CLI flattens messages)."""
    from realtime.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text('"pipe\\nline": {stride: 4}\n', encoding="utf-8")
    rc = main(["live", "--config", str(bad), "--source", "nothing.mp4"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gesture: error:") and str(bad) in lines[0], err


# ---------------------------------------------------------------------------------------------
# meta CSV
# ---------------------------------------------------------------------------------------------
def _items_or_gesture_error(path):
    try:
        items = read_meta(path, DEFAULT_LABELS)
    except GestureError as e:
        assert str(path) in str(e), str(e)        # every error names the file
        return None
    assert items and all(isinstance(it, Item) and it.label in DEFAULT_LABELS for it in items)
    return items


CELL = st.sampled_from(list(DEFAULT_LABELS) + ["clip.mp4", "a/b.mp4", "/abs.mp4", "", " ", '"', "'x'",
                                              "Shake Hand", "16", "file_path", "action"]) | TEXT
COLUMNS = st.sampled_from(["file_path", "action", "frame_count", "recorded_at", "predicted", "", "x",
                           " action ", "FILE_PATH"])


@st.composite
def csv_like(draw):
    cols = draw(st.lists(COLUMNS, min_size=0, max_size=5))
    rows = draw(st.lists(st.lists(CELL, max_size=6), max_size=6))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + sep.join([",".join(cols)] + [",".join(r) for r in rows]) + draw(st.sampled_from(["", sep]))


@FUZZ
@given(csv_like() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
@example("file_path,action\nclip.mp4,Not_A_Label\n")
@example("file_path,action\n\"unterminated,Shake_Hand\n")
@example("file_path,action\nclip.mp4\n")
@example("action,file_path\n,Shake_Hand\n")
@example("file_path,action\n" + "x" * 140_000 + ",Shake_Hand\n")  # once a csv.Error (field limit)
def test_read_meta_on_arbitrary_text(fuzz_dir, text):
    path = fuzz_dir / "meta.csv"
    path.write_text(text, encoding="utf-8", newline="")
    items = _items_or_gesture_error(path)
    if items is not None:
        assert all(it.source.startswith(f"{path}:") for it in items)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_read_meta_on_arbitrary_bytes(fuzz_dir, data):
    path = fuzz_dir / "bytes.csv"
    path.write_bytes(data)
    _items_or_gesture_error(path)
