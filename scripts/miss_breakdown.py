"""Which gestures of a rendered stream the engine missed: by motion source, hand size and swipe length.

`gesture eval --stream S.mp4 --json` says how many gestures were missed; this says which kind. The stream is
planned again from its seed (``SyntheticStream.details``: whether a gesture's motion is a recorded human
trajectory or the renderer's own, the hand's size, how far the fingertip travels), each gesture is matched to
the eval's events as `gesture eval` matches them, and the misses are counted per bin, pooled over every stream
given (docs/ablation.md, "Session 26").

Usage:
    gesture eval --stream data/val_stream97.mp4 --json > ev97.json
    python scripts/miss_breakdown.py --eval ev97.json --seed 97 [--eval ev99.json --seed 99 ...] [--json]
Streams rendered at another size or rate: --width/--height (the eval JSON gives the rate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realtime.config import DEFAULT_LABELS, GESTURES
from realtime.errors import GestureError
from realtime.evaluate import pair_events, read_annotations
from realtime.synth import SyntheticStream

HAND_BINS = (0.0, 0.2, 0.3, 0.4, 0.5, 9.9)      # hand length (wrist to fingertip) / frame height
TRAVEL_BINS = (0.0, 0.2, 0.3, 0.4, 0.6, 9.9)    # a swipe's fingertip travel / frame width
HAND_PER_PALM = 1.95                            # the renderer's hand length per palm (wrist to middle MCP)


def gestures_of(eval_json: Path, seed: int, width: int, height: int) -> list[dict]:
    """Every scored gesture of one eval run: label, frames, motion details, and whether an event matched it."""
    try:
        run = json.loads(eval_json.read_text())
    except OSError as e:
        raise GestureError(f"{eval_json}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise GestureError(f"{eval_json}: not JSON ({e.msg}, line {e.lineno}): give what `gesture eval "
                           "--stream S.mp4 --json` printed") from None
    if not isinstance(run, dict) or not run.get("annotations") or "events" not in run or "frames" not in run:
        raise GestureError(f"{eval_json}: no 'annotations', 'events' or 'frames': not the JSON of an annotated "
                           "`gesture eval --stream S.mp4 --json` run")
    fps, n = float(run["source_fps"]), int(run["frames"])
    ann = read_annotations(run["annotations"], DEFAULT_LABELS)
    stream = SyntheticStream(seed, width=width, height=height, fps=fps)
    for _ in range(n):
        stream.advance()
    planned = [(seg, det) for seg, det in zip(stream.segments, stream.details) if seg[2] < n]
    if [seg for seg, _ in planned] != ann:
        raise GestureError(f"{run['annotations']}: its gestures are not those seed {seed} plans at {width}x{height}, "
                           f"{fps:g} fps: another --seed, or --width/--height?")
    pairs = pair_events(run["events"], ann, fps)
    return [{"label": lab, "start": a, "end": b, **det, "matched": i in pairs,
             "hand_len": det["palm_px"] * HAND_PER_PALM / height, "travel": det["travel_x_px"] / width}
            for i, ((lab, a, b), det) in enumerate(planned)]


def _count(sel: list[dict]) -> dict:
    return {"n": len(sel), "missed": sum(not r["matched"] for r in sel)}


def _bins(rows, key, edges) -> list[dict]:
    return [{"from": lo, "to": hi, **_count([r for r in rows if lo <= r[key] < hi])}
            for lo, hi in zip(edges[:-1], edges[1:])]


def _by(rows, key, values) -> list[dict]:
    return [{key: v, **_count([r for r in rows if r[key] == v])} for v in values]


def breakdown(rows: list[dict]) -> dict:
    swipes = [r for r in rows if r["label"] in ("2_Fingers_Left", "2_Fingers_Right")]
    return {**_count(rows),
            "by_label": _by(rows, "label", GESTURES), "by_motion": _by(rows, "motion", ("real", "procedural")),
            "by_hand_length": _bins(rows, "hand_len", HAND_BINS),
            "swipes_by_travel": _bins(swipes, "travel", TRAVEL_BINS)}


def table(b: dict) -> str:
    def line(name, d):
        rate = f"{d['missed'] / d['n']:.2f}" if d["n"] else "  - "
        return f"  {name:34s} {d['n']:5d} {d['missed']:7d}   {rate}"

    def span(d, what):
        hi = "" if d["to"] > 9 else f"{d['to']:.1f}"
        return f"{what} {d['from']:.1f}-{hi}" if hi else f"{what} >= {d['from']:.1f}"

    out = [f"{b['n']} gestures, {b['missed']} missed", f"  {'':34s} {'n':>5s} {'missed':>7s}   rate"]
    out += [line(d["label"], d) for d in b["by_label"]]
    out += [line(f"motion: {d['motion']}", d) for d in b["by_motion"]]
    out += [line(span(d, "hand length / frame height"), d) for d in b["by_hand_length"]]
    out += [line(span(d, "swipe travel / frame width"), d) for d in b["swipes_by_travel"]]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="miss_breakdown.py", description=__doc__.split("\n")[0])
    p.add_argument("--eval", action="append", required=True, type=Path, metavar="EVAL.json",
                   help="what `gesture eval --stream S.mp4 --json` printed (once per stream)")
    p.add_argument("--seed", action="append", required=True, type=int, help="the seed S.mp4 was rendered with")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--json", action="store_true", help="the counts as JSON instead of a table")
    args = p.parse_args(argv)
    if len(args.eval) != len(args.seed):
        p.error(f"give one --seed per --eval: {len(args.eval)} --eval, {len(args.seed)} --seed")
    try:
        rows = [r for e, s in zip(args.eval, args.seed) for r in gestures_of(e, s, args.width, args.height)]
    except GestureError as e:
        print(f"miss_breakdown.py: error: {e}", file=sys.stderr)
        return 2
    b = breakdown(rows)
    print(json.dumps(b, indent=2) if args.json else table(b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
