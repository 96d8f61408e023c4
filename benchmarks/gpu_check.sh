#!/usr/bin/env bash
# The GPU check (issue 15) in one run of at most ~6 minutes on one GPU:
#   1. throughput of DiT-S/B/L at the paper's latent shape (benchmarks/bench_gpu.py), alone on
#      the GPU: eager, then compiled (DiT-B first) until THROUGHPUT_S runs out;
#   2. a short real training of `gpu-uniform` (DiT-S, pixel space) on uniform motion for
#      TRAIN_MIN minutes, then its continuations of the ID and OOD splits, scored; beside it
#   3. the GPU tests (tests/test_gpu.py, marker `gpu`): every preset's bf16 step, sampling,
#      the autoencoder, checkpoints across devices, a torchrun launch (small: they share the
#      GPU with the training, whose steps/s are therefore a little low).
# Each part is bounded by `timeout`; a failing part does not stop the next one. Results land
# in WORK/logs and, packed after every part, in OUT/gpu-check.tgz (default OUT ./gpu-check-out):
# *.log, tests.xml, throughput.json, train-metrics.jsonl, {id,ood}-summary.json and the
# sampled videos ({id,ood}-videos.npz, compressed).
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine, from the repo root
#   TRAIN_MIN=0.5 THROUGHPUT_S=40 bash benchmarks/gpu_check.sh /tmp/out   # a quicker pass
#   DEVICE=cpu PY=.venv/bin/python TRAIN_MIN=0.3 THROUGHPUT_S=30 \
#     TRAIN_SETS="run.batch_size=8 run.eval_every=10 run.eval_videos=8" \
#     BENCH_ARGS="--sizes DiT-S --batch 2 --steps 1 --no-max-batch" \
#     TEST_ARGS="-k cpu-tiny" SAMPLE_ARGS="--limit 8 --steps 2" \
#     bash benchmarks/gpu_check.sh /tmp/out        # the script itself, on a CPU
#
# Python packages the machine lacks (its image has torch, numpy, h5py, matplotlib, scipy,
# safetensors, tensorboard, tqdm, pytest) travel as wheels in .whl/, installed to /tmp/site;
# fetch them once where pip works (python 3.12 there), .whl/ being git-ignored:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl av==18.1.0 pymunk==7.3.1 cffi==2.1.1 pycparser
set -u
OUT=${OUT:-${1:-gpu-check-out}}
TRAIN_MIN=${TRAIN_MIN:-2}
THROUGHPUT_S=${THROUGHPUT_S:-170}   # seconds for part 1
PY=${PY:-python3}
WORK=${WORK:-/tmp/phylaw-gpu}
DEVICE=${DEVICE:-cuda}
TRAIN_SETS=${TRAIN_SETS:-}   # extra --set KEY=VALUE of the training, space-separated
BENCH_ARGS=${BENCH_ARGS:-}   # extra arguments of bench_gpu.py
TEST_ARGS=${TEST_ARGS:-}     # extra arguments of pytest
SAMPLE_ARGS=${SAMPLE_ARGS:-} # extra arguments of phylaw sample
LOGS=$WORK/logs
mkdir -p "$OUT" "$LOGS"
pack() { tar czf "$OUT/gpu-check.tgz" -C "$LOGS" . ; }
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
section() { echo; echo "=== $1 (at $(elapsed) s)"; }

section "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
lscpu | grep -E "^Model name|^CPU\(s\)"
$PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'numpy', numpy.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda')"
} 2>&1 | tee "$LOGS/machine.log"

section "data"
for spec in "train 30K u-train" "eval-id 256 u-eval-id" "eval-ood 384 u-eval-ood"; do
  set -- $spec
  [ -f "$WORK/$3/manifest.json" ] || $PY -m phylaw.cli data build --scenario uniform \
    --split "$1" --size "$2" --out "$WORK/$3" 2>&1 | tail -1
done

section "1. throughput (DiT-S/B/L, latent 4x9x16x16, patch 1x2x2)"
timeout $(( THROUGHPUT_S + 60 )) $PY benchmarks/bench_gpu.py --deadline "$THROUGHPUT_S" --device "$DEVICE" \
  --json "$LOGS/throughput.json" $BENCH_ARGS 2>&1 | tee "$LOGS/throughput.log"
pack

section "2. training gpu-uniform for $TRAIN_MIN min, and 3. the GPU tests beside it"
( PHYLAW_TEST_DEVICE=$DEVICE timeout 240 $PY -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider --durations=5 \
    --junitxml "$LOGS/tests.xml" $TEST_ARGS >"$LOGS/tests.log" 2>&1; echo "tests exit $?" >>"$LOGS/tests.log" ) &
TESTS=$!
RUN=$WORK/run
rm -rf "$RUN"
timeout $(( ${TRAIN_MIN%.*} * 60 + 150 )) $PY -m phylaw.cli train --preset gpu-uniform \
  --data "$WORK/u-train" --out "$RUN" --minutes "$TRAIN_MIN" --quiet \
  --set data.eval_id="$WORK/u-eval-id" --set data.eval_ood="$WORK/u-eval-ood" \
  $(for kv in $TRAIN_SETS; do echo --set "$kv"; done) >"$LOGS/train.log" 2>&1
echo "train exit $?"; tail -4 "$LOGS/train.log"
cp "$RUN/metrics.jsonl" "$LOGS/train-metrics.jsonl" 2>/dev/null
for split in id ood; do
  rm -rf "$WORK/s-$split" "$WORK/e-$split"
  timeout 90 $PY -m phylaw.cli sample --run "$RUN" --data "$WORK/u-eval-$split" \
    --out "$WORK/s-$split" --device "$DEVICE" --batch-size 128 --quiet $SAMPLE_ARGS 2>&1 | tail -2
  timeout 60 $PY -m phylaw.cli eval --videos "$WORK/s-$split" --data "$WORK/u-eval-$split" \
    --out "$WORK/e-$split" 2>&1 | tee "$LOGS/eval-$split.log" | tail -8
  cp "$WORK/e-$split/summary.json" "$LOGS/$split-summary.json" 2>/dev/null
  $PY -c "import numpy as np, sys; d = dict(np.load(sys.argv[1])); \
np.savez_compressed(sys.argv[2], **d)" "$WORK/s-$split/videos.npz" "$LOGS/$split-videos.npz"
  pack
done
wait $TESTS
section "3. GPU tests"
tail -15 "$LOGS/tests.log"
pack
section "done"
