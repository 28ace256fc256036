"""``gesture train``: labelled clips -> a model folder the live engine runs.

Two backbones:

* ``--backbone small`` (default): the width-scaled C3D trained end to end from
  scratch together with the head, on augmented clips placed in context
  (:mod:`realtime.windows`). A per-clip auxiliary classifier speeds up the
  backbone's learning; it is not part of the saved model.
* ``--weights sports1m.h5``: the frozen full C3D. fc7 features of every clip in
  a fixed context (held edge frames) are computed once at a 4-frame stride and
  cached on disk, keyed by the video's bytes and the preprocessing; the head is
  then trained on the cache.

Both train on what the live engine sees: windows of 8 features 16 frames apart,
labelled by where the gesture ends in the window. Split by video, stratified;
progress bars; early stopping; the best checkpoint kept; an interrupted run
resumes from its last checkpoint (``OUT/.checkpoint``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import NO_GESTURE, Config
from .dataset import Item, load_crops, read_meta, stratified_split
from .errors import GestureError
from .preprocess import to_model_input
from .windows import FLIP_SWAP, augment, loop_to, place_in_context, resample, window_label


@dataclass
class Clip:
    crops: np.ndarray   # (T, size, size, 3) uint8
    label: int
    item: Item


def load_dataset(metas, cfg: Config, strict: bool = False, progress: bool = True):
    """Read every meta, load every clip's crops. Clips shorter than one C3D clip are skipped and listed."""
    from tqdm import tqdm

    items: list[Item] = []
    for m in metas:
        items += read_meta(m, cfg.labels)
    L = cfg.pipeline.clip_len
    clips, skipped = [], []
    for it in tqdm(items, desc="loading clips", unit="clip", disable=not progress or None):
        crops = load_crops(it, cfg)
        if len(crops) < L:
            msg = f"{it.path}: {len(crops)} frames, fewer than {L} ({it.source})"
            if strict:
                raise GestureError(msg + "; --strict makes this fatal")
            skipped.append(msg)
            continue
        clips.append(Clip(crops, cfg.labels.index(it.label), it))
    if skipped:
        print(f"skipped {len(skipped)} clip(s) shorter than {L} frames:", file=sys.stderr)
        for s in skipped:
            print(f"  {s}", file=sys.stderr)
    if not clips:
        raise GestureError("no usable clips (all were missing or shorter than one clip)")
    return clips, skipped


class SequenceSampler:
    """Random training sequences of ``n_clips`` clips (``n_clips * 16`` frames) with window/clip labels."""

    def __init__(self, clips: list[Clip], cfg: Config, n_clips: int, rng: np.random.Generator,
                 augment_p: float = 1.0, black: bool = False, background: bool = True):
        self.clips, self.cfg, self.S, self.rng = clips, cfg, n_clips, rng
        p = cfg.pipeline
        self.L, self.spacing, self.window = p.clip_len, p.feature_spacing, p.window
        self.labels = list(cfg.labels)
        self.bg = self.labels.index(NO_GESTURE)
        self.neg = [c for c in clips if c.label == self.bg]
        self.pos = [c for c in clips if c.label != self.bg]
        self.augment_p = augment_p
        self.pos_weight = 3.0
        self.black = black            # ablation: the seed's black padding
        self.background = background  # ablation: False = no no_gesture class (its windows get weight 0)
        self.n_frames = n_clips * self.L
        # window k ends at frame first_end + spacing*k (clips are laid end to end, spacing == clip_len)
        self.n_windows = n_clips - self.window + 1
        self.first_end = self.window * self.L - 1

    def _label_idx(self, lab: int, flip: bool) -> int:
        name = self.labels[lab]
        return self.labels.index(FLIP_SWAP[name]) if flip and name in FLIP_SWAP else lab

    def sample(self):
        """One sequence: frames ``(S*16, size, size, 3) uint8``, window labels/weights ``(W,)``, clip labels ``(S,)``."""
        rng = self.rng
        bgclip = self.neg[int(rng.integers(len(self.neg)))].crops if self.neg else None
        flip = rng.random() < 0.5
        yw = np.full(self.n_windows, self.bg, np.int32)
        ww = np.ones(self.n_windows, np.float32)
        yc = np.full(self.S, self.bg, np.int32)
        r = rng.random()
        if self.pos and (not self.neg or r < 0.72 or not self.background):
            c = self.pos[int(rng.integers(len(self.pos)))]
            clip = resample(c.crops, rng.uniform(0.8, 1.25))
            lab = self._label_idx(c.label, flip)
            # d of the first window: mostly around the firing region, sometimes long before/after
            d0 = int(rng.integers(-40, 25)) if rng.random() < 0.85 else int(rng.integers(41, 90))
            g = self.first_end - d0
            g = min(g, self.n_frames - 1)
            d0 = self.first_end - g
            seq = place_in_context(clip, self.n_frames, g, rng, bgclip, black=self.black)
            for k in range(self.n_windows):
                yw[k], ww[k] = window_label(d0 + self.spacing * k, lab, self.bg)
                if yw[k] != self.bg:
                    ww[k] *= self.pos_weight  # positives are rare among windows: balance them
                if not self.background and yw[k] == self.bg:
                    ww[k] = 0.0
            s0 = g - len(clip) + 1
            for k in range(self.S):
                a, b = k * self.L, k * self.L + self.L - 1
                if min(b, g) - max(a, s0) + 1 >= self.L // 2:
                    yc[k] = lab
        else:
            c = self.neg[int(rng.integers(len(self.neg)))]
            seq = loop_to(resample(c.crops, rng.uniform(0.8, 1.25)), self.n_frames)
        if flip:
            seq = seq[:, :, ::-1]
        if rng.random() < self.augment_p:
            seq = augment(np.ascontiguousarray(seq), rng)
        return np.ascontiguousarray(seq), yw, ww, yc

    def batch(self, n: int):
        xs, yws, wws, ycs = zip(*(self.sample() for _ in range(n)))
        x = np.stack(xs).reshape(n, self.S, self.L, *xs[0].shape[1:])
        return (to_model_input(x, self.cfg.preprocess), np.stack(yws), np.stack(wws), np.stack(ycs))

    def clip_weights(self, yc: np.ndarray) -> np.ndarray:
        """Per-clip weights for the auxiliary loss: gesture clips are ~1 in 6, weigh them up."""
        return np.where(yc != self.bg, 2.5, 1.0).astype(np.float32)


def build_trainer(backbone, head, n_clips: int, window: int, n_labels: int, clip_len: int, size: int):
    """Wrap backbone + head for sequences: ``(B, S, L, size, size, 3) -> windows (B, W, C), clips (B, S, C)``."""
    import keras

    L = keras.layers
    inp = keras.Input((n_clips, clip_len, size, size, 3), name="sequence")
    feats = L.TimeDistributed(backbone, name="backbone_td")(inp)
    wins = [head(feats[:, k : k + window]) for k in range(n_clips - window + 1)]
    out_w = L.Identity(name="windows")(keras.ops.stack(wins, axis=1))
    aux = L.TimeDistributed(L.Dense(n_labels, activation="softmax"), name="clips")(feats)
    return keras.Model(inp, {"windows": out_w, "clips": aux}, name="trainer")


def _plot_report(out: Path, history: list[dict], cm: np.ndarray, labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
        st = [h["step"] for h in history]
        ax[0].plot(st, [h["loss"] for h in history], label="train")
        ax[0].plot(st, [h["val_loss"] for h in history], label="val")
        ax[0].set_title("window loss")
        ax[0].set_xlabel("step")
        ax[0].legend()
        ax[1].plot(st, [h["acc"] for h in history], label="train")
        ax[1].plot(st, [h["val_acc"] for h in history], label="val")
        ax[1].set_title("window accuracy (weighted)")
        ax[1].set_xlabel("step")
        ax[1].set_ylim(0, 1)
        ax[1].legend()
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=9)
    ax.set_title("clip confusion (validation)")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)


def _he_init(model, seed: int) -> None:
    """He-normal kernels for a backbone trained from scratch (ReLU all the way; Glorot shrinks
    activations ~3x per layer through 8 conv layers, which stalls early training)."""
    import keras

    for i, layer in enumerate(model.layers):
        k = getattr(layer, "kernel", None)
        if k is not None:
            init = keras.initializers.HeNormal(seed=seed + i)
            k.assign(init(tuple(k.shape), dtype=k.dtype))


def _weighted_acc(probs: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    hit = (probs.argmax(-1) == y).astype(np.float32) * w
    return float(hit.sum() / max(w.sum(), 1e-9))


def train_command(args, cfg: Config) -> int:
    out = Path(args.out)
    if args.weights:
        return train_frozen(args, cfg, out)
    return train_small(args, cfg, out)


def train_small(args, cfg: Config, out: Path) -> int:
    import keras
    from tqdm import tqdm

    from .evaluate import clip_predictions, confusion
    from .modelio import LoadedModel, ModelSpec, build_models, write_model

    t_start = time.monotonic()
    budget_s = (args.minutes or 25.0) * 60
    keras.utils.set_random_seed(args.seed)
    clips, skipped = load_dataset(args.meta, cfg, args.strict)
    items = [c.item for c in clips]
    tr_idx, va_idx = stratified_split(items, args.val_split, args.seed)
    train_clips = [clips[i] for i in tr_idx]
    val_clips = [clips[i] for i in va_idx]
    print(f"{len(train_clips)} training clips, {len(val_clips)} validation clips (split by video, stratified)",
          file=sys.stderr)
    width = args.width or 0.125
    spec = ModelSpec.from_config(cfg, width=width, head_kind=args.head)
    spec.backbone["input_scale"] = 1 / 64  # from scratch: keep first activations O(1)
    spec.backbone["motion"] = True         # frame differences as extra input channels (c3d.TemporalDifference)
    spec.backbone["norm"] = True           # BatchNorm after each conv: from scratch it trains far faster
    spec.backbone["downsample"] = 4        # 28x28 inside the backbone: 16x the training steps in the budget
    backbone, head = build_models(spec)
    _he_init(backbone, args.seed)
    n_clips = 10  # 10 clips -> 3 overlapping head windows per sequence: backbone cost shared
    p = cfg.pipeline
    n_labels = len(cfg.labels)
    trainer = build_trainer(backbone, head, n_clips, p.window, n_labels, p.clip_len, p.size)
    base_lr = 5e-4
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=base_lr, clipnorm=1.0),
        loss={"windows": "sparse_categorical_crossentropy", "clips": "sparse_categorical_crossentropy"},
        loss_weights={"windows": 1.0, "clips": 0.1},
    )
    ckpt_dir = out / ".checkpoint"
    state_path = ckpt_dir / "state.json"
    state = {"step": 0, "best_val": float("inf"), "history": [], "bad_evals": 0}
    if state_path.exists():
        state = json.loads(state_path.read_text())
        trainer.load_weights(str(ckpt_dir / "last.weights.h5"))
        print(f"resuming from {ckpt_dir} at step {state['step']}", file=sys.stderr)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed + state["step"])
    black = getattr(args, "context", "held") == "black"
    background = not getattr(args, "no_background", False)
    sampler = SequenceSampler(train_clips, cfg, n_clips, rng, black=black, background=background)
    vsampler = SequenceSampler(val_clips or train_clips, cfg, n_clips, np.random.default_rng(12345), augment_p=0.0)
    val_batches = [vsampler.batch(4) for _ in range(max(2, min(8, len(val_clips) // 4)))]
    batch = 5
    eval_every = 30
    max_steps = args.epochs * eval_every if args.epochs else 10**9
    patience = 6

    def evaluate_val():
        losses, accs, pos = [], [], []
        for x, yw, ww, yc in val_batches:
            pr = trainer.predict_on_batch(x)
            pw = np.clip(pr["windows"], 1e-7, 1)
            ce = -np.log(np.take_along_axis(pw, yw[..., None], -1)[..., 0])
            losses.append(float((ce * ww).sum() / max(ww.sum(), 1e-9)))
            accs.append(_weighted_acc(pw, yw, ww))
            m = (yw != sampler.bg) & (ww > 0)
            pos += list(pw.argmax(-1)[m] == yw[m])
        state["val_pos_recall"] = float(np.mean(pos)) if pos else None
        return float(np.mean(losses)), float(np.mean(accs))

    def save_ckpt(best: bool):
        trainer.save_weights(str(ckpt_dir / "last.weights.h5.tmp.weights.h5"))
        os.replace(ckpt_dir / "last.weights.h5.tmp.weights.h5", ckpt_dir / "last.weights.h5")
        if best:
            backbone.save_weights(str(ckpt_dir / "best_backbone.weights.h5"))
            head.save_weights(str(ckpt_dir / "best_head.weights.h5"))
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_path)

    run_loss, run_acc = [], []
    bar = tqdm(desc="training", unit="step", initial=state["step"], disable=None)
    stop_reason = "max steps"
    try:
        while state["step"] < max_steps:
            if time.monotonic() - t_start > budget_s:
                stop_reason = f"time budget ({budget_s / 60:.0f} min)"
                break
            # cosine learning-rate decay over the run's budget (steps or wall time, whichever is known)
            frac = state["step"] / max_steps if args.epochs else (time.monotonic() - t_start) / budget_s
            trainer.optimizer.learning_rate.assign(base_lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))))
            x, yw, ww, yc = sampler.batch(batch)
            res = trainer.train_on_batch(x, {"windows": yw, "clips": yc},
                                         sample_weight={"windows": ww, "clips": sampler.clip_weights(yc)},
                                         return_dict=True)
            run_loss.append(float(res.get("windows_loss", res["loss"])))
            state["step"] += 1
            bar.update(1)
            if state["step"] % eval_every == 0:
                pr = trainer.predict_on_batch(x)["windows"]
                run_acc.append(_weighted_acc(pr, yw, ww))
                vl, va = evaluate_val()
                state["history"].append({"step": state["step"], "loss": float(np.mean(run_loss[-eval_every:])),
                                         "acc": float(np.mean(run_acc[-3:])), "val_loss": vl, "val_acc": va,
                                         "minutes": (time.monotonic() - t_start) / 60})
                improved = vl < state["best_val"]
                if improved:
                    state["best_val"], state["bad_evals"] = vl, 0
                else:
                    state["bad_evals"] += 1
                save_ckpt(improved)
                bar.set_postfix(loss=f"{run_loss[-1]:.3f}", val_loss=f"{vl:.3f}", val_acc=f"{va:.3f}")
                if bar.disable:  # no terminal: still say how it goes
                    h = state["history"][-1]
                    print(f"step {h['step']}: loss {h['loss']:.3f} val_loss {vl:.3f} val_acc {va:.3f} "
                          f"val_gesture_recall {state['val_pos_recall']} "
                          f"({h['minutes']:.1f} min)", file=sys.stderr, flush=True)
                if state["bad_evals"] >= patience:
                    stop_reason = "early stopping"
                    break
    except KeyboardInterrupt:
        bar.close()
        save_ckpt(False)
        print(f"\ninterrupted: checkpoint kept in {ckpt_dir}; run the same command to resume", file=sys.stderr)
        raise
    bar.close()
    save_ckpt(False)  # the last state, so the same command can continue training later
    if (ckpt_dir / "best_backbone.weights.h5").exists():
        backbone.load_weights(str(ckpt_dir / "best_backbone.weights.h5"))
        head.load_weights(str(ckpt_dir / "best_head.weights.h5"))
    spec.trained = {
        "summary": f"small C3D width {width} trained from scratch on {len(train_clips)} clips",
        "context": "black" if black else "held", "background_class": background, "head": args.head,
        "steps": state["step"], "stop": stop_reason, "seed": args.seed,
        "metas": [str(m) for m in args.meta], "minutes": round((time.monotonic() - t_start) / 60, 1),
    }
    model = LoadedModel(spec, backbone, head)
    eval_clips = val_clips or train_clips
    y_true, y_pred, _ = clip_predictions(model, cfg, [c.crops for c in eval_clips], [c.label for c in eval_clips])
    cm = confusion(y_true, y_pred, n_labels)
    metrics = {
        "clip_accuracy_val": float(np.mean(np.array(y_true) == np.array(y_pred))),
        "n_train": len(train_clips), "n_val": len(val_clips), "skipped": skipped,
        "best_val_window_loss": state["best_val"], "steps": state["step"], "stop": stop_reason,
        "minutes": spec.trained["minutes"], "labels": list(cfg.labels), "confusion": cm.tolist(),
        "history": state["history"],
    }
    write_model(out, spec, backbone, head)
    (out / "report").mkdir(exist_ok=True)
    (out / "report" / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _plot_report(out / "report", state["history"], cm, list(cfg.labels))
    print(f"wrote {out}: validation clip accuracy {metrics['clip_accuracy_val']:.3f} "
          f"({len(val_clips)} clips), {state['step']} steps, {spec.trained['minutes']} min, stopped by {stop_reason}")
    return 0


def train_frozen(args, cfg: Config, out: Path) -> int:
    from .frozen import train_frozen_head

    return train_frozen_head(args, cfg, out)
