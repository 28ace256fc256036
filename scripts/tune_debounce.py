"""Pick debounce settings on validation streams (never the test stream).

Plays each stream once through the real pipeline, keeps every head output, then replays the
pure Debouncer over them for a grid of settings and scores each with the same matching as
`gesture eval --stream` (score: Levenshtein accuracy - 0.1 x false events per minute, median delay
at most 0.4 s; with several streams, the mean of their scores). The head outputs are kept beside
each stream (<stream>_<model>_<hash of weights and preprocessing>_s<STRIDE>[m][_KEY-VALUE...].npz, m:
mirror averaging on, then any --set; the best settings in .json), so a second run replays them
without the model. For the best setting it lists every wrong event with the
gesture nearest to it, and every missed gesture.
Usage: python scripts/tune_debounce.py MODEL_DIR VAL_STREAM.mp4 [VAL_STREAM2.mp4 ...] [STRIDE]
       [--at SMOOTHING,THRESHOLD,COOLDOWN_S,OPPOSITE_S]   (score that one setting instead of the grid: a
       setting picked on other streams, scored on these)
       [--max-delay SECONDS]   (the median delay a setting may have on each stream, 0.4 unless given; a model
       trained to answer later needs more to be scored at all)
       [--set KEY=VALUE ...]   (config overrides for the run, as for `gesture`; they are part of the cache's name,
       e.g. _s4m_preprocess.downscale-area.npz, so outputs made under one never replay under another)
"""

import json
import sys
from pathlib import Path

import numpy as np

from realtime import mirror
from realtime.config import load_config, parse_override
from realtime.dataset import content_key
from realtime.debounce import Debouncer
from realtime.errors import GestureError
from realtime.evaluate import match_events, pair_events, read_annotations
from realtime.modelio import load_model, read_spec
from realtime.preprocess import config_for_model, describe
from realtime.pipeline import Pipeline
from realtime.sources import VideoFileSource
from realtime.timeline import PredictionLog


def head_outputs(model_dir, stream, stride, cfg, overrides=()):
    """[(frame_id, probs)], fps and labels of one stream, from the cache beside it or from the pipeline.

    ``overrides``: the --set texts (KEY=VALUE) the run was given; they name its cache."""
    # keyed by the weights' content: a model retrained into the same folder must not replay stale outputs
    # and by pipeline.mirror_average: the mirrored view changes every output
    m = Path(model_dir)
    # and by the preprocessing the model's frames get (preprocess.downscale: auto resolves per model)
    spec = read_spec(m)
    pre = describe(config_for_model(cfg, spec.width, spec.preprocess).preprocess, cfg.pipeline)
    pre["deflicker"] = cfg.capture.deflicker   # and by the capture thread's deflicker, which changes the crops
    if cfg.capture.stabilize:                  # and its stabilizer, which moves them (off: the keys kept before it)
        pre["stabilize"] = True
    key = content_key(m / "backbone.weights.h5", content_key(m / "head.weights.h5") + json.dumps(pre))[:10]
    view = "m" if mirror.enabled(cfg.pipeline.mirror_average, spec) else ""
    over = "".join("_" + o.strip().replace("=", "-", 1) for o in overrides).replace("/", "-").replace(" ", "")
    cache = Path(stream).with_name(f"{Path(stream).stem}_{m.resolve().name}_{key}_s{stride}{view}{over}.npz")
    labels = list(cfg.labels)
    if cache.exists():
        z = np.load(cache)
        return list(zip(z["frames"].tolist(), z["probs"])), float(z["fps"]), labels, cache
    model = load_model(model_dir, cfg)  # only when the outputs are not kept yet
    src = VideoFileSource(stream).open()
    log = PredictionLog()
    Pipeline(src, model, cfg, sinks=[log]).run()
    np.savez(cache, frames=np.array(log.frames), probs=np.stack(log.probs), fps=src.fps)
    return list(zip(log.frames, log.probs)), src.fps, list(model.labels), cache


def main():
    args = sys.argv[1:]
    at = None
    if "--at" in args:
        i = args.index("--at")
        try:
            sm, thr, cd, op = args[i + 1].split(",")
            at = (int(sm), float(thr), float(cd), float(op))
        except (IndexError, ValueError):
            sys.exit("tune_debounce: --at wants SMOOTHING,THRESHOLD,COOLDOWN_S,OPPOSITE_S, e.g. --at 3,0.98,0.8,0")
        del args[i : i + 2]
    max_delay = 0.4
    if "--max-delay" in args:
        i = args.index("--max-delay")
        try:
            max_delay = float(args[i + 1])
        except (IndexError, ValueError):
            sys.exit("tune_debounce: --max-delay wants seconds, e.g. --max-delay 0.5")
        if not 0 < max_delay <= 5:
            sys.exit(f"tune_debounce: --max-delay {max_delay}: must be more than 0 and at most 5 seconds")
        del args[i : i + 2]
    overrides = []
    while "--set" in args:
        i = args.index("--set")
        if i + 1 >= len(args):
            sys.exit("tune_debounce: --set wants KEY=VALUE, e.g. --set preprocess.aspect=crop")
        overrides.append(args[i + 1])
        del args[i : i + 2]
    try:
        cfg = load_config().replace(**dict(parse_override(o) for o in overrides))
    except GestureError as e:
        sys.exit(f"tune_debounce: {e}")
    model_dir = args[0]
    rest = args[1:]
    stride = int(rest.pop()) if rest and rest[-1].isdigit() else 16
    cfg = cfg.replace(**{"pipeline.stride": stride})
    runs = []
    for stream in rest:
        preds, fps, labels, cache = head_outputs(model_dir, stream, stride, cfg, overrides)
        gestures = read_annotations(stream.rsplit(".", 1)[0] + ".csv", labels)
        runs.append((stream, preds, fps, labels, gestures, preds[-1][0] + 1, cache))

    def replay(run, smoothing, thr, cooldown, opposite):
        _, preds, fps, labels, _, _, _ = run
        db = Debouncer(labels, thr, min(0.4, thr - 0.1), cooldown, smoothing, opposite_s=opposite)
        ev = []
        for fid, p in preds:
            d = db.update(p, fid / fps)
            if d.label:
                ev.append({"label": d.label, "frame_id": fid})
        return ev

    def score(r):
        """Levenshtein accuracy already counts a false event as one error; a false keystroke costs the user more
        than a missed one, so each false event per minute costs 0.1 more. The median delay must stay under 0.4 s
        unless --max-delay says otherwise (the bar is 0.5 s; one validation stream cannot place a median closer
        than that)."""
        if r["delay_median_s"] is None or r["delay_median_s"] > max_delay:
            return -np.inf
        return r["levenshtein_accuracy"] - 0.1 * r["false_per_min"]

    grid = [at] if at else [(sm, thr, cd, op) for sm in (1, 2, 3, 4, 5)
                            for thr in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
                            for cd in (0.5, 0.8, 1.2) for op in (0.0, 1.0, 1.5, 2.0)]
    rows = []
    for smoothing, thr, cooldown, opposite in grid:
        rs = [match_events(replay(run, smoothing, thr, cooldown, opposite), run[4], run[2], run[5]) for run in runs]
        rows.append((float(np.mean([score(r) for r in rs])), smoothing, thr, cooldown, opposite, rs))
    # ties: the setting that matches more gestures
    rows.sort(key=lambda x: (-x[0], -sum(r["matched"] for r in x[-1])))
    for sc, sm, thr, cd, op, rs in rows[:8]:
        per = "; ".join(f"LA {r['levenshtein_accuracy']:.3f} false/min {r['false_per_min']:.2f} delay median "
                        f"{r['delay_median_s']} missed {r['missed']} false {r['false_events']}" for r in rs)
        print(f"smoothing {sm} threshold {thr} cooldown {cd} opposite {op}: score {sc:.3f} (matched "
              f"{sum(r['matched'] for r in rs)}, false {sum(r['false_events'] for r in rs)}) | {per}")
    _, sm, thr, cd, op, _ = rows[0]
    for k, run in enumerate(runs):
        stream, _, fps, _, gestures, _, cache = run
        ev = replay(run, sm, thr, cd, op)
        pairs = pair_events(ev, gestures, fps)
        print(stream)
        for g, (lab, a, b) in enumerate(gestures):
            if g not in pairs:
                print(f"  missed {lab} frames {a}-{b}")
        for i, e in enumerate(ev):
            if i not in pairs.values():
                lab, a, b = min(gestures, key=lambda g: min(abs(e["frame_id"] - g[1]), abs(e["frame_id"] - g[2])))
                print(f"  wrong {e['label']} at frame {e['frame_id']}: nearest gesture {lab} {a}-{b} "
                      f"({e['frame_id'] - b:+d} frames from its end)")
        if not at:   # the grid's best settings; one setting scored with --at does not replace them
            json.dump([dict(smoothing=sm_, threshold=t, cooldown_s=c, opposite_s=o, score=sc_, **rs[k])
                       for sc_, sm_, t, c, o, rs in rows[:8]], open(cache.with_suffix(".json"), "w"), indent=1)


if __name__ == "__main__":
    try:
        main()
    except GestureError as e:   # a model the config refuses, a stream without its CSV: one line naming it
        sys.exit(f"tune_debounce: {e}")
