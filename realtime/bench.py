"""``gesture bench``: throughput, latency, CPU and memory of the real live pipeline, and offline C3D speed.

Live mode plays the synthetic stream (:class:`~realtime.sources.SyntheticSource`, paced at
``capture.fps`` = 30 fps, drop policy DROP_OLDEST like a camera) through the same
:class:`~realtime.pipeline.Pipeline` that ``gesture live`` runs: capture thread -> ring buffer ->
inference worker (C3D, head, debouncer). The models have random weights unless ``--model DIR`` is
given: the numbers are timings only, the decisions mean nothing.

What is measured, and how
-------------------------
* ``capture_fps``: frames read from the source / seconds of the run (after warm-up; the stop that
  follows, which may wait for a model call in flight, is not counted).
* ``clips_per_s``: clips whose C3D features were computed / seconds since the first clip was due;
  ``clips_needed_per_s`` = fps / stride is what keeping up requires (the model's fps when the
  source is resampled to it: ``model_fps``, ``realtime.framerate``).
* ``stages_ms``: per-stage time of one frame (preprocess, on the capture thread) or one clip
  (c3d: a batched call divided by its size; head; debounce), median and p95, from
  :class:`~realtime.engine.Stats` (its bounded history: the last 4096 of each).
* ``latency_*_ms``: decision latency, capture time of a clip's last frame -> the debouncer's
  verdict for the window ending there.
* ``dropped_frames``: frames the ring overwrote before the worker read them plus frames the worker
  skipped to catch up (:attr:`Pipeline.dropped_frames`; a skipped clip end counts ``stride`` frames).
* ``worker_time_pct``: where the inference worker's wall time went: waiting for frames, copying
  clips out of the ring, the compiled C3D call (mean subtraction included), the head, and the
  rest (Python: loop, window assembly, debouncer).
* ``cpu_percent``: process CPU time / wall time over the run, in percent of one core
  (200 = both cores of a 2-core machine).
* RSS: sampled every 0.5 s from before the model is built; ``peak_rss_mb`` is the highest sample
  (``peak_rss_kernel_mb``, the kernel's high-water mark, is the cross-check);
  ``rss_growth_pct`` compares the end of the run with its start (after warm-up).

Offline mode times the backbone alone at batch 1, 4 and 16 (one warm-up call per batch size, then
``iters`` timed calls) and the training feature extraction
(:func:`realtime.features.clip_features` on a generated video).
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .config import Config
from .errors import GestureError

RANDOM_NOTE = "random weights: timing only"
SMALL_WIDTH = 0.125  # the bundled model's backbone width when no bundled model is present


# -- the machine ---------------------------------------------------------------------------------
def machine_info() -> dict:
    """CPU model, core count and the vector/matrix extensions that decide bf16 speed; library versions."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("unknown", "", "x86_64"):
                model = val.strip()
            elif key == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "isa": [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags],
        "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "python": platform.python_version(),
    }
    try:
        import keras
        import tensorflow as tf

        info["tensorflow"], info["keras"] = tf.__version__, keras.__version__
        info["backend"] = keras.backend.backend()
    except Exception:  # the bench still reports what it measured
        pass
    return info


# -- resources -----------------------------------------------------------------------------------
class ResourceSampler(threading.Thread):
    """Samples this process's RSS every ``interval`` s until :meth:`stop` (stoppable, never raises)."""

    def __init__(self, interval: float = 0.5):
        super().__init__(name="bench-rss-sampler", daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.done = threading.Event()
        self.samples: list[tuple[float, int]] = []   # (monotonic s, RSS bytes)
        self._lock = threading.Lock()
        self.sample()

    def sample(self) -> int:
        rss = self.proc.memory_info().rss
        with self._lock:
            self.samples.append((time.monotonic(), rss))
        return rss

    def run(self) -> None:
        try:
            while not self.done.wait(self.interval):
                self.sample()
        except Exception as e:  # a failed sample is reported, not fatal
            print(f"warning: RSS sampling stopped: {e}", file=sys.stderr)

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join(2 * self.interval + 1)
        self.sample()

    def peak(self, since: float = 0.0) -> int:
        with self._lock:
            return max((r for t, r in self.samples if t >= since), default=0)


def kernel_peak_rss() -> int:
    """The kernel's RSS high-water mark of this process, bytes (Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) * (1 if sys.platform == "darwin" else 1024)


MB = 1024 * 1024


# -- models --------------------------------------------------------------------------------------
def bench_width(backbone: str) -> float:
    """full = 1.0 (Sports1M C3D, 4096-d fc7); small = the bundled model's width (default 0.125)."""
    if backbone == "full":
        return 1.0
    from .modelio import BUNDLED_MODEL_DIR, read_spec

    if (BUNDLED_MODEL_DIR / "model.json").exists():
        try:
            return read_spec(BUNDLED_MODEL_DIR).width
        except GestureError:
            pass
    return SMALL_WIDTH


def bench_model(cfg: Config, width: float, precision: str, model_dir: str | None = None):
    """A :class:`LoadedModel`: the folder's trained weights if ``model_dir``, else random weights of ``width``."""
    from .modelio import LoadedModel, ModelSpec, build_models, load_model

    if model_dir:
        return load_model(model_dir, cfg, precision=precision)
    spec = ModelSpec.from_config(cfg, width=width)
    bb, hd = build_models(spec, precision)
    return LoadedModel(spec, bb, hd, untrained=True, path=None)


def _ms(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 2)


class _TimedRead:
    """Wraps a frame generator's ``read`` to time it (the synthetic renderer costs CPU a camera would not)."""

    def __init__(self, read):
        self._read, self.times = read, []

    def __call__(self):
        t0 = time.perf_counter()
        try:
            return self._read()
        finally:
            if len(self.times) < 100_000:
                self.times.append(time.perf_counter() - t0)


class _WorkerTimers:
    """Wall time the inference worker spends in each call it makes, by wrapping them on the instances.

    ``wait`` (idle, waiting for frames), ``read`` (copying clips out of the ring), ``c3d`` (the
    compiled backbone call, mean subtraction included), ``head``; the rest of the worker's time is
    Python (loop, feature bookkeeping, window assembly, debouncer).
    """

    def __init__(self, pipe):
        self.t = {"wait": 0.0, "read": 0.0, "c3d": 0.0, "head": 0.0}
        self.inflight: tuple[str, float] | None = None
        ring, eng = pipe.ring, pipe.engine
        ring.wait_newer = self._wrap("wait", ring.wait_newer)
        ring.read = self._wrap("read", ring.read)
        eng._bb = self._wrap("c3d", eng._bb)
        eng._head = self._wrap("head", eng._head)

    def _wrap(self, key, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            self.inflight = (key, t0)
            try:
                return fn(*a, **k)
            finally:
                self.inflight = None
                self.t[key] += time.perf_counter() - t0
        return timed

    def reset(self):
        for k in self.t:
            self.t[k] = 0.0
        self.inflight = None

    def breakdown(self, elapsed: float) -> dict:
        """Percent of the run's wall time; ``other`` = the worker's remaining (Python) time."""
        t = dict(self.t)
        inflight = self.inflight  # a model call still running when the run ended (stop waits 1 s at most)
        if inflight is not None:
            t[inflight[0]] += time.perf_counter() - inflight[1]
        other = max(0.0, elapsed - sum(t.values()))
        return {k: round(100.0 * v / elapsed, 1) for k, v in {**t, "other": other}.items()}


class _Progress:
    """A progress line on stderr every ``every`` s (in place on a terminal)."""

    def __init__(self, total_s: float, pipe, every: float = 5.0, enabled: bool = True):
        self.total, self.pipe, self.every, self.enabled = total_s, pipe, every, enabled
        self.t0 = time.monotonic()
        self.next = self.t0 + every
        self.tty = sys.stderr.isatty()

    def __call__(self):
        now = time.monotonic()
        if not self.enabled or now < self.next:
            return True
        self.next = now + self.every
        s = self.pipe.stats
        msg = (f"bench: {now - self.t0:5.0f}/{self.total:.0f} s  {s.frames} frames  {s.clips} clips  "
               f"{s.decisions} decisions  {self.pipe.dropped_frames} dropped")
        print(("\r" + msg) if self.tty else msg, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        return True

    def close(self):
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)


# -- live ----------------------------------------------------------------------------------------
def live_bench(cfg: Config, width: float, precision: str, seconds: float, model_dir: str | None = None,
               backbone: str = "small", seed: int = 0, progress: bool = True) -> dict:
    """Run the live pipeline on the paced synthetic stream for ``seconds`` (after warm-up); return the numbers.

    ``cfg.pipeline.stride`` / ``max_batch`` and ``cfg.capture.fps`` are used as given.
    """
    import psutil

    from .pipeline import Pipeline
    from .sources import SyntheticSource

    if seconds <= 0:
        raise GestureError(f"--seconds must be positive, got {seconds}")
    sampler = ResourceSampler(0.5)
    sampler.start()
    pipe = None
    try:
        t_build = time.perf_counter()
        model = bench_model(cfg, width, precision, model_dir)
        build_s = time.perf_counter() - t_build
        source = SyntheticSource(seed=seed, fps=cfg.capture.fps, paced=True).open()
        render = _TimedRead(source._stream.read)
        source._stream.read = render
        pipe = Pipeline(source, model, cfg, sinks=[])
        timers = _WorkerTimers(pipe)
        t_w = time.perf_counter()
        try:
            pipe.start()  # warm-up (every batch size traced once), then the threads start
        except BaseException:
            pipe.stop()
            raise
        warmup_s = time.perf_counter() - t_w
        timers.reset()
        proc = psutil.Process()
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        rss_start = sampler.sample()
        bar = _Progress(seconds, pipe, enabled=progress)
        try:
            pipe.run(seconds=seconds, tick=bar, tick_interval=0.1)
        finally:
            bar.close()
        t1, cpu1 = time.monotonic(), proc.cpu_times()
        worker_pct = timers.breakdown(t1 - t0)
        rss_end = sampler.sample()
    finally:
        sampler.stop()
        # stop() waits 1 s at most; a full-width C3D call can take longer. Let it end here: a daemon
        # thread still inside TensorFlow when the interpreter exits can crash it (segfault, rc 139).
        if pipe is not None and pipe.worker.is_alive():
            pipe.worker.join(120)
    elapsed = t1 - t0
    # Frames stop at `seconds`; elapsed also holds stop() (up to 1 s waiting for a model call).
    run_s = max(1e-9, min(elapsed, seconds))
    s = pipe.stats.snapshot()
    fps = float(source.fps)
    model_fps = float(pipe.frame_rate)  # the ring's rate: the source's, or the model's when resampled
    stride, clip_len = cfg.pipeline.stride, cfg.pipeline.clip_len
    clip_window = max(1e-9, run_s - (clip_len - 1) / model_fps)
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    rt = np.asarray(render.times) * 1000 if render.times else np.zeros(1)
    peak = max(sampler.peak(), rss_end)
    return {
        "mode": "live",
        "note": RANDOM_NOTE if model.untrained else f"weights from {model.path}",
        "backbone": backbone,
        "width": float(model.spec.width),
        "feature_dim": int(model.feature_dim),
        "precision": precision,
        "stride": stride,
        "max_batch": cfg.pipeline.max_batch,
        "mirror_average": bool(pipe.engine.mirror),  # two backbone views per clip
        "seconds": float(seconds),
        "elapsed_s": round(elapsed, 2),
        "build_s": round(build_s, 2),
        "warmup_s": round(warmup_s, 2),
        "fps_target": fps,
        "model_fps": model_fps,
        "frames": s["frames"],
        "capture_fps": round(s["frames"] / run_s, 2),
        "clips": s["clips"],
        "clips_per_s": round(s["clips"] / clip_window, 2),
        "clips_needed_per_s": round(model_fps / stride, 2),
        "decisions": s["decisions"],
        "events": s["events"],
        "dropped_frames": int(pipe.dropped_frames),
        "ring_overwritten": int(pipe.ring.dropped),
        "skipped_frames": int(pipe.stats.skipped_frames),
        "latency_median_ms": _ms(s["latency_median_ms"]),
        "latency_p95_ms": _ms(s["latency_p95_ms"]),
        "stages_ms": {k: {q: _ms(v[q]) for q in ("median", "p95")} for k, v in s["stages_ms"].items()},
        "source_render_ms": {"median": _ms(np.median(rt)), "p95": _ms(np.percentile(rt, 95))},
        "worker_time_pct": worker_pct,
        "cpu_percent": round(100.0 * cpu_s / elapsed, 1) if elapsed > 0 else 0.0,
        "rss_start_mb": round(rss_start / MB, 1),
        "rss_end_mb": round(rss_end / MB, 1),
        "peak_rss_mb": round(peak / MB, 1),
        "peak_rss_kernel_mb": round(kernel_peak_rss() / MB, 1),
        "rss_growth_pct": round(100.0 * (rss_end - rss_start) / rss_start, 2) if rss_start else 0.0,
        "machine": machine_info(),
    }


# -- offline -------------------------------------------------------------------------------------
def _generated_crops(cfg: Config, n_clips: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Write a synthetic-stream video of ``n_clips`` clips, read it back like ``gesture features``.

    Returns ``(crops (T, size, size, 3) uint8, seconds spent decoding + cropping)``.
    """
    import cv2

    from .features import video_crops
    from .synth import SyntheticStream

    n = n_clips * cfg.pipeline.clip_len
    stream = SyntheticStream(seed)
    with tempfile.TemporaryDirectory(prefix="gesture-bench-") as d:
        path = Path(d) / "bench.avi"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (stream.width, stream.height))
        if not w.isOpened():
            raise GestureError(f"{path}: OpenCV cannot write an MJPG video here")
        try:
            for _ in range(n):
                w.write(stream.read())
        finally:
            w.release()
        t0 = time.perf_counter()
        crops = video_crops(path, cfg)
        return crops, time.perf_counter() - t0


def bf16_fc7_difference(cfg: Config, width: float, n_clips: int = 2, seed: int = 0) -> dict:
    """fc7 of the same random C3D at fp32 and at bf16 (same weights) on synthetic-stream clips.

    Both go through the live path's compiled call (uint8 crops in). Returns the relative L2
    difference ``|bf16 - fp32| / |fp32|`` over all clips, the largest element difference relative
    to the largest fp32 value, and the cosine similarity.
    """
    import keras

    from .modelio import ModelSpec, build_models, predict_fn
    from .preprocess import crop_frames
    from .synth import SyntheticStream

    p = cfg.pipeline
    spec = ModelSpec.from_config(cfg, width=width)
    keras.utils.set_random_seed(seed)
    bb32, _ = build_models(spec, "fp32")
    bb16, _ = build_models(spec, "bf16")
    bb16.set_weights(bb32.get_weights())  # mixed_bfloat16 keeps fp32 variables: same shapes
    stream = SyntheticStream(seed)
    frames = [stream.read() for _ in range(n_clips * p.clip_len)]
    clips = crop_frames(frames, cfg.preprocess, p.size).reshape(n_clips, p.clip_len, p.size, p.size, 3)
    a = predict_fn(bb32, mean_bgr=cfg.preprocess.mean_bgr)(clips).astype(np.float64)
    b = predict_fn(bb16, mean_bgr=cfg.preprocess.mean_bgr)(clips).astype(np.float64)
    na = np.linalg.norm(a)
    return {
        "clips": n_clips,
        "rel_l2": round(float(np.linalg.norm(b - a) / na), 5) if na else None,
        "max_abs_rel": round(float(np.abs(b - a).max() / np.abs(a).max()), 5) if np.abs(a).max() else None,
        "cosine": round(float((a * b).sum() / (na * np.linalg.norm(b))), 6) if na and np.linalg.norm(b) else None,
    }


def offline_bench(cfg: Config, width: float, precision: str, batches=(1, 4, 16), iters: int = 3,
                  feature_clips: int = 32, feature_batch: int = 16, progress: bool = True) -> dict:
    """Backbone clips/s at each batch size, and training feature extraction clips/s. Random weights."""
    from tqdm import tqdm

    from .engine import InferenceEngine
    from .features import clip_features
    from .modelio import LoadedModel, ModelSpec, build_models, predict_fn

    spec = ModelSpec.from_config(cfg, width=width)
    bb, hd = build_models(spec, precision)
    p = cfg.pipeline
    rng = np.random.default_rng(0)
    # The live path's backbone call (uint8 crops in, as the engine feeds it).
    engine = InferenceEngine(LoadedModel(spec, bb, hd, untrained=True), cfg)
    live_call = engine._bb
    results = {}
    total = len(batches) * (iters + 1) + 1
    with tqdm(total=total, desc="bench offline", unit="call", disable=not progress, file=sys.stderr) as bar:
        for b in batches:
            x = rng.integers(0, 256, (b, p.clip_len, p.size, p.size, 3), dtype=np.uint8)
            t0 = time.perf_counter()
            live_call(x)  # trace/compile + first run
            first = time.perf_counter() - t0
            bar.update(1)
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                live_call(x)
                times.append(time.perf_counter() - t0)
                bar.update(1)
            results[str(b)] = {
                "clips_per_s": round(b * len(times) / sum(times), 2),
                "call_ms_median": round(1000 * float(np.median(times)), 1),
                "first_call_s": round(first, 2),
            }
        crops, decode_s = _generated_crops(cfg, feature_clips)
        f = predict_fn(bb)
        # warm up this batch size (and the tail batch) on the features path before timing
        n_clips = len(crops) // p.clip_len
        tail = n_clips % feature_batch
        from .preprocess import to_model_input

        for nb in {min(feature_batch, n_clips), tail} - {0}:
            f(to_model_input(crops[: nb * p.clip_len].reshape(nb, p.clip_len, p.size, p.size, 3), cfg.preprocess))
        t0 = time.perf_counter()
        feats = clip_features(crops, f, cfg, batch=feature_batch)
        fe_s = time.perf_counter() - t0
        bar.update(1)
    fc7_diff = bf16_fc7_difference(cfg, width) if precision == "bf16" else None
    return {
        "mode": "offline",
        "note": RANDOM_NOTE,
        "width": float(width),
        "feature_dim": int(feats.shape[1]) if feats.ndim == 2 else 0,
        "precision": precision,
        "iters": iters,
        "c3d_clips_per_s": {k: v["clips_per_s"] for k, v in results.items()},
        "c3d": results,
        "features": {
            "clips": int(len(feats)),
            "batch": feature_batch,
            "clips_per_s": round(len(feats) / fe_s, 2),
            "decode_crop_s": round(decode_s, 2),
            "clips_per_s_with_decode": round(len(feats) / (fe_s + decode_s), 2),
        },
        "fc7_bf16_vs_fp32": fc7_diff,
        "machine": machine_info(),
    }


# -- output --------------------------------------------------------------------------------------
def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v}{unit}"


def live_table(r: dict) -> str:
    """The Markdown table ``gesture bench`` prints (and the README shows)."""
    st = r["stages_ms"]
    m = r["machine"]
    rows = [
        ("machine", f"{m.get('cpu')}, {m.get('cores')} cores ({' '.join(m.get('isa', []))})"),
        ("model", f"C3D width {r['width']} ({r['backbone']}, {r['feature_dim']}-d fc7), {r['precision']}"
                  f"{', mirror averaging (2 views a clip)' if r.get('mirror_average') else ''}; {r['note']}"),
        ("run", f"{r['elapsed_s']:.0f} s at {r['fps_target']:.0f} fps, stride {r['stride']}, "
                f"max batch {r['max_batch']} (warm-up {r['warmup_s']:.1f} s)"),
        ("capture fps", _fmt(r["capture_fps"])),
        ("clips/s (needed)", f"{_fmt(r['clips_per_s'])} ({_fmt(r['clips_needed_per_s'])})"),
        ("decisions", str(r["decisions"])),
        ("dropped frames", f"{r['dropped_frames']} (ring overwrote {r['ring_overwritten']}, "
                           f"worker skipped {r['skipped_frames']})"),
    ]
    for k in ("preprocess", "c3d", "head", "debounce"):
        rows.append((f"{k} ms (median / p95)", f"{_fmt(st[k]['median'])} / {_fmt(st[k]['p95'])}"))
    rows += [
        ("decision latency ms (median / p95)", f"{_fmt(r['latency_median_ms'])} / {_fmt(r['latency_p95_ms'])}"),
        ("synthetic source render ms (median / p95)",
         f"{_fmt(r['source_render_ms']['median'])} / {_fmt(r['source_render_ms']['p95'])}"),
        ("worker time % (wait / read / c3d / head / other)",
         " / ".join(_fmt(float(r["worker_time_pct"][k])) for k in ("wait", "read", "c3d", "head", "other"))),
        ("CPU % (200 = 2 cores)", _fmt(r["cpu_percent"])),
        ("RSS MB start / end / peak", f"{_fmt(r['rss_start_mb'])} / {_fmt(r['rss_end_mb'])} / {_fmt(r['peak_rss_mb'])}"),
        ("RSS growth", _fmt(r["rss_growth_pct"], " %")),
    ]
    return _md(rows)


def offline_table(r: dict) -> str:
    m = r["machine"]
    rows = [
        ("machine", f"{m.get('cpu')}, {m.get('cores')} cores ({' '.join(m.get('isa', []))})"),
        ("model", f"C3D width {r['width']} ({r['feature_dim']}-d fc7), {r['precision']}; {r['note']}"),
    ]
    for b, v in r["c3d"].items():
        rows.append((f"C3D clips/s, batch {b}", f"{_fmt(v['clips_per_s'])} ({_fmt(v['call_ms_median'])} ms/call)"))
    fe = r["features"]
    rows.append((f"feature extraction clips/s (batch {fe['batch']}, {fe['clips']} clips)",
                 f"{_fmt(fe['clips_per_s'])} ({_fmt(fe['clips_per_s_with_decode'])} with video decode)"))
    d = r.get("fc7_bf16_vs_fp32")
    if d:
        rows.append((f"fc7 bf16 vs fp32 ({d['clips']} synthetic clips)",
                     f"relative L2 {d['rel_l2']}, max element {d['max_abs_rel']} of max, cosine {d['cosine']}"))
    return _md(rows)


def _md(rows) -> str:
    w = max(len(k) for k, _ in rows)
    lines = [f"| {'metric'.ljust(w)} | value |", f"|{'-' * (w + 2)}|-------|"]
    lines += [f"| {k.ljust(w)} | {v} |" for k, v in rows]
    return "\n".join(lines)


def bench_command(args, cfg: Config) -> int:
    """``gesture bench``: parse-free entry point; ``args`` carries json, backbone, precision, stride, seconds,
    offline, model (and, for tests, an optional ``width`` that overrides the backbone's)."""
    precision = args.precision or cfg.pipeline.precision
    cfg = cfg.replace(**{"pipeline.precision": precision})
    width = getattr(args, "width", None) or bench_width(args.backbone)
    backbone = args.backbone
    if args.model:
        from .modelio import read_spec

        width, backbone = read_spec(args.model).width, f"--model {args.model}"
    progress = not args.json or sys.stderr.isatty()
    if args.offline:
        r = offline_bench(cfg, width, precision, progress=progress)
        table = offline_table(r)
    else:
        r = live_bench(cfg, width, precision, args.seconds, model_dir=args.model, backbone=backbone,
                       progress=progress)
        table = live_table(r)
    if args.json:
        print(json.dumps(r, allow_nan=False))
    else:
        print(f"gesture bench ({r['note']})")
        print(table)
    return 0
