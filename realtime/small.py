"""``gesture train --backbone small``: the width-scaled C3D trained from scratch, in two stages.

Training the backbone and the BiLSTM head end to end on 8-clip windows did not learn on two CPU
cores (``docs/ablation.md``, runs A-F: every model stayed at the class prior). The windows
objective gives the backbone one weak signal per 128 frames; most of each sample is context. So:

1. **Backbone on clips.** The C3D with a temporary classifier learns single 16-frame clips: a
   piece from inside a gesture (labelled with the gesture), a piece of ``no_gesture`` footage or
   a hand held still (``no_gesture``), augmented and mirrored (mirroring swaps left and right);
   with ``--stream``, also pieces of annotated streams, where the hand moving into a gesture's
   start pose or back after it is ``no_gesture`` (:class:`StreamPieces`).
   The crops are downsampled once, up front, to the backbone's working size (28x28 at the
   default ``--downsample 4``), so a step costs a fraction of the full-size pipeline.
2. **Head on windows.** With the backbone frozen, every clip is placed in context (held frames,
   ``no_gesture`` footage before it; a few augmented variants) and its features at every 8-frame
   position are computed; windows of 8 features 16 frames apart are labelled by where the gesture
   ends (:mod:`realtime.windows`) and the head is trained on them, class-balanced, together with
   the windows of the annotated streams.

The saved backbone takes the live engine's 112x112 crops and pools them itself: the layers after
its pooling are the ones trained here (:func:`realtime.c3d.build_c3d`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from .config import NO_GESTURE, Config
from .dataset import stratified_split
from .windows import FLIP_SWAP, augment, balance, held, loop_to, resample, window_label

DOWNSAMPLE = 4
PRE, POST, STEP = 127, 40, 8   # context frames before / after a clip; feature grid step (frames)
BATCH = 32
STAGE1_FRACTION = 0.65         # of the time budget; the rest is features + head
STREAM_SHARE = 0.35            # of stage-1 clips cut from annotated streams, when there are any
STREAM_VARIANTS = 3            # stage 2: passes over each stream (the first as recorded, then mirrored/jittered)
FINETUNE_LR = 0.3             # --init: stage 1 starts at this share of the from-scratch learning rate
STREAM_WEIGHT = 3.0            # stage 2: a stream window counts this many clip-in-context windows: only streams
                               # show the moves between gestures (lead-ins, return strokes) the head must ignore


def downsample_crops(crops: np.ndarray, factor: int) -> np.ndarray:
    """``(T, S, S, 3) uint8`` -> ``(T, S/f, S/f, 3) uint8``, the f x f block means (INTER_AREA)."""
    if factor == 1:
        return crops
    s = crops.shape[1] // factor
    return np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in crops])


def _swap(label: int, labels: list[str]) -> int:
    name = labels[label]
    return labels.index(FLIP_SWAP[name]) if name in FLIP_SWAP else label


class ClipSampler:
    """Stage 1 samples: one 16-frame clip and its label.

    With annotated streams, ``STREAM_SHARE`` of them are stream pieces (:class:`StreamPieces`: 40%
    at a gesture's end, 60% between gestures). The rest come from the clips: 60% a piece of a
    gesture (from its middle 70%, so it holds the motion), 28% a piece of ``no_gesture`` footage,
    12% a hand held still (a gesture's first or last pose: a pose is not a gesture). Speed
    x0.8-1.25, mirroring (left and right swap), photometric and geometric jitter, and with
    probability ``colour`` a new colouring (:func:`realtime.windows.recolour`).
    """

    def __init__(self, clips, labels, rng, clip_len=16, aug=True, background=True, streams=None, colour=0.0):
        self.labels, self.rng, self.L, self.aug, self.colour = list(labels), rng, clip_len, aug, colour
        self.streams = streams if streams and background else None
        self.bg = self.labels.index(NO_GESTURE)
        self.pos = [c for c in clips if c[1] != self.bg]
        self.neg = [c for c in clips if c[1] == self.bg] if background else []
        self.all = [c for c in clips if background or c[1] != self.bg]
        self.background = background and bool(self.neg)

    def sample(self, rng=None):
        rng, L = (self.rng if rng is None else rng), self.L
        r = rng.random() if self.background else 0.0
        flip = rng.random() < 0.5
        px = 0.6 * self.all[0][0].shape[2] / 112  # tremor in this resolution's pixels
        if self.streams and rng.random() < STREAM_SHARE:
            x, y = self.streams.sample(rng, rng.random() < 0.4)
            y = _swap(y, self.labels) if flip else y
        elif r < 0.6 and self.pos:
            x, y = self.pos[int(rng.integers(len(self.pos)))]
            if self.aug:
                x = resample(x, rng.uniform(0.8, 1.25))
            if len(x) < L:
                x = np.concatenate([x, held(x[-1], L - len(x), rng, px)])
            lo, hi = int(0.15 * (len(x) - L)), int(0.85 * (len(x) - L))
            s = int(rng.integers(lo, hi + 1))
            x = x[s : s + L]
            y = _swap(y, self.labels) if flip else y
        elif r < 0.88:
            x, y = self.neg[int(rng.integers(len(self.neg)))]
            x = loop_to(x, max(L, len(x)))
            s = int(rng.integers(0, len(x) - L + 1))
            x = x[s : s + L]
        else:
            c = self.all[int(rng.integers(len(self.all)))][0]
            x, y = held(c[0] if rng.random() < 0.5 else c[-1], L, rng, px), self.bg
        if flip:
            x = x[:, :, ::-1]
        x = np.ascontiguousarray(x)
        if self.aug:
            x = augment(x, rng, colour=self.colour)
        return x, y

    def raw_batch(self, n: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples as ``(uint8 (n, L, s, s, 3), labels (n,))``, before :func:`to_model_input`."""
        xs, ys = zip(*(self.sample(rng) for _ in range(n)))
        return np.stack(xs), np.array(ys, np.int32)

    def batch(self, n: int, pre, rng=None) -> tuple[np.ndarray, np.ndarray]:
        from .preprocess import to_model_input

        x, y = self.raw_batch(n, rng)
        return to_model_input(x, pre), y


_FORKED: dict = {}  # the sampler, as the forked batch processes inherit it


def _forked_batch(n: int, seed: int, k: int):
    return _FORKED["sampler"].raw_batch(n, np.random.default_rng([seed, k]))


class Prefetch:
    """Stage-1 batches made ahead on ``workers`` threads (OpenCV's warps and LUTs release the GIL),
    or, with ``processes=True``, on forked processes (a many-core machine feeding a GPU: Python
    threads share one interpreter lock, and at ~1 ms of Python per clip a GPU step outruns them).

    Batch ``k`` is drawn with its own generator, seeded by ``(seed, k)``: the batches are the same
    whatever the number of threads or processes, and a resumed run continues with the batches it
    would have drawn. The queue holds at most ``2 * workers`` batches (bounded; nothing is dropped).
    Processes are forked when the pool is made, before :meth:`start`: make it before the deep
    learning backend starts its own threads (a fork copies only the calling thread).
    """

    def __init__(self, sampler: ClipSampler, n: int, pre, seed: int, start: int | None = 0, workers: int = 1,
                 processes: bool = False):
        self.sampler, self.n, self.pre, self.seed = sampler, n, pre, seed
        self.workers, self.processes, self.queue = max(1, workers), processes, []
        if processes:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            _FORKED["sampler"] = sampler
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # a forked child has none of OpenCV's pool threads: it must not wait on them
            try:
                self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"))
                list(self.pool.map(abs, range(self.workers)))  # fork every worker now
            finally:
                cv2.setNumThreads(threads)
        else:
            self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="stage1-batches")
        if start is not None:
            self.start(start)

    def start(self, k: int) -> "Prefetch":
        """Begin drawing at batch ``k`` (0, or the step a resumed run stopped at)."""
        self.next = k
        self.queue = [self._submit() for _ in range(2 * self.workers)]
        return self

    def _submit(self):
        k, self.next = self.next, self.next + 1
        if self.processes:
            return self.pool.submit(_forked_batch, self.n, self.seed, k)
        return self.pool.submit(self.sampler.batch, self.n, self.pre, np.random.default_rng([self.seed, k]))

    def get(self):
        fut = self.queue.pop(0)
        self.queue.append(self._submit())
        x, y = fut.result()  # an error in a worker surfaces here, in the training loop
        if self.processes:
            from .preprocess import to_model_input

            x = to_model_input(x, self.pre)
        return x, y

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # batches not yet begun are dropped
        _FORKED.clear()


def in_context(crops, label, labels, rng, negs, variant: int, black: bool = False, colour: float = 0.0):
    """One clip placed in context: ``(frames, [(gesture_end_frame, label)], reference_frame)``.

    Variant 0 is deterministic (first frame held before, last frame held after, as
    :func:`realtime.evaluate.clip_windows` scores clips); later variants are augmented: speed,
    mirroring, tremor, sometimes ``no_gesture`` footage before the gesture, image jitter.
    """
    bg = labels.index(NO_GESTURE)
    px = 0.6 * crops.shape[2] / 112
    x, lab, flip = crops, label, False
    if variant:
        x = resample(x, rng.uniform(0.8, 1.25))
        flip = rng.random() < 0.5
        lab = _swap(lab, labels) if flip else lab
    tremor = px if variant else 0.0
    if black:  # the seed's padding, for the ablation only
        z = np.zeros_like(x[:1])
        seq = np.concatenate([np.repeat(z, PRE, 0), x, np.repeat(z, POST, 0)])
    elif lab == bg and variant:
        seq = loop_to(x, PRE + 48 + POST)
    else:
        pre = held(x[0], PRE, rng, tremor)
        if variant and negs and lab != bg and rng.random() < 0.3:
            k = int(rng.integers(0, 40))
            pre = np.concatenate([loop_to(negs[int(rng.integers(len(negs)))], PRE - k), held(x[0], k, rng, tremor)])
        seq = np.concatenate([pre, x, held(x[-1], POST, rng, tremor)])
    ref = PRE + len(x) - 1
    events = [] if lab == bg else [(ref, lab)]
    if flip:
        seq = seq[:, :, ::-1]
    seq = np.ascontiguousarray(seq)
    if variant:
        seq = augment(seq, rng, colour=colour)
    return seq, events, ref


def label_window(end: int, events, bg: int, delay: int = 0) -> tuple[int, float]:
    """(class, weight) of the window ending at frame ``end`` given the gestures ``events``."""
    out = (bg, 1.0)
    for g, lab in events:
        y, w = window_label(end - g, lab, bg, delay)
        if y != bg:
            return y, w
        if w == 0.0:
            out = (bg, 0.0)
    return out


def grid_windows(seq, events, ref, predict, cfg: Config, bg: int, batch: int = 64, delay: int = 0):
    """Features every ``STEP`` frames (one grid point on ``ref``), cut into labelled head windows.

    Returns ``X (n, window, D)``, ``y (n,)``, ``w (n,)`` and the window end frames ``(n,)``.
    """
    from .preprocess import to_model_input

    p = cfg.pipeline
    L = p.clip_len
    first = L - 1 + ((ref - (L - 1)) % STEP)
    ends = list(range(first, len(seq), STEP))
    feats = np.concatenate([predict(to_model_input(np.stack([seq[e - L + 1 : e + 1] for e in ends[i : i + batch]]),
                                                   cfg.preprocess)) for i in range(0, len(ends), batch)])
    return cut_windows(ends, feats, events, cfg, bg, delay)


def cut_windows(ends, feats, events, cfg: Config, bg: int, delay: int = 0):
    """Every complete head window of a feature grid, labelled by :func:`label_window`:
    ``X (n, window, D)``, ``y (n,)``, ``w (n,)`` and the window end frames ``(n,)``."""
    p = cfg.pipeline
    at = {int(e): i for i, e in enumerate(ends)}
    X, y, w, E = [], [], [], []
    for e in map(int, ends):
        win = [e - p.feature_spacing * j for j in range(p.window - 1, -1, -1)]
        if not all(v in at for v in win):
            continue
        X.append(feats[[at[v] for v in win]])
        lab, wt = label_window(e, events, bg, delay)
        y.append(lab), w.append(wt), E.append(e)
    return X, y, w, E


def stream_files(path) -> tuple[Path, Path]:
    """``(S.mp4, S.csv)`` of a ``--stream``, or a one-line error naming the one that is missing."""
    from .errors import GestureError

    path = Path(path)
    ann = path.with_suffix(".csv")
    if not path.is_file():
        raise GestureError(f"{path}: --stream video not found")
    if not ann.is_file():
        raise GestureError(f"{ann}: annotations for --stream {path.name} not found (label,start_frame,end_frame)")
    return path, ann


def load_stream(path, cfg: Config, factor: int = DOWNSAMPLE):
    """An annotated stream for training: ``(frames (T, s, s, 3) uint8 downsampled crops, [(start, end, label)])``.

    Annotations are ``S.csv`` beside ``S.mp4`` (``label,start_frame,end_frame``, as ``gesture synth
    stream`` writes them). Frames are cropped and downsampled one at a time, so a long stream fits.
    """
    from tqdm import tqdm

    from .errors import GestureError
    from .evaluate import read_annotations
    from .framerate import TOLERANCE, FrameRateAdapter, video_fps
    from .preprocess import crop_frame

    path, ann = stream_files(path)
    labels = list(cfg.labels)
    spans = [(s, e, labels.index(lab)) for lab, s, e in read_annotations(ann, labels)]  # gestures only
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise GestureError(f"{path}: cannot open as a video (unsupported or corrupt file)")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    src_fps = video_fps(cap)
    s = cfg.pipeline.size // factor
    ad = None  # a stream at another frame rate is brought to the model's, as live, annotations with it
    if cfg.capture.resample != "off" and abs(src_fps / cfg.pipeline.fps - 1) > TOLERANCE:
        ad = FrameRateAdapter(cfg.pipeline.fps, cfg.capture.resample)
        r = cfg.pipeline.fps / src_fps
        spans = [(int(round(a * r)), int(round(b * r)), lab) for a, b, lab in spans]
    frames = []
    try:
        for i in tqdm(range(n) if n else iter(int, 1), desc=f"reading {path.name}", unit="frame", disable=None):
            ok, f = cap.read()
            if not ok or f is None:
                break
            c = crop_frame(f, cfg.preprocess, cfg.pipeline.size, source=str(path))
            for m in (ad.push(c, i / src_fps) if ad is not None else [c]):
                frames.append(cv2.resize(m, (s, s), interpolation=cv2.INTER_AREA) if factor > 1 else m)
    finally:
        cap.release()
    if len(frames) < cfg.pipeline.span:
        raise GestureError(f"{path}: {len(frames)} frames, shorter than one head window ({cfg.pipeline.span})")
    return np.stack(frames), spans


class StreamPieces:
    """Stage-1 clips cut from annotated streams: the part ``part`` of each (the first 80% trains,
    the rest validates, as in stage 2).

    A piece ending within the last ``END_SLACK`` frames of a gesture (or 2 after), with at least 14
    of its 16 frames inside it, is that gesture: the end of an annotated span is where the motion
    is, while its start may be a hand still waiting. A piece at least ``margin`` frames away from
    every gesture is ``no_gesture``; half of those are drawn from the 1.5 s before and after a
    gesture. That is what clips alone never show the backbone: the lead-in to a gesture's start
    pose and the return stroke after a swipe, which, 16 frames at a time, look like the opposite
    swipe.
    """

    END_SLACK = 8
    CLOSE = 45  # frames before / after a gesture whose pieces count as its lead-in or return

    def __init__(self, streams, bg: int, clip_len: int = 16, part=(0.0, 0.8), margin: int = 4):
        self.bg, self.L, self.items = bg, clip_len, []
        L = clip_len
        for frames, spans in streams:
            a, b = int(part[0] * len(frames)), int(part[1] * len(frames))
            frames, n = frames[a:b], b - a
            spans = [(s - a, e - a, lab) for s, e, lab in spans]
            near, zone = np.zeros(n, bool), np.zeros(n, bool)
            for s, e, _ in spans:
                near[max(0, s - margin) : max(0, min(n, e + 1 + margin))] = True
                zone[max(0, s - self.CLOSE) : max(0, min(n, e + 1 + self.CLOSE))] = True
            neg = np.flatnonzero(_window_sum(near, L) == 0)
            close = neg[_window_sum(zone, L)[neg] > 0]
            pos = [(s, e, lab) for s, e, lab in spans if 0 <= s and e < n and e - s + 1 >= L - 2]
            if len(neg) or pos:
                self.items.append((frames, neg, close, pos))

    def __bool__(self) -> bool:
        return bool(self.items)

    def sample(self, rng, positive: bool):
        frames, neg, close, pos = self.items[int(rng.integers(len(self.items)))]
        L = self.L
        if (positive and pos) or not len(neg):
            s, e, lab = pos[int(rng.integers(len(pos)))]
            lo = max(0, s - 2, e - L + 1 - self.END_SLACK)
            t0 = int(rng.integers(lo, min(e - L + 3, len(frames) - L) + 1))
            return frames[t0 : t0 + L], lab
        pool = close if len(close) and rng.random() < 0.5 else neg
        t0 = int(pool[int(rng.integers(len(pool)))])
        return frames[t0 : t0 + L], self.bg


def _window_sum(mask: np.ndarray, L: int) -> np.ndarray:
    """``out[t] = mask[t : t + L].sum()`` for every full window."""
    cs = np.concatenate([[0], np.cumsum(mask)])
    return cs[L:] - cs[:-L]


def stream_windows(frames, events, labels, rng, variant: int, predict, cfg: Config, bg: int, colour: float = 0.0,
                   delay: int = 0):
    """Head windows of a whole annotated stream; variant > 0 mirrors (swapping left/right) and jitters it."""
    ev = events
    if variant:
        flip = rng.random() < 0.5
        if flip:
            frames = frames[:, :, ::-1]
            ev = [(e, _swap(lab, labels)) for e, lab in events]
        frames = np.concatenate([augment(np.ascontiguousarray(frames[i : i + 600]), rng, colour=colour)
                                 for i in range(0, len(frames), 600)])
    offset = int(rng.integers(0, STEP)) if variant else 0
    return grid_windows(frames, ev, cfg.pipeline.clip_len - 1 + offset, predict, cfg, bg, delay=delay)


def _he_init(model, seed: int) -> None:
    """He-normal kernels (ReLU throughout; Glorot shrinks activations layer by layer from scratch)."""
    import keras

    for i, layer in enumerate(model.layers):
        k = getattr(layer, "kernel", None)
        if k is not None:
            k.assign(keras.initializers.HeNormal(seed=seed + i)(tuple(k.shape), dtype=k.dtype))


def train_small(args, cfg: Config, out: Path) -> int:
    import keras
    from tqdm import tqdm

    from .c3d import build_c3d
    from .errors import GestureError
    from .evaluate import clip_predictions, confusion
    from .head import build_head, window_batches
    from .modelio import LoadedModel, ModelSpec, predict_fn, write_model
    from .preprocess import config_for_model
    from .train import load_dataset, plot_report

    t_start = time.monotonic()
    budget_s = (args.minutes or 25.0) * 60
    labels = list(cfg.labels)
    n_labels, bg = len(labels), labels.index(NO_GESTURE)
    black = getattr(args, "context", "held") == "black"
    ds = getattr(args, "downsample", None) or DOWNSAMPLE
    batch = getattr(args, "batch", None) or BATCH
    if cfg.pipeline.size % ds:
        raise GestureError(f"--downsample {ds}: pipeline.size {cfg.pipeline.size} is not a multiple of it")
    cores = os.cpu_count() or 1
    procs = getattr(args, "sampler_procs", None)
    procs = (min(12, cores - 2) if cores >= 8 else 0) if procs is None else procs
    if procs < 0:
        raise GestureError(f"--sampler-procs {procs}: must be 0 (threads) or more")
    background = not getattr(args, "no_background", False)
    init = _init_spec(args, cfg) if getattr(args, "init", None) else None
    head_only = bool(getattr(args, "head_only", False))  # --init's backbone as it is: no stage 1
    if init is not None:
        ds = int(init.backbone.get("downsample", 1))
    width = init.width if init is not None else (args.width or 0.125)
    # clips cut as this model will cut frames live (preprocess.downscale: auto -> --init's, else area)
    cfg = config_for_model(cfg, width, init.preprocess if init else None)
    clips, skipped = load_dataset(args.meta, cfg, args.strict)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # OpenCV decodes without the GIL
        streams = list(pool.map(lambda sp: load_stream(sp, cfg, ds), getattr(args, "stream", None) or []))
    tr, va = stratified_split([c.item for c in clips], args.val_split, args.seed)
    print(f"{len(tr)} training clips, {len(va)} validation clips (split by video, stratified)", file=sys.stderr)
    p = cfg.pipeline
    size = p.size // ds
    small = [(downsample_crops(c.crops, ds), c.label) for c in clips]

    # stage-1 samplers first: on a many-core machine their processes fork before the backend starts
    colour = getattr(args, "colour_jitter", 0.0)
    delay = getattr(args, "label_delay", 0) or 0  # frames: the head answers this much after a gesture ends
    train_set = [small[i] for i in tr]
    val_set = [small[i] for i in va] or train_set
    pieces = StreamPieces(streams, bg, p.clip_len)
    sampler = ClipSampler(train_set, labels, np.random.default_rng(args.seed), p.clip_len, background=background,
                          streams=pieces, colour=colour)
    vs = ClipSampler(val_set, labels, np.random.default_rng(12345), p.clip_len, aug=False, background=background)
    if not head_only:
        val_batches = [vs.batch(BATCH, cfg.preprocess) for _ in range(max(2, min(8, len(val_set) // 8)))]
        stream_val = _piece_batches(StreamPieces(streams, bg, p.clip_len, part=(0.8, 1.0)), cfg, 6)
        batches = Prefetch(sampler, batch, cfg.preprocess, args.seed, None, procs or min(4, cores),
                           processes=procs > 0)
    keras.utils.set_random_seed(args.seed)
    spec = ModelSpec.from_config(cfg, width=width, head_kind=getattr(args, "head", None) or "small")
    if init is not None:
        spec.head = dict(init.head)
    spec.backbone.update(input_scale=1 / 64, motion=True, norm=True, downsample=ds)
    body = build_c3d(width, p.clip_len, size, with_fc8=False, input_scale=1 / 64, motion=True, norm=True,
                     downsample=1, name="c3d")
    _he_init(body, args.seed)
    L = keras.layers
    inp = keras.Input((p.clip_len, size, size, 3))
    clf = keras.Model(inp, L.Dense(n_labels, activation="softmax", name="clip_probs")(
        L.Dropout(0.3)(body(inp))), name="clip_classifier")
    base_lr = 1e-3 * float(np.sqrt(batch / BATCH))  # Adam's step grows about as the square root of the batch
    if init is not None:
        base_lr *= FINETUNE_LR
    clf.compile(keras.optimizers.Adam(base_lr, clipnorm=1.0), "sparse_categorical_crossentropy")

    ckpt = out / ".checkpoint"
    state_path = ckpt / "state.json"
    state = {"step": 0, "seconds": 0.0, "stage1_done": False, "history": []}
    src = None  # --init's model: its backbone starts stage 1 (unless resuming), its head starts stage 2
    if init is not None:
        from .modelio import load_model

        src = load_model(args.init, cfg)
    if head_only:
        _copy_trained_layers(src.backbone, body)
        state["stage1_done"] = True
        print(f"starting from {args.init}: its backbone unchanged (--head-only), its head retrained", file=sys.stderr)
    elif state_path.exists():
        state = json.loads(state_path.read_text())
        clf.optimizer.build(clf.trainable_variables)  # so the saved Adam moments load too
        clf.load_weights(str(ckpt / "stage1.weights.h5"))
        print(f"resuming from {ckpt} at stage-1 step {state['step']}"
              f"{' (stage 1 done)' if state['stage1_done'] else ''}", file=sys.stderr)
    elif src is not None:
        acc, n = _start_from(src, body, clf, sampler, cfg, args.seed)
        print(f"starting from {args.init}: its backbone, and a clip classifier fitted on its features "
              f"(accuracy {acc:.3f} on {n} training clips)", file=sys.stderr)
    if not head_only:  # -- stage 1: the backbone on single clips (--head-only keeps --init's) ------
        ckpt.mkdir(parents=True, exist_ok=True)

        def save_state():
            clf.save_weights(str(ckpt / "stage1.tmp.weights.h5"))
            os.replace(ckpt / "stage1.tmp.weights.h5", ckpt / "stage1.weights.h5")
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, state_path)

        stage1_s = budget_s * STAGE1_FRACTION
        max_steps = int(np.ceil(args.epochs * len(train_set) / batch)) if args.epochs else 10**9
        eval_every = 50 * max(1, batch // BATCH)  # history points (validation + checkpoint) stay a small share of the time
        bar = tqdm(desc="stage 1: backbone on clips", unit="step", initial=state["step"], disable=None)
        run_loss = []
        t1 = time.monotonic() - state["seconds"]
        batches.start(state["step"])
        try:
            while not state["stage1_done"]:
                elapsed = time.monotonic() - t1
                if elapsed > stage1_s or state["step"] >= max_steps:
                    state["stage1_done"] = True
                    break
                frac = state["step"] / max_steps if args.epochs else elapsed / stage1_s
                clf.optimizer.learning_rate.assign(base_lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))))
                x, y = batches.get()
                run_loss.append(float(clf.train_on_batch(x, y)))
                state["step"] += 1
                state["seconds"] = time.monotonic() - t1
                bar.update(1)
                if state["step"] % eval_every == 0:
                    state["history"].append(_stage1_point(clf, state, run_loss[-eval_every:], val_batches, stream_val))
                    va_acc = state["history"][-1]["val_acc"]
                    save_state()
                    bar.set_postfix(loss=f"{run_loss[-1]:.3f}", val_acc=f"{va_acc:.3f}")
                    if bar.disable:
                        h = state["history"][-1]
                        sv = f", stream pieces {h['val_stream_acc']:.3f}" if "val_stream_acc" in h else ""
                        print(f"stage 1 step {state['step']}: loss {h['loss']:.3f} "
                              f"val clip-piece accuracy {va_acc:.3f}{sv} ({state['seconds'] / 60:.1f} min)",
                              file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            bar.close()
            save_state()
            print(f"\ninterrupted: checkpoint kept in {ckpt}; run the same command to resume", file=sys.stderr)
            raise
        finally:
            batches.close()
        bar.close()
        save_state()
        if not state["history"] or state["history"][-1]["step"] != state["step"]:
            state["history"].append(_stage1_point(clf, state, run_loss[-eval_every:], val_batches, stream_val))
            save_state()

    # -- stage 2: features of clips in context, the head on windows ----------------------------------
    predict = predict_fn(body)
    negs = [x for x, lab in train_set if lab == bg]
    n_var = int(np.clip(2400 // max(len(tr), 1), 1, 3))  # context variants per clip: ~2400 grids at most
    rng2 = np.random.default_rng(args.seed + 1)

    def collect(idx, variants, desc):
        X, Y, W = [], [], []
        for i in tqdm(idx, desc=desc, unit="clip", disable=None):
            x, lab = small[i]
            if lab == bg and not background:
                continue
            for v in range(variants):
                seq, events, ref = in_context(x, lab, labels, rng2, negs, v, black=black, colour=colour)
                a, b, c, _ = grid_windows(seq, events, ref, predict, cfg, bg, delay=delay)
                X += a
                Y += b
                W += c
        y, w = np.array(Y, np.int32), np.array(W, np.float32)
        if not background:
            w[y == bg] = 0.0
        return np.stack(X), y, balance(y, w, n_labels)

    Xtr, ytr, wtr = collect(tr, n_var, "stage 2: features (train)")
    Xva, yva, wva = collect(va, 1, "stage 2: features (val)") if va else (Xtr, ytr, wtr)
    if streams:  # annotated streams: the live distribution itself; the last 20% of each validates
        SX, SY, SW, VX, VY, VW = [], [], [], [], [], []
        for frames, spans in tqdm(streams, desc="stage 2: features (streams)", unit="stream", disable=None):
            cut = int(0.8 * len(frames))
            events = [(e, lab) for _, e, lab in spans]
            for v in range(STREAM_VARIANTS):
                X, y, w, E = stream_windows(frames, events, labels, rng2, v, predict, cfg, bg,
                                            colour=colour, delay=delay)
                for x_, y_, w_, e_ in zip(X, y, w, E):
                    if e_ < cut:
                        SX.append(x_), SY.append(y_), SW.append(w_)
                    elif v == 0 and e_ - p.span >= cut:
                        VX.append(x_), VY.append(y_), VW.append(w_)
        print(f"streams: {len(SX)} training and {len(VX)} validation windows", file=sys.stderr)
        Xtr, ytr, wtr = _add_stream_windows(Xtr, ytr, wtr, SX, SY, SW, n_labels)
        if VX:
            Xva, yva, wva = _add_stream_windows(Xva, yva, wva, VX, VY, VW, n_labels)
    hk = dict(spec.head)
    kind = hk.pop("kind")
    head = build_head(Xtr.shape[-1], n_labels, p.window, kind=kind, **hk)
    if src is not None:
        head.set_weights(src.head.get_weights())  # the head starts where --init's left off
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                 weighted_metrics=["accuracy"])
    # the head gets what is left of the budget, at least 2 minutes
    head_s = max(120.0, budget_s - (time.monotonic() - t_start) - 60)
    cb = [keras.callbacks.EarlyStopping(patience=6, restore_best_weights=True), _time_limit(head_s)]
    epochs = args.epochs if head_only and args.epochs else 60  # --head-only: --epochs counts the head's passes
    hist = head.fit(window_batches(Xtr, ytr, wtr, 128, args.seed), validation_data=(Xva, yva, wva), epochs=epochs,
                    callbacks=cb, verbose=2).history
    head_history = [{"step": i + 1, "loss": hist["loss"][i], "val_loss": hist["val_loss"][i],
                     "acc": _acc(hist, "", i), "val_acc": _acc(hist, "val_", i)} for i in range(len(hist["loss"]))]

    # -- the live model: full-size input, pooled inside, the trained layers ---------------------------
    backbone = build_c3d(width, p.clip_len, p.size, with_fc8=False, input_scale=1 / 64, motion=True, norm=True,
                         downsample=ds, name="c3d")
    _copy_trained_layers(body, backbone)
    minutes = round((time.monotonic() - t_start) / 60, 1)
    origin = (f"the head retrained on the backbone of {args.init}" if head_only
              else f"fine-tuned from {args.init}" if init is not None else "trained from scratch")
    spec.trained = {
        "summary": f"small C3D width {width} {origin} on {len(tr)} clips "
                   f"({'stage 2 only' if head_only else 'two stages'})",
        "context": "black" if black else "held", "background_class": background, "head": kind,
        "stage1_steps": state["step"], "seed": args.seed, "metas": [str(m) for m in args.meta],
        "streams": [str(x) for x in (getattr(args, "stream", None) or [])], "minutes": minutes,
    }
    if colour:
        spec.trained["colour_jitter"] = colour
    if delay:
        spec.trained["label_delay"] = delay  # where the head answers: gesture eval --meta reads it there
    if init is not None:
        spec.trained["init"] = {"model": str(args.init), "trained": init.trained, "head_only": head_only}
    model = LoadedModel(spec, backbone, head)
    eval_idx = va or tr
    y_true, y_pred, _ = clip_predictions(model, cfg, [clips[i].crops for i in eval_idx],
                                         [clips[i].label for i in eval_idx])
    cm = confusion(y_true, y_pred, n_labels)
    metrics = {
        "clip_accuracy_val": float(np.mean(np.array(y_true) == np.array(y_pred))),
        "n_train": len(tr), "n_val": len(va), "skipped": skipped, "stage1_steps": state["step"],
        "stage1_val_clip_piece_accuracy": state["history"][-1]["val_acc"] if state["history"] else None,
        "head_val_window_accuracy": head_history[int(np.argmin([h["val_loss"] for h in head_history]))]["val_acc"],
        "n_train_windows": int(len(ytr)), "minutes": minutes, "labels": labels, "confusion": cm.tolist(),
        "history_stage1": state["history"], "history_head": head_history,
    }
    write_model(out, spec, backbone, head, card=_card(spec, metrics, args))
    (out / "report").mkdir(exist_ok=True)
    (out / "report" / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_report(out / "report", {"stage 1: backbone on 16-frame clips": state["history"],
                                 "stage 2: head on windows": head_history}, cm, labels)
    print(f"wrote {out}: validation clip accuracy {metrics['clip_accuracy_val']:.3f} ({len(eval_idx)} clips), "
          f"{state['step']} stage-1 steps, {minutes} min")
    return 0


def _init_spec(args, cfg: Config):
    """``--init DIR``: the model to fine-tune, refused before any work (one line naming the field)
    unless ``--backbone small`` could have made it and the flags given agree with it."""
    from .errors import GestureError
    from .modelio import check_against_config, read_spec

    d = Path(args.init)
    spec = read_spec(d)
    check_against_config(spec, cfg, where=str(d))
    bb = spec.backbone
    if (bb.get("kind", "c3d") != "c3d" or not bb.get("motion") or not bb.get("norm")
            or abs(float(bb.get("input_scale", 1.0)) - 1 / 64) > 1e-9):
        raise GestureError(f"--init {d}: not a model made by `gesture train --backbone small` "
                           f"(backbone kind {bb.get('kind', 'c3d')!r}, motion {bb.get('motion', False)}, "
                           f"norm {bb.get('norm', False)})")
    for flag, mine, theirs in (("--width", getattr(args, "width", None), spec.width),
                               ("--downsample", getattr(args, "downsample", None), bb.get("downsample", 1)),
                               ("--head", getattr(args, "head", None), spec.head.get("kind", "small"))):
        if mine is not None and mine != theirs:
            raise GestureError(f"{flag} {mine}: --init {d} has {flag[2:]} {theirs}; leave {flag} out to take its own")
    return spec


def _copy_trained_layers(src, dst) -> None:
    """The weights of every layer of ``src`` that has any, into ``dst``'s layer of the same name: the
    backbone trained at the working size and the live one that pools the 112x112 crop first share them."""
    for layer in src.layers:
        if layer.weights:
            dst.get_layer(layer.name).set_weights(layer.get_weights())


def _start_from(src, body, clf, sampler: ClipSampler, cfg: Config, seed: int, n_batches: int = 32):
    """Put ``src``'s trained backbone layers into ``body`` and fit the temporary clip classifier on
    its features, so the first fine-tuning steps do not push a random classifier's gradients into a
    trained backbone. Returns (the classifier's accuracy on those clips, their number)."""
    import keras

    _copy_trained_layers(src.backbone, body)
    rng = np.random.default_rng(seed + 7)  # its own generator: the stage-1 batches stay those of (seed, k)
    xs, ys = zip(*(sampler.batch(BATCH, cfg.preprocess, rng) for _ in range(n_batches)))
    feats = np.concatenate([np.asarray(body.predict_on_batch(x)) for x in xs])
    y = np.concatenate(ys)
    dense = clf.get_layer("clip_probs")
    probe = keras.Sequential([keras.Input(feats.shape[1:]), keras.layers.Dense(dense.units, activation="softmax")])
    probe.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    probe.fit(feats, y, epochs=60, batch_size=128, verbose=0)
    dense.set_weights(probe.layers[-1].get_weights())
    acc = float((np.asarray(probe.predict_on_batch(feats)).argmax(-1) == y).mean())
    return acc, len(y)


def _add_stream_windows(X, y, w, SX, SY, SW, n_labels: int):
    """Clip windows plus stream windows (each stream window weighing ``STREAM_WEIGHT``), class-balanced again.

    Empties ``SX``, so that the windows are held once (thirty 15-minute streams make about 4 GB of them):
    they are copied straight into the result, not stacked and then concatenated.
    """
    y = np.concatenate([y, np.array(SY, np.int32)])
    w = np.concatenate([np.ones_like(w) * (w > 0), STREAM_WEIGHT * np.array(SW, np.float32)])
    out = np.empty((len(X) + len(SX), *X.shape[1:]), X.dtype)
    out[: len(X)] = X
    for i, x in enumerate(SX, start=len(X)):
        out[i] = x
    SX.clear()
    return out, y, balance(y, w, n_labels)


def _card(spec, metrics: dict, args) -> str:
    """A first model card: how this folder was made and what it measured (edit it to add more)."""
    import shlex

    t = spec.trained
    side = spec.size // spec.backbone["downsample"]
    cmd = "gesture " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    origin = ("trained from scratch" if "init" not in t else
              f"taken unchanged from `{t['init']['model']}` (`--head-only`)" if t["init"].get("head_only")
              else f"fine-tuned from `{t['init']['model']}`")
    delay = t.get("label_delay", 0)
    delay_note = (f"\nThe head was taught to answer {delay} frames ({delay / spec.fps:.2f} s) after a gesture ends "
                  f"(`--label-delay {delay}`): every event comes that much later, and clip accuracy is read there."
                  if delay else "")
    data = "\n".join(f"- clips: `{m}`" for m in t["metas"]) + "".join(f"\n- stream: `{x}`" for x in t["streams"])
    return f"""# Model card: {Path(args.out).name}

Small C3D (width {spec.backbone['width']}, {side}x{side} inside, frame differences, BatchNorm) {origin},
then a {t['head']} BiLSTM head on windows of 8 of its features (`realtime/small.py`).

## How it was made

```bash
{cmd}
```

Seed {t['seed']}; {metrics['n_train']} training / {metrics['n_val']} validation clips (split by video); stage 1 ran
{t['stage1_steps']} steps{" (the backbone was not trained)" if not t['stage1_steps'] else ""}; {t['minutes']} minutes in all.{delay_note}

{data}

## Measured at training time

- validation clip accuracy: {metrics['clip_accuracy_val']:.3f} (`report/confusion.png`)
- stage 1 validation accuracy on single 16-frame pieces: {metrics['stage1_val_clip_piece_accuracy']}
- head validation window accuracy (class-balanced): {metrics['head_val_window_accuracy']:.3f}

Score it on data it never saw with `gesture eval --model DIR --meta CSV --json` and
`gesture eval --model DIR --stream S.mp4 --json`.

## Where it will not work

It knows only what its training data showed. A model trained on rendered hands has never seen a
real camera, a real hand or a real room: on a webcam, expect misses and false events until it is
retrained with the user's own examples (`gesture record`, the `1`-`4`/`0` keys in the window;
`gesture train --init` this folder with them added, README "Retraining on your own mistakes").
"""


def _time_limit(seconds: float):
    """A Keras callback that stops ``fit`` at the end of the first epoch past ``seconds``
    (EarlyStopping, listed before it, still restores the best weights)."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() - self.t0 > seconds:
                print(f"head: time budget ({seconds / 60:.1f} min) reached after epoch {epoch + 1}", file=sys.stderr)
                self.model.stop_training = True

    return TimeLimit()


def _acc(hist: dict, prefix: str, i: int) -> float:
    for k in (prefix + "accuracy", prefix + "weighted_accuracy"):
        if k in hist:
            return float(hist[k][i])
    return 0.0


def _piece_batches(pieces: StreamPieces, cfg: Config, n: int) -> list:
    """``n`` fixed batches of validation stream pieces (half inside gestures), no augmentation."""
    from .preprocess import to_model_input

    if not pieces:
        return []
    rng = np.random.default_rng(54321)
    out = []
    for _ in range(n):
        xs, ys = zip(*(pieces.sample(rng, i % 2 == 0) for i in range(BATCH)))
        out.append((to_model_input(np.stack(xs), cfg.preprocess), np.array(ys, np.int32)))
    return out


def _stage1_point(clf, state: dict, losses: list, val_batches, stream_val) -> dict:
    """One point of the stage-1 history: training loss, validation loss and accuracy on clip pieces
    (and on pieces of the streams' validation part, when there are streams)."""
    vl, va = _clip_val(clf, val_batches)
    point = {"step": state["step"], "loss": float(np.mean(losses or [vl])), "val_loss": vl, "val_acc": va,
             "minutes": state["seconds"] / 60}
    if stream_val:
        point["val_stream_loss"], point["val_stream_acc"] = _clip_val(clf, stream_val)
    return point


def _clip_val(clf, batches) -> tuple[float, float]:
    losses, accs = [], []
    for x, y in batches:
        pr = np.clip(np.asarray(clf.predict_on_batch(x)), 1e-7, 1)
        losses.append(float(-np.log(pr[np.arange(len(y)), y]).mean()))
        accs.append(float((pr.argmax(-1) == y).mean()))
    return float(np.mean(losses)), float(np.mean(accs))
