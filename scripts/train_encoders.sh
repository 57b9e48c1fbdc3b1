#!/usr/bin/env bash
# Train every shipped encoder, one after another, on one CPU thread; resumable (rerun to continue).
#   scripts/train_encoders.sh            # all, most important first
#   STEPS=300 scripts/train_encoders.sh  # shorter runs
# Each run writes runs/encoders/<id>/ (checkpoint, full weights) and a float16 copy
# assets/encoders/<id>.safetensors + .json. Finished ids are skipped. Then:
#   .venv/bin/python benchmarks/encoders_probe.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-600}
RUNS=${RUNS:-runs/encoders}
mkdir -p "$RUNS" assets/encoders

# id data method [extra args]
JOBS=(
  "fashion32-vicreg fashion vicreg"
  "faces64-vicreg faces vicreg"
  "fashion32-irmae fashion irmae"
  "faces64-irmae faces irmae"
  "textures64-irmae textures irmae"
  "textures64-vicreg textures vicreg"
  "fashion32-barlow fashion barlow"
  "faces64-barlow faces barlow"
  "fashion32-simclr fashion simclr"
  "faces64-simclr faces simclr"
  "fashion32-dclw fashion dclw"
  "faces64-dclw faces dclw"
  "faces64-dcl faces dcl"
  "fashion32-directclr fashion directclr"
  "faces64-directclr faces directclr"
  # plain autoencoders (IRMAE with l = 0), for the effective-rank comparison
  "fashion32-ae fashion irmae --irmae-layers 0"
  "faces64-ae faces irmae --irmae-layers 0"
)

for job in "${JOBS[@]}"; do
  read -r id data method extra <<<"$job"
  if [[ -f "assets/encoders/$id.safetensors" ]]; then
    echo "== $id: done, skipping"
    continue
  fi
  echo "== $id ($(date +%H:%M:%S))"
  # shellcheck disable=SC2086
  "$PY" -m studio train encoder --method "$method" --data "$data" --out "$RUNS/$id" --steps "$STEPS" \
    --threads 1 --export "assets/encoders/$id" $extra
done
echo "== all encoders trained ($(date +%H:%M:%S))"
