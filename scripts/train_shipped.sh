#!/usr/bin/env bash
# Reproduces the three shipped generators on a 2-core CPU machine: faces64 in one process,
# fashion32 then textures64 in a second one, one torch thread each, about 90 minutes
# of wall time in all (FACES_MIN etc. override).
# Each run plans its phase lengths from measured speed to fit --max-minutes, checkpoints every
# 5 minutes into runs/NAME/ (resume a stopped run by adding --resume to the same command), and
# exports the EMA generator + discriminator to assets/NAME.safetensors/.json at the end.
# faces64 keeps the gradient penalty on every step; fashion32 and textures64 use the lazy penalty
# (every 4th D step, weight 4 x 10), a documented deviation that buys ~1.3x more images.
# Needs: apt-get install -y dataset-fashion-mnist openarena-081-textures
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESUME=${RESUME:-}   # RESUME=--resume continues the runs in runs/
FACES_MIN=${FACES_MIN:-90}
FASHION_MIN=${FASHION_MIN:-35}
TEXTURES_MIN=${TEXTURES_MIN:-50}
mkdir -p runs

train() {  # NAME DATA MINUTES GP_EVERY
  $PY -m studio train gan --data "$2" --out "runs/$1" --max-minutes "$3" --threads 1 --seed 0 \
      --latent-dim 64 --gp-every "$4" --export "assets/$1" $RESUME
}

train faces64 faces "$FACES_MIN" 1 > runs/faces64.log 2>&1 &
FACES=$!
( train fashion32 fashion "$FASHION_MIN" 4 > runs/fashion32.log 2>&1 &&
  train textures64 textures "$TEXTURES_MIN" 4 > runs/textures64.log 2>&1 ) &
OTHERS=$!
echo "faces64: pid $FACES (runs/faces64.log); fashion32 -> textures64: pid $OTHERS"
wait $FACES $OTHERS
