#!/usr/bin/env bash
# "Why the seed failed, measured": the same short training run with one of the seed's choices put back
# at a time, scored on held-out synthetic clips (and, for the background class, a held-out stream).
# Usage: bash scripts/ablation.sh DATA_DIR MINUTES   (DATA_DIR holds train/, test/ and test_stream.mp4)
set -euo pipefail
data=${1:-data}; minutes=${2:-5}; out=${data}/ablation
mkdir -p "$out"
run() {  # name, extra train flags...
  local name=$1; shift
  gesture train --meta "$data/train/meta.csv" --out "$out/$name" --backbone small --minutes "$minutes" --seed 0 "$@" \
    > "$out/$name.train.log" 2>&1
  gesture eval --model "$out/$name" --meta "$data/test/meta.csv" --json > "$out/$name.clips.json" 2> "$out/$name.eval.log"
  gesture eval --model "$out/$name" --stream "$data/test_stream.mp4" --json > "$out/$name.stream.json" 2>> "$out/$name.eval.log"
  python - "$out/$name" <<'PY'
import json, sys
d = sys.argv[1]
c, s = json.load(open(d + ".clips.json")), json.load(open(d + ".stream.json"))
g = [k for k in c["per_class"] if k != "no_gesture"]
cm = c["confusion"]; labels = c["labels"]
idx = [labels.index(k) for k in g]
acc4 = sum(cm[i][i] for i in idx) / max(1, sum(sum(cm[i]) for i in idx))
print(f"{d.split('/')[-1]}: clip_accuracy {c['clip_accuracy']:.3f} (gesture clips {acc4:.3f}), "
      f"stream levenshtein {s['levenshtein_accuracy']:.3f}, false/min {s['false_per_min']:.2f}, events {s['n_events']}/{s['n_gestures']}")
PY
}
run ours
run black_padding --context black
run no_background --no-background
run seed_head --head seed
