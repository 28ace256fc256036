"""The ``gesture`` command. argparse parses; typed functions in other modules do the work.

Subcommands: live, demo, features, synth, train, eval, record, bench.
Errors the user can fix print one line (``gesture: error: ...``) and exit 2;
``--debug`` shows the full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys


def _common_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config YAML (default: the repository's config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pipeline.stride=4 (repeatable)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def _real(what: str, ok):
    """A number the flag accepts when ``ok(v)``; else argparse's usage error ``expected <what>``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not ok(v):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


_probability = _real("a probability between 0 and 1", lambda v: 0.0 <= v <= 1.0)
# a share held out: all of it leaves nothing to train on
_fraction = _real("a fraction from 0 up to (not including) 1", lambda v: 0.0 <= v < 1.0)
_positive = _real("a number > 0", lambda v: 0.0 < v < float("inf"))  # seconds, minutes, widths


def _at_least(lo: int, hi: int | None = None):
    """An integer >= ``lo`` (and <= ``hi``): counts, sizes and seeds, refused at the command line instead of
    deep inside a run (a negative --per-class once surfaced as numpy's OverflowError, --epochs -2 trained nothing)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = lo - 1
        if v < lo or (hi is not None and v > hi):
            want = f">= {lo}" if hi is None else f"from {lo} to {hi}"
            raise argparse.ArgumentTypeError(f"expected a whole number {want}, got {text!r}")
        return v
    return parse


def _mirrored_source_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirrored-source", action="store_true",
                   help="the video is a mirror image (a selfie-view recording): flip it back so left/right are yours")


def _live_args(p: argparse.ArgumentParser, default_source: str) -> None:
    p.add_argument("--source", default=default_source,
                   help="camera index (0), a video file, or 'synthetic[:SEED]' (default: %(default)s)")
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--weights", default=None, help="Sports1M C3D Keras-2 HDF5, for models with the full backbone")
    p.add_argument("--headless", action="store_true", help="no window; print events on stdout")
    p.add_argument("--seconds", type=_positive, default=None, help="stop after this many seconds")
    p.add_argument("--events-out", default=None, metavar="FILE.jsonl", help="append one JSON object per event")
    p.add_argument("--realtime", action="store_true", help="play a video file at its own fps (drops like a camera)")
    _mirrored_source_arg(p)
    p.add_argument("--stride", type=_at_least(1), default=None, help="frames between clips/decisions (1, 2, 4, 8, 16)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    p.add_argument("--keys", action="store_true", help="arm keystrokes from the start")
    p.add_argument("--dry-run", action="store_true", help="print the keystrokes that would be sent, send none")
    p.add_argument("--no-mirror", action="store_true", help="do not mirror the displayed image")
    p.add_argument("--record-overlay", default=None, metavar="OUT.mp4", help="write the overlaid video")
    p.add_argument("--record-dir", default=None, help="dataset folder for corrected clips (recorder.dir)")
    _common_config(p)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gesture", description="Real-time webcam hand-gesture recognizer (C3D + BiLSTM)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("live", help="recognize gestures from a camera, file or synthetic stream")
    _live_args(p, "0")
    p = sub.add_parser("demo", help="the live pipeline on the built-in synthetic source with the bundled model")
    _live_args(p, "synthetic")

    p = sub.add_parser("features", help="fc7 features of a video's non-overlapping 16-frame clips")
    p.add_argument("video")
    p.add_argument("--weights", required=True, help="C3D_Sport1M_weights_keras_2.2.4.h5 (Keras-2 HDF5)")
    p.add_argument("--out", required=True, help="output .npy, shape (n_clips, 4096) float32")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch", type=_at_least(1), default=4)
    _common_config(p)

    p = sub.add_parser("synth", help="render synthetic gesture clips or a continuous stream")
    ss = p.add_subparsers(dest="what", required=True)
    q = ss.add_parser("clips", help="DIR/Train_Data/<label>/*.mp4 + DIR/meta.csv")
    q.add_argument("--out", required=True)
    q.add_argument("--per-class", type=_at_least(1), required=True)
    q.add_argument("--seed", type=_at_least(0), default=0)
    q.add_argument("--width", type=_at_least(16), default=320)
    q.add_argument("--height", type=_at_least(16), default=240)
    q.add_argument("--fps", type=float, default=30.0, help="frame rate of the videos (the motion keeps its speed in seconds)")
    q.add_argument("--workers", type=_at_least(1), default=2)
    q.add_argument("--debug", action="store_true")
    q = ss.add_parser("stream", help="one video with gestures between no_gesture stretches + a CSV of them")
    q.add_argument("--out", required=True, help="S.mp4 (S.csv is written beside it)")
    q.add_argument("--minutes", type=_positive, required=True)
    q.add_argument("--seed", type=_at_least(0), default=0)
    q.add_argument("--width", type=_at_least(16), default=320)
    q.add_argument("--height", type=_at_least(16), default=240)
    q.add_argument("--fps", type=float, default=30.0, help="frame rate of the video (the motion keeps its speed in seconds)")
    q.add_argument("--debug", action="store_true")

    p = sub.add_parser("train", help="train a model folder from labelled clips")
    p.add_argument("--meta", required=True, action="append",
                   help="meta CSV (file_path,action[,frame_count]) or a folder with one subfolder per label; repeatable")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the finished model in --out (refused otherwise; an interrupted run there resumes)")
    p.add_argument("--stream", action="append", default=None,
                   help="annotated stream S.mp4 (S.csv beside it, as `gesture synth stream` writes): its windows "
                        "train the small backbone's head too; repeatable")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--weights", default=None, help="Sports1M C3D HDF5: frozen full backbone, cached fc7 features")
    g.add_argument("--backbone", choices=("small",), default=None, help="width-scaled C3D trained from scratch")
    p.add_argument("--width", type=_positive, default=None, help="small backbone width multiplier (default 0.125)")
    p.add_argument("--downsample", type=int, choices=(1, 2, 4), default=None,
                   help="small: the backbone pools the 112x112 crop by this factor first (4: 28x28, the default)")
    p.add_argument("--batch", type=_at_least(1), default=32,
                   help="small: clips per stage-1 step (default 32; larger keeps a GPU busy)")
    p.add_argument("--sampler-procs", type=int, default=None, metavar="N",
                   help="small: draw stage-1 batches on N forked processes (default: cores - 2, at most 12, on a "
                        "machine with 8 or more cores, else 0: threads)")
    p.add_argument("--head", choices=("small", "seed"), default=None, help="head kind (default small)")
    p.add_argument("--init", default=None, metavar="MODEL_DIR",
                   help="small: fine-tune this model folder (e.g. models/synthetic_small on your own recorded "
                        "clips) instead of starting from random weights; width, downsample and head come from it")
    p.add_argument("--head-only", action="store_true",
                   help="small, with --init: keep its backbone exactly as it is and retrain only the head "
                        "(stage 2: minutes on a CPU, where stage 1 takes hours)")
    p.add_argument("--colour-jitter", type=_probability, default=0.0, metavar="P",
                   help="small: with probability P an augmented sample also changes colour (hue, saturation, "
                        "channel order), for hands, gloves and rooms of colours the training data lacks "
                        "(default 0: off)")
    p.add_argument("--label-delay", type=_at_least(0, 16), default=0, metavar="FRAMES",
                   help="the head learns to answer FRAMES frames (at most 16) after a gesture ends instead of at "
                        "once: it first sees what the hand does next, which tells a swipe from the move into "
                        "another gesture, for that much more delay on every event (default 0; the model "
                        "folder records it)")
    p.add_argument("--epochs", type=_at_least(1), default=None,
                   help="small: passes over the training clips in stage 1 (default: run for --minutes); "
                        "--weights or --head-only: head epochs")
    p.add_argument("--seed", type=_at_least(0), default=0)
    p.add_argument("--val-split", type=_fraction, default=0.2)
    p.add_argument("--minutes", type=_positive, default=None,
                   help="small: the whole run's time budget (default 25; stage 1 gets 65%%)")
    p.add_argument("--strict", action="store_true", help="a clip shorter than 16 frames is fatal, not skipped")
    a = p.add_argument_group("ablation (docs/ablation.md): put back one of the seed's choices")
    a.add_argument("--context", choices=("held", "black"), default="held",
                   help="what surrounds a short clip: held edge frames (default) or the seed's black padding")
    a.add_argument("--no-background", action="store_true",
                   help="train without the no_gesture class, as the seed did")
    p.add_argument("--cache", default=None, help="feature cache folder (default ~/.cache/gesture)")
    _common_config(p)

    p = sub.add_parser("eval", help="clip accuracy on a meta CSV, or event metrics on a stream")
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--weights", default=None)
    p.add_argument("--meta", default=None)
    p.add_argument("--stream", default=None)
    p.add_argument("--annotations", default=None, help="stream CSV label,start_frame,end_frame (default: S.csv)")
    _mirrored_source_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", default=None, metavar="T.png",
                   help="with --stream: draw the run as a timeline picture (probabilities, gestures, events)")
    p.add_argument("--stride", type=_at_least(1), default=None)
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    _common_config(p)

    p = sub.add_parser("record", help="guided recording of new training clips")
    p.add_argument("--label", required=True)
    p.add_argument("--count", type=_at_least(1), default=5)
    p.add_argument("--seconds", type=_positive, default=None)
    p.add_argument("--source", default="0")
    p.add_argument("--out", default=None, help="dataset folder (default: recorder.dir)")
    _mirrored_source_arg(p)
    p.add_argument("--headless", action="store_true")
    _common_config(p)

    p = sub.add_parser("bench", help="throughput and latency of the real live pipeline")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backbone", choices=("full", "small"), default="full")
    # fp32 by default: bf16 is only faster where the CPU has AMX/AVX512_BF16 (see docs/performance.md)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--stride", type=_at_least(1), default=4)
    p.add_argument("--seconds", type=_positive, default=30.0)
    p.add_argument("--offline", action="store_true", help="C3D clips/s at batch 1, 4, 16 and feature extraction")
    p.add_argument("--model", default=None)
    _common_config(p)
    return ap


def load_cfg(args):
    from .config import load_config, parse_override

    cfg = load_config(args.config)
    over = dict(parse_override(s) for s in getattr(args, "overrides", []) or [])
    for flag, key in (("stride", "pipeline.stride"), ("precision", "pipeline.precision")):
        v = getattr(args, flag, None)
        if v is not None:
            over[key] = v
    if getattr(args, "realtime", False):
        over["capture.realtime"] = True
    if getattr(args, "mirrored_source", False):
        over["capture.mirrored"] = True
    return cfg.replace(**over) if over else cfg


# Commands that run a Keras model: TensorFlow is started first, without its start-up noise.
TF_COMMANDS = ("live", "demo", "features", "train", "eval", "bench")


def dispatch(args) -> int:
    cmd = args.cmd
    if cmd in TF_COMMANDS:
        from .quiet import start_tensorflow

        start_tensorflow()
    if cmd in ("live", "demo"):
        from .app import run_live

        return run_live(args, load_cfg(args), demo=(cmd == "demo"))
    if cmd == "features":
        from .features import features_command

        cfg = load_cfg(args)
        feats = features_command(args.video, args.weights, args.out, cfg, args.precision, args.batch)
        print(f"wrote {args.out}: {feats.shape[0]} clips x {feats.shape[1] if feats.ndim == 2 else 0} features (fc7)")
        return 0
    if cmd == "synth":
        from . import synth
        from .errors import GestureError

        if not 1 <= args.fps <= 240:
            raise GestureError(f"--fps {args.fps:g}: must be between 1 and 240")
        if args.what == "clips":
            meta = synth.write_clips(args.out, args.per_class, args.seed, width=args.width, height=args.height,
                                     fps=args.fps, workers=args.workers)
            print(f"wrote {meta}")
        else:
            mp4, csv = synth.write_stream(args.out, args.minutes, args.seed, width=args.width, height=args.height,
                                          fps=args.fps)
            print(f"wrote {mp4} and {csv}")
        return 0
    if cmd == "train":
        from .train import train_command

        return train_command(args, load_cfg(args))
    if cmd == "eval":
        from .evaluate import eval_command

        return eval_command(args, load_cfg(args))
    if cmd == "record":
        from .app import record_command

        return record_command(args, load_cfg(args))
    if cmd == "bench":
        from .bench import bench_command

        return bench_command(args, load_cfg(args))
    raise SystemExit(f"unknown command {cmd}")


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # FFmpeg's own log (OpenCV's video reader and writer): a file that is not a video printed
    # "[mov,mp4,... @ 0x...] moov atom not found" above our one-line error; -8 is AV_LOG_QUIET. Read
    # when OpenCV first starts FFmpeg; a value the user set is kept, for debugging a file.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the exact command, for model cards
    from .errors import GestureError

    try:
        return int(dispatch(args) or 0)
    except KeyboardInterrupt:
        print("gesture: interrupted", file=sys.stderr)
        return 130
    except GestureError as e:
        if args.debug:
            raise
        # One line, always: a message quoting user text (a YAML key, a CSV cell) may hold a newline.
        print(f"gesture: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except Exception as e:
        if args.debug:
            raise
        print(f"gesture: error: {_summary(e)} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _summary(e: BaseException) -> str:
    """``Type: first line`` of an unexpected exception.

    An error raised inside a ``tf.function`` (a model call on the inference worker) reads
    ``in user code:`` + a stack listing; its last line is the real ``ValueError: ...``.
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    if lines[0] == "in user code:" and len(lines) > 1:
        last = lines[-1]
        return last if last.split(":", 1)[0].endswith(("Error", "Exception")) else f"{type(e).__name__}: {last}"
    return f"{type(e).__name__}: {lines[0]}"


if __name__ == "__main__":
    sys.exit(main())
