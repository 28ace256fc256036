#!/usr/bin/env bash
# "Why the seed failed, measured": the same short training run with one of the seed's choices put back
# at a time, scored on held-out synthetic clips and a held-out stream (docs/ablation.md).
# Usage: bash scripts/ablation.sh DATA_DIR [EPOCHS [MINUTES]]   (DATA_DIR holds train/, test/ and test_stream.mp4+.csv)
# A fixed number of stage-1 passes (--epochs), not a time budget, so every run gets the same steps.
set -euo pipefail
data=${1:-data}; epochs=${2:-12}; minutes=${3:-8}; out=${data}/ablation
mkdir -p "$out"
# the seed's preprocessing: the whole frame squashed to 112x112, no mean subtraction
SEED_PRE=(--set "preprocess.resize=[112, 112]" --set "preprocess.crop=[0, 0]" --set "preprocess.mean_bgr=[0, 0, 0]")
run() {  # name, then train flags, then `--` and flags for both train and eval
  local name=$1; shift
  local train=() both=()
  while [[ $# -gt 0 && $1 != -- ]]; do train+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift && both=("$@")
  gesture train --meta "$data/train/meta.csv" --out "$out/$name" --backbone small --epochs "$epochs" --minutes "$minutes" --seed 0 \
    ${train[@]+"${train[@]}"} ${both[@]+"${both[@]}"} > "$out/$name.train.log" 2>&1
  gesture eval --model "$out/$name" --meta "$data/test/meta.csv" --json ${both[@]+"${both[@]}"} \
    > "$out/$name.clips.json" 2> "$out/$name.eval.log"
  gesture eval --model "$out/$name" --stream "$data/test_stream.mp4" --json ${both[@]+"${both[@]}"} \
    > "$out/$name.stream.json" 2>> "$out/$name.eval.log"
  python - "$out/$name" <<'PY'
import json, sys
d = sys.argv[1]
c, s = json.load(open(d + ".clips.json")), json.load(open(d + ".stream.json"))
g = [k for k in c["per_class"] if k != "no_gesture"]
cm = c["confusion"]; labels = c["labels"]
idx = [labels.index(k) for k in g]
acc4 = sum(cm[i][i] for i in idx) / max(1, sum(sum(cm[i]) for i in idx))
print(f"{d.split('/')[-1]}: clip_accuracy {c['clip_accuracy']:.3f} (gesture clips {acc4:.3f}), "
      f"stream levenshtein {s['levenshtein_accuracy']:.3f}, false/min {s['false_per_min']:.2f}, "
      f"events {s['n_events']}/{s['n_gestures']}, delay median {s['delay_median_s']}")
PY
}
run ours
run black_padding --context black
run no_background --no-background
run seed_head --head seed
run seed_preprocess -- "${SEED_PRE[@]}"
