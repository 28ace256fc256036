"""``gesture live`` / ``gesture demo``: the pipeline plus its sinks (event log, window, keys, recorder)."""

from __future__ import annotations

import os
import sys

from .config import Config
from .errors import GestureError
from .modelio import load_model
from .pipeline import Pipeline
from .preprocess import shape_note
from .sinks import JsonlEventSink, PrintSink
from .sources import open_source
from .xwindow import NoXServer, open_display


def display_problem() -> str | None:
    """Why no window can be opened here (one line), or None when one can.

    Windows and macOS always have a display. Elsewhere OpenCV's Qt window needs an X server: DISPLAY
    must be set and a server must answer there. Qt cannot be asked first: when it cannot connect it
    aborts the whole process, with no Python exception (a stale DISPLAY after an ssh session, say),
    so the server is tried here with python-xlib.
    """
    if sys.platform in ("win32", "darwin"):
        return None
    try:
        open_display().close()
    except NoXServer as e:
        return str(e)
    except ImportError:   # no python-xlib: trust DISPLAY, as before
        return None if os.environ.get("DISPLAY") else "DISPLAY is not set"
    return None


def window_possible(headless: bool, instead: str) -> bool:
    """Whether a window may open: not ``headless`` and :func:`display_problem` finds none; otherwise
    says why, and what happens ``instead``, in one line on stderr (nothing when ``headless`` was asked)."""
    if headless:
        return False
    why = display_problem()
    if why is not None:
        print(f"no window: {why}; {instead}", file=sys.stderr, flush=True)
    return why is None


def describe_model(model) -> str:
    if model.untrained:
        return ("model: UNTRAINED (random weights; no bundled model found) - events are meaningless; "
                "train one with `gesture train`")
    trained = model.spec.trained or {}
    what = trained.get("summary", "")
    return f"model: {model.path} ({what})" if what else f"model: {model.path}"


def run_live(args, cfg: Config, demo: bool = False) -> int:
    # the source first: a mistyped --source or a missing camera is said in a second, not after the model loads
    source = open_source(args.source, realtime=cfg.capture.realtime, fps=cfg.capture.fps)
    try:
        model = load_model(args.model or cfg.model.path, cfg, precision=cfg.pipeline.precision,
                           weights=args.weights, allow_untrained=demo)
    except BaseException:
        source.close()
        raise
    print(describe_model(model), file=sys.stderr, flush=True)
    headless = not window_possible(args.headless, "running headless (events as JSON lines on stdout)")
    sinks = []
    if headless:
        sinks.append(PrintSink())
    if args.events_out:
        sinks.append(JsonlEventSink(args.events_out))
    keys = None
    if cfg.keys.map and (args.keys or args.dry_run or cfg.keys.armed or not headless):
        try:
            from .keys import KeySink
        except ImportError:
            KeySink = None
        if KeySink is not None:
            keys = KeySink(cfg.keys.map, armed=args.keys or cfg.keys.armed, dry_run=args.dry_run)
            sinks.append(keys)
    window = None
    if not headless or args.record_overlay:
        try:
            from .overlay import OverlayApp
        except ImportError:
            OverlayApp = None
        if OverlayApp is not None:
            window = OverlayApp(cfg, model.labels, show=not headless, record_path=args.record_overlay,
                                mirror=(cfg.overlay.mirror and not args.no_mirror) != cfg.capture.mirrored, keys=keys,
                                record_dir=args.record_dir or cfg.recorder.dir)
            sinks.append(window)
    pipe = Pipeline(source, model, cfg, sinks=sinks)
    if pipe.adapter is None:
        rate = ""
    elif source.live:
        rate = f", brought to the model's {pipe.frame_rate:g} fps if it runs more than 25% off"
    elif abs(source.fps / pipe.frame_rate - 1) > pipe.adapter.tolerance:
        rate = f", resampled to the model's {pipe.frame_rate:g} fps ({cfg.capture.resample})"
    else:
        rate = ""
    views = ", mirror averaging" if pipe.engine.mirror else ""
    print(f"source: {source.name} ({source.fps:.0f} fps, {source.policy.value}{rate}); stride {cfg.pipeline.stride}, "
          f"{cfg.pipeline.precision}{views}", file=sys.stderr, flush=True)
    note = shape_note(source.frame_size, cfg.preprocess)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    if window is not None:
        window.attach(pipe)

    def join_worker() -> None:
        # stop() returns within a second, but a C3D call already running (about 1 s per clip for the
        # full network on 2 cores) must finish before the interpreter exits, or TensorFlow can crash.
        if pipe.worker.is_alive():
            pipe.worker.join(10.0)

    def summary() -> dict:
        join_worker()
        s = pipe.stats.snapshot()
        p95 = s["latency_p95_ms"]   # NaN before the first clip (a video shorter than one)
        print(f"done: {s['frames']} frames, {s['clips']} clips, {s['decisions']} decisions, {len(pipe.events)} "
              f"events, {pipe.dropped_frames} dropped frames" + ("" if p95 != p95 else f", latency p95 {p95:.0f} ms"),
              file=sys.stderr, flush=True)
        for note in (pipe.capture.meter.summary(), pipe.adapter and pipe.adapter.repeat_note(s["frames"])):
            if note:
                print(note, file=sys.stderr, flush=True)
        return s

    try:
        pipe.run(seconds=args.seconds, tick=window.tick if window is not None else None)
    except KeyboardInterrupt:
        summary()   # what the run did before Ctrl-C; the CLI then says "interrupted"
        raise
    finally:
        join_worker()
    s = summary()
    n = len(pipe.events)
    if n == 0:
        if s["decisions"] == 0:
            why = (f"no decisions were made: the head needs {cfg.pipeline.span} frames "
                   f"({cfg.pipeline.span / pipe.frame_rate:.1f} s) before its first decision")
        elif model.untrained:
            why = "the model is untrained, so nothing passed the threshold"
        else:
            why = f"no gesture passed debounce.threshold={cfg.debounce.threshold}"
        print(f"no events: {why}", file=sys.stderr, flush=True)
    return 0


def record_command(args, cfg: Config) -> int:
    try:
        from .recorder import record_session
    except ImportError:
        raise GestureError("gesture record: the recorder is not available in this build") from None
    return record_session(args, cfg)
