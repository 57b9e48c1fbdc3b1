#!/usr/bin/env bash
# Measures the shipped generators for their model cards: SWD vs the real-vs-real floor on the
# held-out split, the nearest-neighbour copy check, generation time of 9 images on 2 threads, and
# the sample grids in assets/samples/. Results: runs/eval/NAME.{swd,nn}.json and stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p runs/eval assets/samples
for pair in ${MODELS:-faces64:faces fashion32:fashion textures64:textures}; do
  name=${pair%%:*}; data=${pair##*:}
  [ -f "assets/$name.safetensors" ] || { echo "skip $name (no assets/$name.safetensors)"; continue; }
  $PY -m studio sample --model "assets/$name.safetensors" --seeds 0-35 --out "assets/samples/$name.png"
  $PY -m benchmarks.swd --model "assets/$name.safetensors" --data "$data" --threads 2 --json "runs/eval/$name.swd.json"
  $PY -m benchmarks.nearest_neighbour --model "assets/$name.safetensors" --data "$data" \
      --out "assets/samples/${name}_nn.png" --json "runs/eval/$name.nn.json" | tail -n +1 > /dev/null
  $PY - "$name" <<'PY'
import sys, time, torch
from generators.model import PGAN
torch.set_num_threads(2)
m = PGAN.load(f"assets/{sys.argv[1]}.safetensors")
z = m.sample_latents(9, seed=0)
for _ in range(3):
    m.generate(z)
times = []
for _ in range(20):
    t = time.perf_counter(); m.generate(z); times.append(time.perf_counter() - t)
times.sort()
print(f"{sys.argv[1]}: 9 images {m.resolution}x{m.resolution} in {1000 * times[10]:.1f} ms (median of 20, 2 threads)")
PY
done
