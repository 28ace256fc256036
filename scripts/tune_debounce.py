"""Pick debounce settings on a validation stream (never the test stream).

Plays the stream once through the real pipeline, keeps every head output, then replays the
pure Debouncer over them for a grid of settings and scores each with the same matching as
`gesture eval --stream`. Usage: python scripts/tune_debounce.py MODEL_DIR VAL_STREAM.mp4 [STRIDE]
"""

import json
import sys

import numpy as np

from realtime.config import load_config
from realtime.debounce import Debouncer
from realtime.evaluate import match_events, read_annotations
from realtime.modelio import load_model
from realtime.pipeline import Pipeline
from realtime.sources import VideoFileSource


class Keep:
    def __init__(self):
        self.preds = []

    def on_prediction(self, p):
        self.preds.append((p.frame_id, np.asarray(p.probs)))


def main():
    model_dir, stream = sys.argv[1], sys.argv[2]
    stride = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    cfg = load_config().replace(**{"pipeline.stride": stride})
    model = load_model(model_dir, cfg)
    src = VideoFileSource(stream).open()
    keep = Keep()
    Pipeline(src, model, cfg, sinks=[keep]).run()
    gestures = read_annotations(stream.rsplit(".", 1)[0] + ".csv", model.labels)
    n_frames = keep.preds[-1][0] + 1
    rows = []
    for smoothing in (1, 2, 3):
        for thr in (0.5, 0.6, 0.7, 0.8, 0.9):
            for cooldown in (0.5, 0.8, 1.2):
                db = Debouncer(model.labels, thr, min(0.4, thr - 0.1), cooldown, smoothing)
                ev = []
                for fid, p in keep.preds:
                    d = db.update(p, fid / src.fps)
                    if d.label:
                        ev.append({"label": d.label, "frame_id": fid})
                r = match_events(ev, gestures, src.fps, n_frames)
                rows.append((r["levenshtein_accuracy"] - 0.5 * r["false_per_min"], smoothing, thr, cooldown, r))
    rows.sort(key=lambda x: -x[0])
    for score, sm, thr, cd, r in rows[:8]:
        print(f"smoothing {sm} threshold {thr} cooldown {cd}: LA {r['levenshtein_accuracy']:.3f} "
              f"false/min {r['false_per_min']:.2f} delay median {r['delay_median_s']} missed {r['missed']} "
              f"false {r['false_events']}")
    json.dump([dict(smoothing=sm, threshold=t, cooldown_s=c, **r) for _, sm, t, c, r in rows[:8]],
              open(model_dir.rstrip("/") + "_tune.json", "w"), indent=1)


if __name__ == "__main__":
    main()
