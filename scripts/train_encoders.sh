#!/usr/bin/env bash
# Train every shipped encoder, one after another, on one CPU thread; resumable (rerun to continue).
#   scripts/train_encoders.sh            # all, most important first
#   SCALE=0.5 scripts/train_encoders.sh  # every run at half its steps
# Each run writes runs/encoders/<id>/ (checkpoint, full weights) and a float16 copy
# assets/encoders/<id>.safetensors + .json. Finished ids are skipped. Then:
#   .venv/bin/python benchmarks/encoders_probe.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SCALE=${SCALE:-1}
RUNS=${RUNS:-runs/encoders}
mkdir -p "$RUNS" assets/encoders

# id data method steps [extra args]; batch 128 unless given, about 0.3 s a step on one free core
JOBS=(
  "fashion32-vicreg fashion vicreg 600"
  "faces64-vicreg faces vicreg 600"
  "fashion32-irmae fashion irmae 400"
  "faces64-irmae faces irmae 400"
  "textures64-irmae textures irmae 400"
  "textures64-vicreg textures vicreg 400"
  "fashion32-barlow fashion barlow 400"
  "faces64-barlow faces barlow 400"
  "fashion32-simclr fashion simclr 400"
  "faces64-simclr faces simclr 400"
  # the best probes: the multiscale head (representation = pools of the last two stages' maps:
  # 1x1 and 2x2 of the last, 2x2 and 4x4 of the one above, D = 1920), batch 256; 20 min at most
  # on one free core
  "fashion32-dclw fashion dclw 1500 --head multiscale --batch-size 256"
  "faces64-dclw faces dclw 1200 --head multiscale --batch-size 256"
  "faces64-dcl faces dcl 400"
  "fashion32-directclr fashion directclr 400"
  "faces64-directclr faces directclr 400"
  # plain autoencoders (IRMAE with l = 0), for the effective-rank comparison
  "fashion32-ae fashion irmae 400 --irmae-layers 0"
  "faces64-ae faces irmae 400 --irmae-layers 0"
)

for job in "${JOBS[@]}"; do
  read -r id data method steps extra <<<"$job"
  steps=$(awk -v s="$steps" -v k="$SCALE" 'BEGIN { printf "%d", s * k }')
  if [[ -f "assets/encoders/$id.safetensors" ]]; then
    echo "== $id: done, skipping"
    continue
  fi
  echo "== $id ($(date +%H:%M:%S))"
  # shellcheck disable=SC2086
  "$PY" -m studio train encoder --method "$method" --data "$data" --out "$RUNS/$id" --steps "$steps" \
    --threads 1 --export "assets/encoders/$id" $extra
done
echo "== all encoders trained ($(date +%H:%M:%S))"
