#!/usr/bin/env bash
# Train four small-backbone models side by side on one GPU (Keras 3 on JAX), from data rendered there.
#
# Made for a borrowed GPU machine with JAX and OpenCV but no TensorFlow (this project's `device`
# tool): the keras wheel and its two missing dependencies travel in .whl/ (pip download ... keras
# namex optree). Each model is trained with the project's own `gesture train`; they differ in one
# choice each, on the bundled model's data (clip seeds 1 and 2, stream seeds 11-14):
#   A  the bundled architecture (width 0.125, 28x28 inside), 128 clips per step
#   B  width 0.25                       C  56x56 inside (--downsample 2)
#   D  as A, with 4 more 15-minute streams (seeds 15-18)
# Writes OUT/<name>.log and OUT/<name>.tgz (the model folder, without its checkpoint) for each.
# The models are scored afterwards on a CPU with TensorFlow: `gesture eval --model DIR ...`.
#
# Environment: OUT (default runs/gpu), MINUTES (each run's budget, default 5), C1/C2 (clips per
# class of the two clip sets, default 200/400), SM (minutes per stream, default 15). A small
# C1/C2/SM/MINUTES makes a dry run on a CPU (KERAS_BACKEND=jax, jax installed).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
MINUTES=${MINUTES:-5}
C1=${C1:-200} C2=${C2:-400} SM=${SM:-15}
mkdir -p "$OUT" data runs
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
G="python3 -m realtime.cli"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

# render the data in the background (CPU) while one training step is checked on the GPU
pids=()
$G synth clips --out data/train --per-class "$C1" --seed 1 --workers 4 >/dev/null 2>data/synth_train.err & pids+=($!)
$G synth clips --out data/train2 --per-class "$C2" --seed 2 --workers 4 >/dev/null 2>data/synth_train2.err & pids+=($!)
for s in 11 12 13 14 15 16 17 18; do
  $G synth stream --out "data/train_stream$s.mp4" --minutes "$SM" --seed "$s" >/dev/null 2>"data/synth_$s.err" & pids+=($!)
done
python3 - <<'EOF' || { stamp "GPU check failed"; kill "${pids[@]}" 2>/dev/null; exit 1; }
import time, numpy as np, jax, keras
from realtime.c3d import build_c3d
print("keras", keras.__version__, keras.backend.backend(), "jax", jax.__version__, jax.devices(), flush=True)
m = build_c3d(0.125, 16, 28, with_fc8=False, input_scale=1 / 64, motion=True, norm=True, downsample=1)
clf = keras.Sequential([m, keras.layers.Dense(5, activation="softmax")])
clf.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
x, y = np.random.rand(128, 16, 28, 28, 3).astype("float32"), np.random.randint(0, 5, 128)
clf.train_on_batch(x, y)
t = time.perf_counter()
for _ in range(20):
    loss = clf.train_on_batch(x, y)
print(f"GPU check: {(time.perf_counter() - t) / 20 * 1000:.1f} ms per step of 128 clips, loss {float(loss):.3f}")
EOF
stamp "GPU check passed; waiting for the data"
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
if [ "$fail" != 0 ]; then stamp "rendering failed:"; tail -n 3 data/*.err; exit 1; fi
stamp "data rendered: $(ls data/train*/Train_Data/*/ | grep -c mp4) clips, $(ls data/*.mp4 | wc -l) streams"

streams() { for s in "$@"; do printf -- '--stream data/train_stream%s.mp4 ' "$s"; done; }
train() {  # name, extra args
  local name=$1; shift
  $G train --meta data/train/meta.csv --meta data/train2/meta.csv --val-split 0.1 --seed 0 --minutes "$MINUTES" \
    --batch 128 --out "runs/$name" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  stamp "$name finished (rc $rc): $(tail -n 1 "$OUT/$name.log")"
  [ -f "runs/$name/model.json" ] && tar -czf "$OUT/$name.tgz" --exclude .checkpoint -C runs "$name"
}
S4=$(streams 11 12 13 14)
# shellcheck disable=SC2086
train A $S4 &
train B $S4 --width 0.25 &
train C $S4 --downsample 2 &
train D $S4 $(streams 15 16 17 18) &
wait
stamp "all done"
ls -la "$OUT"
