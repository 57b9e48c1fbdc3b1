#!/usr/bin/env bash
# The trainer's GPU checks in one call of the device tool (about 5 minutes once the machine is up),
# for a session that is lent a GPU after the shipped models are trained:
#   1. tests/test_train.py on CUDA: the captured training step (generators/step_graph.py) must
#      train like the plain step; resume and growth tests run there too;
#   2. benchmarks/train_speed.py against pytorch_GAN_zoo: ours with CUDA graphs at the same batch
#      and at ours, and ours without graphs (what the capture buys).
# Prepare here: .venv/bin/python scripts/pack_for_gpu.py --zoo /tmp/zoo   (writes .gpudata/)
# Run: the device tool with carry [".gpudata/site", ".gpudata/zoo"] (the data is not needed) and
# the command  OUT=$OUT bash scripts/gpu_checks.sh
# Results under $OUT: tests.log, speed.log, speed_cuda.json. Knobs: PY, ROUNDS, EACH_S, BENCH_S.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-runs/gpu_out}
ROUNDS=${ROUNDS:-1}
EACH_S=${EACH_S:-6}
BENCH_S=${BENCH_S:-360}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/.gpudata/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
timeout 120 $PY -m pytest -q -p no:cacheprovider -rs tests/test_train.py -k "graph or resume or grows" 2>&1 \
    | tail -n 30 | tee "$OUT/tests.log"
if [ -d .gpudata/zoo ]; then
  timeout "$BENCH_S" $PY -m benchmarks.train_speed --zoo .gpudata/zoo --scratch /tmp/zoo_bench --device cuda \
      --seconds "$EACH_S" --rounds "$ROUNDS" --scales 3 --threads 4 --json "$OUT/speed_cuda.json" 2>&1 | tee "$OUT/speed.log"
else
  echo "no .gpudata/zoo: run scripts/pack_for_gpu.py --zoo /tmp/zoo first" | tee "$OUT/speed.log"
fi
