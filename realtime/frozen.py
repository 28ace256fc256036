"""``gesture train --weights sports1m.h5``: the frozen full C3D, cached fc7 features, a trained head.

Every clip is put in one fixed context (its first frame held for 127 frames
before it, its last frame held for 40 after it; no black frames) and the fc7
features of all 16-frame clips ending every 8 frames are computed once. They
are cached on disk as ``<cache>/<key>.npz``, written atomically; the key hashes
the video's bytes, the preprocessing, the context scheme and the weights file,
so a second run (or another head) skips extraction. Windows of 8 features
16 frames apart are then cut at every 8-frame position and labelled as in
:mod:`realtime.windows`; only the small head is trained.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .config import NO_GESTURE, Config
from .dataset import content_key, stratified_split
from .errors import GestureError
from .windows import balance, held

PRE, POST, STEP = 127, 40, 8
CONTEXT_VERSION = "ctx1-pre127-post40-step8"


def _weights_fingerprint(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    h.update(f"{st.st_size}".encode())
    return h.hexdigest()[:16]


def clip_feature_grid(crops: np.ndarray, predict, cfg: Config, batch: int = 8):
    """Context sequence of one clip -> (ends, feats (n, D)), gesture end index ``g``."""
    from .preprocess import to_model_input

    rng = np.random.default_rng(0)
    L = cfg.pipeline.clip_len
    seq = np.concatenate([held(crops[0], PRE, rng, tremor=0.0), crops, held(crops[-1], POST, rng, tremor=0.0)])
    g = PRE + len(crops) - 1
    # ends aligned so that g - 8k is an end: the window ending exactly at the gesture end exists
    first = L - 1 + ((g - (L - 1)) % STEP)
    ends = list(range(first, len(seq), STEP))
    feats = []
    for i in range(0, len(ends), batch):
        chunk = ends[i : i + batch]
        x = np.stack([seq[e - L + 1 : e + 1] for e in chunk])
        feats.append(predict(to_model_input(x, cfg.preprocess)))
    return np.array(ends), np.concatenate(feats).astype(np.float32), g


def cached_features(items, clips, predict, cfg: Config, cache_dir: Path, weights: Path, progress=True):
    from tqdm import tqdm

    from .preprocess import describe

    cache_dir.mkdir(parents=True, exist_ok=True)
    extra = json.dumps([describe(cfg.preprocess, cfg.pipeline), CONTEXT_VERSION, _weights_fingerprint(weights),
                        cfg.pipeline.fps, cfg.capture.resample])
    out, hits = [], 0
    for it, crops in tqdm(list(zip(items, clips)), desc="fc7 cache", unit="clip", disable=not progress or None):
        f = cache_dir / f"{content_key(it.path, extra)}.npz"
        if f.exists():
            try:
                z = np.load(f)
                out.append((z["ends"], z["feats"], int(z["g"])))
                hits += 1
                continue
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed
        ends, feats, g = clip_feature_grid(crops, predict, cfg)
        tmp = f.with_name(f.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, ends=ends, feats=feats, g=g)
        os.replace(tmp, f)
        out.append((ends, feats, g))
    print(f"feature cache: {hits} hit(s), {len(items) - hits} computed ({cache_dir})", file=sys.stderr)
    return out


def windows_from_grid(ends, feats, g, label: int, bg: int, cfg: Config, delay: int = 0):
    """All windows of one clip's feature grid: X (n, window, D), y (n,), w (n,), window ends (n,)."""
    from .small import cut_windows

    return cut_windows(ends, feats, [] if label == bg else [(int(g), label)], cfg, bg, delay)


def train_frozen_head(args, cfg: Config, out: Path) -> int:
    import keras

    from .c3d import build_c3d, fc7_extractor, load_sports1m_weights
    from .head import build_head, window_batches
    from .modelio import ModelSpec, predict_fn, set_precision, write_model
    from .preprocess import config_for_model
    from .train import load_dataset, plot_report

    t0 = time.monotonic()
    weights = Path(args.weights)
    width = args.width or 1.0
    keras.utils.set_random_seed(args.seed)
    cfg = config_for_model(cfg, width)   # downscale: auto -> the Caffe recipe
    clips, skipped = load_dataset(args.meta, cfg, args.strict)
    set_precision(cfg.pipeline.precision)
    try:
        full = build_c3d(width, cfg.pipeline.clip_len, cfg.pipeline.size, with_fc8=True)
    finally:
        set_precision("fp32")
    load_sports1m_weights(full, weights)
    predict = predict_fn(fc7_extractor(full))
    cache = Path(args.cache) if args.cache else Path.home() / ".cache" / "gesture" / "fc7"
    grids = cached_features([c.item for c in clips], [c.crops for c in clips], predict, cfg, cache, weights)
    labels = list(cfg.labels)
    bg = labels.index(NO_GESTURE)
    tr, va = stratified_split([c.item for c in clips], args.val_split, args.seed)
    delay = getattr(args, "label_delay", 0) or 0

    def collect(idx):
        X, y, w = [], [], []
        for i in idx:
            ends, feats, g = grids[i]
            a, b, c, _ = windows_from_grid(ends, feats, g, clips[i].label, bg, cfg, delay)
            X += a
            y += b
            w += c
        if not X:
            raise GestureError("no complete 8-feature windows could be cut from the clips")
        return np.stack(X), np.array(y, np.int32), np.array(w, np.float32)

    Xtr, ytr, wtr = collect(tr)
    Xva, yva, wva = collect(va) if va else (Xtr, ytr, wtr)
    # balance the classes: positives are a few windows per clip, no_gesture the rest
    wtr, wva = balance(ytr, wtr, len(labels)), balance(yva, wva, len(labels))
    spec = ModelSpec.from_config(cfg, width=width, head_kind=args.head or "small")
    spec.backbone = {"kind": "sports1m", "width": width, "weights": str(weights.resolve())}
    hk = dict(spec.head)
    kind = hk.pop("kind")
    head = build_head(Xtr.shape[-1], len(labels), cfg.pipeline.window, kind=kind, **hk)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                 weighted_metrics=["accuracy"])
    ckpt = out / ".checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    if (ckpt / "head.weights.h5").exists():
        head.load_weights(str(ckpt / "head.weights.h5"))
        print(f"resuming from {ckpt}", file=sys.stderr)
    cb = [keras.callbacks.EarlyStopping(patience=8, restore_best_weights=True),
          keras.callbacks.ModelCheckpoint(str(ckpt / "head.weights.h5"), save_best_only=True, save_weights_only=True)]
    hist = head.fit(window_batches(Xtr, ytr, wtr, 64, args.seed), validation_data=(Xva, yva, wva),
                    epochs=args.epochs or 60, callbacks=cb, verbose=2)
    h = hist.history
    history = [{"step": i + 1, "loss": h["loss"][i], "val_loss": h["val_loss"][i],
                "acc": h.get("accuracy", h.get("weighted_accuracy", [0] * len(h["loss"])))[i],
                "val_acc": h.get("val_accuracy", h.get("val_weighted_accuracy", [0] * len(h["loss"])))[i]}
               for i in range(len(h["loss"]))]
    # clip accuracy on validation clips: windows ending 0 and 8 frames after the clip end (+ the label delay)
    from .evaluate import answer_offsets, confusion

    offsets = answer_offsets(delay)
    y_true, y_pred = [], []
    hp = predict_fn(head)
    for i in (va or tr):
        ends, feats, g = grids[i]
        X, _, _, E = windows_from_grid(ends, feats, g, clips[i].label, bg, cfg)
        # the cached grid has a feature every 8 frames from the gesture end: the first window at or after each
        # answer point (the gesture end itself and 8 frames later unless the head was taught to answer later)
        at = {min((e for e in E if e - g >= o), default=max(E, default=None)) for o in offsets}
        cand = [x for x, e in zip(X, E) if e in at]
        pr = hp(np.stack(cand)).mean(0) if cand else np.zeros(len(labels))
        y_true.append(clips[i].label)
        y_pred.append(int(np.argmax(pr)))
    cm = confusion(y_true, y_pred, len(labels))
    spec.trained = {"summary": f"frozen Sports1M C3D + {kind} head on {len(tr)} clips", "seed": args.seed,
                    "metas": [str(m) for m in args.meta], "minutes": round((time.monotonic() - t0) / 60, 1),
                    **({"label_delay": delay} if delay else {})}
    write_model(out, spec, None, head)
    (out / "report").mkdir(exist_ok=True)
    metrics = {"clip_accuracy_val": float(np.mean(np.array(y_true) == np.array(y_pred))), "n_train": len(tr),
               "n_val": len(va), "skipped": skipped, "confusion": cm.tolist(), "labels": labels,
               "history": history, "minutes": spec.trained["minutes"]}
    (out / "report" / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_report(out / "report", {"head on windows": history}, cm, labels)
    print(f"wrote {out}: validation clip accuracy {metrics['clip_accuracy_val']:.3f} ({len(va)} clips)")
    return 0

