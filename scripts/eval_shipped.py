"""Measures the shipped generators for their model cards, in one process (one torch start-up).

For each of faces64 / fashion32 / textures64 present in assets/: the sample grid
(assets/samples/NAME.png, seeds 0-35), SWD vs the real-vs-real floor on the held-out split
(benchmarks.swd) with the channel means of real and generated images (SWD cannot see a colour
shift), the nearest-neighbour copy check (benchmarks.nearest_neighbour, grid in
assets/samples/NAME_nn.png) and the time to generate 9 images on 2 threads.
Results: runs/eval/NAME.json, one line per model on stdout, and the measured numbers in the
model's row of assets/catalog.json (SWD, floor, ratio, generation time: what the studio's
"About this model" shows). Training figures in that row and the cards are edited by hand.

    .venv/bin/python scripts/eval_shipped.py [faces64 fashion32 textures64]
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.nearest_neighbour import check  # noqa: E402
from benchmarks.swd import evaluate  # noqa: E402
from generators.model import PGAN  # noqa: E402
from studio.data import load_dataset  # noqa: E402
from studio.imageio import grid, save_png  # noqa: E402

DATA = {"faces64": "faces", "fashion32": "fashion", "textures64": "textures"}


def generation_ms(model: PGAN, threads: int = 2) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    z = model.sample_latents(9, seed=0)
    for _ in range(3):
        model.generate(z)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        model.generate(z)
        times.append(time.perf_counter() - t)
    torch.set_num_threads(before)
    return 1000 * sorted(times)[len(times) // 2]


def update_catalog(name: str, swd: dict, generate_ms: float, catalog: Path = ROOT / "assets" / "catalog.json") -> None:
    """Write the measured numbers into the model's catalog row (the rest of the row is left as is)."""
    data = json.loads(catalog.read_text())
    row = next((m for m in data["models"] if m["id"] == name), None)
    if row is None:
        print(f"{name}: no row in {catalog}; not updated")
        return
    row.setdefault("metrics", {}).update(
        swd_x1e3=round(swd["swd"]["avg"], 2), swd_floor_x1e3=round(swd["floor"]["avg"], 2),
        swd_ratio_to_floor=round(swd["ratio"], 2), generate_9_ms_2_threads=round(generate_ms))
    row["status"] = re.sub(r"SWD [0-9.]+x", f"SWD {swd['ratio']:.2f}x", row.get("status", ""))
    catalog.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def main(names: list[str]) -> int:
    torch.set_num_threads(1)  # a shared 2-core box: two OpenMP threads mostly wait on each other
    out = ROOT / "runs" / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (ROOT / "assets" / "samples").mkdir(parents=True, exist_ok=True)
    for name in names:
        path = ROOT / "assets" / f"{name}.safetensors"
        if not path.is_file():
            print(f"skip {name}: no {path}")
            continue
        model = PGAN.load(path)
        kw = dict(size=model.resolution, channels=model.channels)
        images = model.generate(model.latents_for_seeds(list(range(36))))
        save_png(grid(images, nrow=6, scale=2 if model.resolution < 64 else 1), ROOT / "assets" / "samples" / f"{name}.png",
                 {"model": name, "seeds": "0-35"})
        val = load_dataset(DATA[name], split="val", **kw).float()
        val = val[torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:2048]]
        swd = evaluate(model, val)
        means = swd["channel_means"]
        train = load_dataset(DATA[name], split="train", **kw).float()
        nn = check(model, train, val, n=512)
        order = nn["_d"].argsort()[:8]
        grid(torch.cat([nn["_fake"][order], nn["_nearest"][order]]), nrow=8).save(ROOT / "assets" / "samples" / f"{name}_nn.png")
        result = {"model": name, "data": DATA[name], "swd": swd, "nearest_neighbour": {k: v for k, v in nn.items() if not k.startswith("_")},
                  "generate_9_ms_2_threads": round(generation_ms(model), 1),
                  "file_mb": round(path.stat().st_size / 1e6, 2)}
        (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        update_catalog(name, swd, result["generate_9_ms_2_threads"])
        print(f"{name}: SWD x1e3 {swd['swd']['avg']:.2f} vs floor {swd['floor']['avg']:.2f} (ratio {swd['ratio']:.2f}, "
              f"n={swd['n']}); NN p1/p10/p50 samples {nn['samples_quantiles_1_10_50']} vs val "
              f"{nn['val_quantiles_1_10_50']}; channel means real {means['real']} generated {means['generated']}; "
              f"9 images in {result['generate_9_ms_2_threads']} ms", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:] or list(DATA)))
