#!/usr/bin/env bash
# Which training recipe buys the most quality per CPU-hour? Faces at 32x32 (4 scales, the
# shipped models' lower widths 128/128/64/32, CPU batches 64/64/32/16) from scratch, every
# recipe for the same CPU time (--cpu-clock: one thread's process time, so runs on a shared or
# paused machine get equal compute), two seeds each, then benchmarks.quality on all of them.
#   bash benchmarks/train_recipe.sh            # MINUTES=6 CPU minutes a run; runs/recipe/
#   taskset -c 0 bash benchmarks/train_recipe.sh
# bf16 is not in the grid: at equal time it trained no better than fp32 (docs/benchmarks/training.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MINUTES=${MINUTES:-6}
OUT=${OUT:-runs/recipe}
mkdir -p "$OUT"
declare -A RECIPES=(
  [wgan-gp]="--loss wgan-gp --gp-every 1"
  [wgan-gp-lazy4]="--loss wgan-gp --gp-every 4"
  [logistic-r1]="--loss logistic --gp-every 16 --r1-gamma 0.1"
  [logistic-r1-diffaug]="--loss logistic --gp-every 16 --r1-gamma 0.1 --augment color,translation,cutout"
)
ORDER=(wgan-gp wgan-gp-lazy4 logistic-r1 logistic-r1-diffaug)
models=()
for seed in 0 1; do
  for name in "${ORDER[@]}"; do
    run="$OUT/${name}_s$seed"
    models+=("$run/final.safetensors")
    [ -f "$run/final.safetensors" ] && continue
    resume=""; [ -f "$run/checkpoint.pt" ] && resume="--resume"
    # shellcheck disable=SC2086
    $PY -m studio train gan --data faces --resolution 32 --depths 128,128,64,32 --batch-sizes 64,64,32,16 \
        --out "$run" --max-minutes "$MINUTES" --cpu-clock --threads 1 --seed "$seed" --ema-half-life 2000 \
        ${RECIPES[$name]} $resume > "$run.log" 2>&1
  done
done
$PY -m benchmarks.quality --model "${models[@]}" --data faces --json "$OUT/quality.json"
