"""``gesture eval``: clip accuracy on a meta CSV, or online event metrics on an annotated stream.

Clip accuracy: each clip is placed in the same held-frame context as in
training and the head decides on the windows ending 0 and 8 frames after the
clip's last frame (two consecutive stride-8 decisions); the prediction is the
arg-max of their mean.

Stream metrics: the stream is played through the very same :class:`Pipeline`
as ``gesture live`` (file source, every frame, deterministic). An event
matches an annotated gesture when its label is the gesture's and its window
end frame lies in ``[start, end + 1.5 s]``; each gesture matches at most one
event. Unmatched events are false; unmatched gestures are missed.

* ``levenshtein_accuracy`` = 1 - edit distance(event labels, gesture labels) / n_gestures
  (Köpüklü et al. 2019, online detection);
* ``false_per_min``: false events per minute of ``no_gesture`` time;
* ``delay_*_s``: window end frame of the matched event minus the gesture's end frame.

``events`` lists every event on the video's own clock (``frame_id``, ``time_s``). A video with no
annotations (no ``S.csv`` beside it and no ``--annotations``: a user's own footage) is played all
the same; its events come back and the scores are None.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from . import mirror
from .config import NO_GESTURE, Config
from .errors import GestureError

MATCH_TOLERANCE_S = 1.5


def confusion(y_true, y_pred, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    return cm


def clip_windows(crops: np.ndarray, cfg: Config, offsets=(0, 8)) -> tuple[np.ndarray, list[list[int]]]:
    """Deterministic context for one clip: held first frame before it, held last frame after it.

    Returns the frame sequence and, per offset, the 8 clip end frames of the window ending
    ``offset`` frames after the clip's last frame.
    """
    from .windows import held

    p = cfg.pipeline
    span = p.span
    rng = np.random.default_rng(0)
    g = span - 1
    L = len(crops)
    pre = held(crops[0], max(0, g - L + 1), rng, tremor=0.0)
    body = crops[max(0, L - (g + 1)):]
    post = held(crops[-1], max(offsets), rng, tremor=0.0)
    seq = np.concatenate([x for x in (pre, body, post) if len(x)])
    from .engine import window_clip_ends

    return seq, [window_clip_ends(g + o, p.window, p.feature_spacing) for o in offsets]


def answer_offsets(delay: int) -> tuple[int, int]:
    """Where a clip's answer is read: the windows ending 0 and 8 frames after it, moved later by the
    ``label_delay`` the head was trained with (``gesture train --label-delay``), the head's own answer point."""
    return delay, delay + 8


def clip_predictions(model, cfg: Config, clips, labels, batch: int = 16, progress: bool = True):
    """(y_true, y_pred, probs) for clips ``(T, size, size, 3) uint8`` with integer ``labels``."""
    from tqdm import tqdm

    from .modelio import predict_fn

    # uint8 crops in, the Sports1M means subtracted inside the compiled graph, as the live engine does:
    # the same float32 input, without a float32 copy of every overlapping clip made in NumPy first
    bb, hd = predict_fn(model.backbone, mean_bgr=cfg.preprocess.mean_bgr), predict_fn(model.head)
    L = cfg.pipeline.clip_len
    views = (False, True) if mirror.enabled(cfg.pipeline.mirror_average, model.spec) else (False,)  # as the live engine
    swap = mirror.swap_index(model.labels)
    y_pred, probs_all = [], []
    for crops in tqdm(clips, desc="clip accuracy", unit="clip", disable=not progress or None):
        seq, wins = clip_windows(crops, cfg, answer_offsets(int((model.spec.trained or {}).get("label_delay", 0))))
        ends = sorted({e for w in wins for e in w})
        feats = {v: {} for v in views}
        for i in range(0, len(ends), batch):
            chunk = ends[i : i + batch]
            x = np.stack([seq[e - L + 1 : e + 1] for e in chunk])
            for v in views:
                xv = np.ascontiguousarray(mirror.mirror_clips(x)) if v else x
                for e, f in zip(chunk, bb(xv)):
                    feats[v][e] = f
        ps = [np.asarray(hd(np.stack([np.stack([feats[v][e] for e in win]) for win in wins]))) for v in views]
        pr = (mirror.combine(ps[0], ps[1], swap) if len(ps) == 2 else ps[0]).mean(0)
        probs_all.append(pr)
        y_pred.append(int(np.argmax(pr)))
    return list(labels), y_pred, np.array(probs_all)


def per_class(cm: np.ndarray, labels) -> dict:
    out = {}
    for i, lab in enumerate(labels):
        tp = cm[i, i]
        out[lab] = {
            "precision": float(tp / cm[:, i].sum()) if cm[:, i].sum() else None,
            "recall": float(tp / cm[i].sum()) if cm[i].sum() else None,
            "support": int(cm[i].sum()),
        }
    return out


def levenshtein(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def read_annotations(path: str | Path, labels) -> list[tuple[str, int, int]]:
    """The gestures ``(label, start_frame, end_frame)`` of an annotated stream, sorted by end frame.

    Frames count from 0, both ends included (as ``gesture synth stream`` writes them). Rows labelled
    ``no_gesture`` are background, not gestures: a CSV that annotates every stretch of the video keeps
    only its gestures. Errors name the file, the row and the field.
    """
    from .dataset import read_csv_rows

    path = Path(path)
    if not path.exists():
        raise GestureError(f"{path}: annotations CSV not found")
    rows = read_csv_rows(path, "annotations CSV", "label,start_frame,end_frame")
    head = [h.strip() for h in rows[0]]
    for c in ("label", "start_frame", "end_frame"):
        if c not in head:
            raise GestureError(f"{path}: missing column '{c}' (header: {','.join(head)})")
    li, si, ei = head.index("label"), head.index("start_frame"), head.index("end_frame")
    out = []
    for n, r in enumerate(rows[1:], start=2):
        if not r or all(not c.strip() for c in r):
            continue
        if len(r) <= max(li, si, ei):
            raise GestureError(f"{path}: row {n}: expected {len(head)} fields, got {len(r)}")
        lab = r[li].strip()
        try:
            s, e = int(r[si]), int(r[ei])
        except ValueError:
            raise GestureError(f"{path}: row {n}: start_frame/end_frame must be integers, "
                               f"got {r[si].strip()!r}, {r[ei].strip()!r}") from None
        if lab not in labels:
            raise GestureError(f"{path}: row {n}: unknown label '{lab}' (labels: {', '.join(labels)})")
        if s < 0 or e < s:
            raise GestureError(f"{path}: row {n}: need 0 <= start_frame <= end_frame, got {s}, {e}")
        if lab != NO_GESTURE:
            out.append((lab, s, e))
    return sorted(out, key=lambda x: x[2])


def fit_to_video(gestures, n_frames: int, path, note: bool = True) -> list[tuple[str, int, int]]:
    """The annotated gestures a video of ``n_frames`` frames can show. One that ends after its last frame
    (a recording stopped mid-gesture, or a typo) is scored as ending there, one that starts after it is not
    scored, and a note on stderr says so (``note``); if none starts inside the video, the
    annotations are not this video's and a :class:`GestureError` says so."""
    last = n_frames - 1
    inside = [(lab, s, min(e, last)) for lab, s, e in gestures if s <= last]
    if gestures and not inside:
        raise GestureError(f"{path}: every gesture starts after the video's last frame {last} ({n_frames} frames): "
                           "the annotations of another video, or frames counted at another rate?")
    past = [(lab, s, e) for lab, s, e in gestures if e > last]
    if note and len(past) == 1:
        lab, s, e = past[0]
        print(f"note: {path}: {lab} {s}-{e} goes past the video's last frame {last} ({n_frames} frames): "
              + ("scored as ending there" if s <= last else "not scored"), file=sys.stderr)
    elif note and past:
        cut = sum(s <= last for _, s, _ in past)
        print(f"note: {path}: {len(past)} of {len(gestures)} gestures go past the video's last frame {last} "
              f"({n_frames} frames): {cut} scored as ending there, {len(past) - cut} not scored; the annotations "
              "of another video, or frames counted at another rate?", file=sys.stderr)
    return inside


def pair_events(events: list[dict], gestures, fps: float) -> dict[int, int]:
    """``{gesture index: event index}``: each gesture ``(label, start, end)`` takes the first unused event
    of its label whose ``frame_id`` lies in ``[start, end + MATCH_TOLERANCE_S]``."""
    tol = int(round(MATCH_TOLERANCE_S * fps))
    pairs: dict[int, int] = {}
    for g, (lab, s, e) in enumerate(gestures):
        for i, ev in enumerate(events):
            if i not in pairs.values() and ev["label"] == lab and s <= ev["frame_id"] <= e + tol:
                pairs[g] = i
                break
    return pairs


def match_events(events: list[dict], gestures, fps: float, n_frames: int) -> dict:
    """Match events (dicts with label, frame_id) to gestures ``(label, start, end)``; compute the metrics."""
    pairs = pair_events(events, gestures, fps)
    matched = len(pairs)
    delays = [(events[i]["frame_id"] - gestures[g][2]) / fps for g, i in pairs.items()]
    false_events = len(events) - matched
    gesture_frames = sum(e - s + 1 for _, s, e in gestures)
    bg_min = max(n_frames - gesture_frames, 1) / fps / 60
    lev = levenshtein([ev["label"] for ev in events], [g[0] for g in gestures])
    n = max(len(gestures), 1)
    return {
        "levenshtein_accuracy": max(0.0, 1 - lev / n),
        "false_per_min": false_events / bg_min,
        "delay_median_s": float(np.median(delays)) if delays else None,
        "delay_p95_s": float(np.percentile(delays, 95)) if delays else None,
        "n_events": len(events),
        "n_gestures": len(gestures),
        "matched": matched,
        "missed": len(gestures) - matched,
        "false_events": false_events,
        "no_gesture_minutes": bg_min,
    }


def eval_stream(model, cfg: Config, stream: str | Path, annotations: str | Path | None,
                plot: str | Path | None = None) -> dict:
    """Play ``stream`` through the live engine and score its events against the annotations (``--annotations``,
    else ``S.csv`` beside the video). Footage without annotations (a user's own video) is played all the same:
    the events come back, and the scores are None. ``plot``: also draw the run as a timeline PNG there."""
    from .pipeline import Pipeline
    from .preprocess import shape_note
    from .sinks import ProgressSink
    from .sources import VideoFileSource
    from .timeline import PredictionLog, plot_timeline, timeline_title

    stream = Path(stream)
    ann = Path(annotations) if annotations else stream.with_suffix(".csv")
    gestures = read_annotations(ann, model.labels) if annotations or ann.exists() else None
    src = VideoFileSource(stream, realtime=False).open()
    if gestures is not None and src.frame_count > 0:   # the container's count: an early check, not the last word
        try:
            fit_to_video(gestures, src.frame_count, ann, note=False)
        except GestureError:
            src.close()
            raise
    note = shape_note(src.frame_size, cfg.preprocess)
    if note:
        print(f"note: {stream}: {note}", file=sys.stderr)
    log = PredictionLog() if plot else None
    bar = ProgressSink(src.frame_count, f"playing {stream.name}")
    pipe = Pipeline(src, model, cfg, sinks=[log, bar] if log else [bar])
    pipe.run()
    light = pipe.capture.meter.summary()
    if light:   # a dark room or light bands: the scores below are partly the light's
        print(f"note: {stream}: {light}", file=sys.stderr)
    repeats = pipe.adapter.repeat_note(pipe.stats.frames) if pipe.adapter is not None else None
    if repeats:
        print(f"note: {stream}: {repeats}", file=sys.stderr)
    events = [e.to_json() for e in pipe.events]
    if gestures is not None:
        gestures = fit_to_video(gestures, pipe.stats.frames, ann)
        res = match_events(events, gestures, src.fps, pipe.stats.frames)
        res["annotations"] = str(ann)
    else:
        print(f"note: {ann.name} not found beside {stream.name}: events only, no scores "
              "(give --annotations S.csv to score them)", file=sys.stderr)
        minutes = max(pipe.stats.frames, 1) / src.fps / 60
        res = {"levenshtein_accuracy": None, "false_per_min": None, "delay_median_s": None, "delay_p95_s": None,
               "n_events": len(events), "n_gestures": None, "annotations": None, "events_per_min": len(events) / minutes}
    res["frames"] = pipe.stats.frames
    res["source_fps"] = float(src.fps)
    res["model_fps"] = float(pipe.frame_rate)  # differs when the stream was resampled (realtime.framerate)
    res["light_frames"] = dict(pipe.capture.meter.counts)   # frames the light was ok, dim, too dark, flickering
    res["repeated_frames"] = pipe.adapter.repeats if pipe.adapter is not None else 0   # dropped: the picture before
    # what happened when, on the video's own clock (deterministic, unlike the engine's monotonic times)
    res["events"] = [{"label": e["label"], "frame_id": e["frame_id"], "time_s": round(e["frame_id"] / src.fps, 3),
                      "confidence": e["confidence"]} for e in events]
    if log is not None:
        frames, smoothed = log.arrays(len(model.labels))
        try:
            res["plot"] = str(plot_timeline(
                plot, labels=model.labels, fps=src.fps, n_frames=pipe.stats.frames, frames=frames,
                smoothed=smoothed, threshold=cfg.debounce.threshold, events=events, gestures=gestures,
                pairs=pair_events(events, gestures, src.fps) if gestures is not None else None,
                title=timeline_title(stream, res)))
        except (OSError, GestureError) as e:  # checked before the run, but a disk can fill meanwhile: keep the scores
            res["plot"] = None
            print(f"warning: {plot}: the timeline picture was not written ({getattr(e, 'strerror', None) or e})",
                  file=sys.stderr)
    return res


def eval_command(args, cfg: Config) -> int:
    from .dataset import load_crops, read_meta
    from .modelio import load_model
    from .preprocess import config_for_model

    if not args.meta and not args.stream:
        raise GestureError("gesture eval: give --meta CSV (clip accuracy) and/or --stream S.mp4 (event metrics)")
    # every input is checked before the model loads and the clips play: a typo in --stream is not found out
    # after minutes of --meta
    if args.stream and not Path(args.stream).is_file():
        raise GestureError(f"{args.stream}: --stream video not found")
    if args.annotations:
        read_annotations(args.annotations, cfg.labels)
    if args.plot and not args.stream:
        raise GestureError("gesture eval: --plot draws a stream's timeline; give --stream S.mp4 with it")
    if args.plot:
        from .timeline import check_plot_path

        check_plot_path(args.plot)
    items = read_meta(args.meta, cfg.labels) if args.meta else []
    model = load_model(args.model or cfg.model.path, cfg, precision=cfg.pipeline.precision, weights=args.weights)
    cfg = config_for_model(cfg, model.spec.width, model.spec.preprocess)   # clips cut as the model cuts frames
    result: dict = {"model": str(model.path), "stride": cfg.pipeline.stride, "precision": cfg.pipeline.precision,
                    "mirror_average": mirror.enabled(cfg.pipeline.mirror_average, model.spec)}
    if args.meta:
        clips, labels, skipped = [], [], []
        for it in items:
            c = load_crops(it, cfg)
            if len(c) < cfg.pipeline.clip_len:
                skipped.append(str(it.path))
                continue
            clips.append(c)
            labels.append(cfg.labels.index(it.label))
        y_true, y_pred, _ = clip_predictions(model, cfg, clips, labels)
        cm = confusion(y_true, y_pred, len(cfg.labels))
        result.update({
            "clip_accuracy": float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else None,
            "n_clips": len(y_true),
            "skipped": skipped,
            "per_class": per_class(cm, cfg.labels),
            "confusion": cm.tolist(),
            "labels": list(cfg.labels),
        })
    if args.stream:
        result.update(eval_stream(model, cfg, args.stream, args.annotations, plot=args.plot))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            if k in ("events", "confusion", "per_class"):
                continue
            print(f"{k}: {v}")
        if args.stream and result.get("annotations") is None:   # unscored footage: the events are the answer
            for e in result["events"]:
                print(f"  {e['time_s']:8.2f} s  frame {e['frame_id']:6d}  {e['label']:16s} {e['confidence']:.3f}")
        if "per_class" in result:
            for lab, m in result["per_class"].items():
                print(f"  {lab:16s} precision {m['precision']}  recall {m['recall']}  n={m['support']}")
    return 0
