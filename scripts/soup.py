"""Weight arithmetic on model folders that share one architecture: a "soup" or a task vector.

    python scripts/soup.py OUT BASE COEF:MODEL [COEF:MODEL ...]

writes OUT = BASE + sum(COEF * (MODEL - BASE)) over every weight array under ``layers/`` in
``backbone.weights.h5`` and ``head.weights.h5`` (the optimizer state is dropped). The rest of the
folder (model.json, labels.json) is BASE's, and model.json's ``trained`` records the arithmetic and
what each ingredient was. Examples:

    python scripts/soup.py data/s50 models/synthetic_small 0.5:data/ft      # the 50/50 average
    python scripts/soup.py data/tv models/synthetic_small 1:data/a -1:data/c  # B + (A - C)

Only folders fine-tuned from a common start make sense to combine; the shapes must agree, and a
batch-norm moving variance is kept positive.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

WEIGHT_FILES = ("backbone.weights.h5", "head.weights.h5")


def read_layers(path: Path) -> dict[str, np.ndarray]:
    """Every dataset under ``layers/`` of one weights file, by its path inside the file."""
    if not path.exists():
        sys.exit(f"{path}: not found")
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        if "layers" not in f:
            sys.exit(f"{path}: no 'layers' group (not a Keras 3 weights file)")
        f["layers"].visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def combine(base: dict[str, np.ndarray], terms: list[tuple[float, dict[str, np.ndarray], Path]]) -> dict[str, np.ndarray]:
    out = {}
    for name, b in base.items():
        acc = b.astype(np.float64)
        for coef, arrays, where in terms:
            if name not in arrays or arrays[name].shape != b.shape:
                got = arrays[name].shape if name in arrays else "missing"
                sys.exit(f"{where}: layers/{name} is {got}, the base has {b.shape}")
            acc = acc + coef * (arrays[name].astype(np.float64) - b)
        if "batch_normalization" in name and name.endswith("vars/3"):  # moving variance
            acc = np.maximum(acc, 1e-6)
        out[name] = acc.astype(b.dtype)
    return out


def write_layers(path: Path, arrays: dict[str, np.ndarray], template: Path) -> None:
    """Write ``arrays`` into a copy of ``template``'s layout (its attributes kept, optimizer/ left out)."""
    with h5py.File(template, "r") as src, h5py.File(path, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for key in src:
            if key != "optimizer":
                src.copy(key, dst)
        for name, a in arrays.items():
            dst["layers"][name][...] = a


def read_meta(model_dir: Path) -> dict:
    path = model_dir / "model.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        sys.exit(f"{path}: not found (not a model folder)")
    except json.JSONDecodeError as e:
        sys.exit(f"{path}: not valid JSON ({e.msg}, line {e.lineno})")


def parse_term(text: str) -> tuple[float, Path]:
    coef, sep, model = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(coef), Path(model)
    except ValueError:
        sys.exit(f"{text}: a term is COEF:MODEL_DIR, e.g. 0.5:data/ft")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("base", type=Path)
    ap.add_argument("terms", nargs="+", metavar="COEF:MODEL")
    # a negative term (-1:data/c) must not be read as an option
    args = ap.parse_args(argv[:2] + ["--"] + argv[2:] if len(argv) > 2 and "-h" not in argv else argv)
    terms = [parse_term(t) for t in args.terms]
    meta = read_meta(args.base)
    metas = [read_meta(model) for _, model in terms]
    for (_, model), other in zip(terms, metas):
        for key in ("labels", "backbone", "head", "window", "clip_len"):
            if other.get(key) != meta.get(key):
                sys.exit(f"{model / 'model.json'}: '{key}' differs from {args.base / 'model.json'}")
    if args.out.exists():
        sys.exit(f"{args.out}: already exists")
    # everything is read and combined before OUT is made, so a refusal leaves no half-written folder
    combined = {fn: combine(read_layers(args.base / fn), [(c, read_layers(m / fn), m / fn) for c, m in terms])
                for fn in WEIGHT_FILES}
    args.out.mkdir(parents=True)
    for fn, arrays in combined.items():
        write_layers(args.out / fn, arrays, args.base / fn)
    shutil.copy(args.base / "labels.json", args.out / "labels.json")
    recipe = " ".join(f"{c:+g} ({m} - base)" for c, m in terms)
    meta["trained"] = {
        "summary": f"weight arithmetic: {args.base} {recipe}",
        "soup": {
            "base": {"model": str(args.base), "trained": meta.get("trained")},
            "terms": [{"coef": c, "model": str(m), "trained": other.get("trained")}
                      for (c, m), other in zip(terms, metas)],
        },
    }
    (args.out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out}: {meta['trained']['summary']}")


if __name__ == "__main__":
    main()
