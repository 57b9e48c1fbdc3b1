"""Linear-probe and k-NN accuracy, singular spectra and effective ranks of the shipped encoders.

    python benchmarks/encoders_probe.py [--encoders assets/encoders] [--out assets/encoders]

Held-out data: Fashion-MNIST's official test set (10 classes) and the faces validation split
(smiling vs neutral), both as `studio.data` defines them. Probes train on (a seeded subset of) the
training split (all of it by default), the linear probe's L2 weight chosen on a tenth of those training rows
(`tuned_linear_probe`; the test data never chooses it). Baseline rows: raw pixels. Textures have
no labels: effective rank only.
Writes OUT/probe.json, OUT/probe_table.md and OUT/spectrum_<data>.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.encoders_plot import line_plot  # noqa: E402
from encoders import load_encoder  # noqa: E402
from encoders.diagnostics import effective_rank, embed, knn_accuracy, singular_spectrum, tuned_linear_probe  # noqa: E402
from studio.data import load_dataset, load_textures  # noqa: E402

PREFIX = {"fashion": "fashion32", "faces": "faces64", "textures": "textures64"}
TASK = {"fashion": "Fashion-MNIST 10 classes (test set)", "faces": "smiling vs neutral (faces val split)"}


def labelled(data: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = load_dataset(data, split=split)
    names = sorted(set(s.labels))
    return s.images, torch.tensor([names.index(label) for label in s.labels])


def subset(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


def evaluate(encoders: list[Path], data: str, *, train_subset: int) -> dict:
    if data == "textures":
        val = load_textures(split="val").images
        rows = {}
        for path in encoders:
            f = embed(load_encoder(path), val)
            rows[path.stem] = {"effective_rank": effective_rank(f), "spectrum": singular_spectrum(f).tolist()}
        return rows
    xtr, ytr = labelled(data, "train")
    xva, yva = labelled(data, "val")
    idx = subset(len(xtr), train_subset or len(xtr))
    xtr, ytr = xtr[idx], ytr[idx]
    pix_tr, pix_va = xtr.flatten(1).float() / 127.5 - 1, xva.flatten(1).float() / 127.5 - 1
    acc, wd = tuned_linear_probe(pix_tr, ytr, pix_va, yva)
    rows = {"pixels": {"probe": acc, "probe_weight_decay": wd, "knn": knn_accuracy(pix_tr, ytr, pix_va, yva)}}
    print(f"{data} pixels {rows['pixels']}", flush=True)
    for path in encoders:
        t = time.perf_counter()
        enc = load_encoder(path)
        ftr, fva = embed(enc, xtr), embed(enc, xva)
        acc, wd = tuned_linear_probe(ftr, ytr, fva, yva)
        rows[path.stem] = {"probe": acc, "probe_weight_decay": wd, "knn": knn_accuracy(ftr, ytr, fva, yva),
                           "effective_rank": effective_rank(ftr), "dim": ftr.shape[1],
                           "spectrum": singular_spectrum(ftr).tolist(),
                           "train_seconds": enc.info.get("train_seconds"),
                           "train_cpu_seconds": enc.info.get("train_cpu_seconds"), "steps": enc.info.get("steps"),
                           "reconstruction_mse": enc.info.get("reconstruction_mse")}
        print(f"{path.stem}: probe {rows[path.stem]['probe']:.4f} knn {rows[path.stem]['knn']:.4f} "
              f"erank {rows[path.stem]['effective_rank']:.1f} ({time.perf_counter() - t:.0f}s)", flush=True)
    return rows


def table(results: dict) -> str:
    lines = ["| encoder | task | linear probe | k-NN (k=20) | effective rank / D | steps | train CPU / wall |",
             "|---|---|---|---|---|---|---|"]
    for data, rows in results.items():
        for name, r in rows.items():
            if "probe" not in r:
                lines.append(f"| {name} | (no labels) | | | {r['effective_rank']:.1f} | | |")
                continue
            rank = f"{r['effective_rank']:.1f} / {r['dim']}" if "effective_rank" in r else ""
            cpu = f"{r['train_cpu_seconds'] / 60:.1f}" if r.get("train_cpu_seconds") else "?"
            secs = f"{cpu} / {r['train_seconds'] / 60:.1f} min" if r.get("train_seconds") else ""
            lines.append(f"| {name} | {TASK[data]} | {100 * r['probe']:.1f}% | {100 * r['knn']:.1f}% | {rank} | "
                         f"{r.get('steps') or ''} | {secs} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="assets/encoders")
    ap.add_argument("--out", default="assets/encoders")
    ap.add_argument("--data", nargs="+", default=["fashion", "faces", "textures"])
    ap.add_argument("--train-subset", type=int, default=0,
                    help="probe training images (a seeded subset; 0 = the whole training split)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = json.loads((out / "probe.json").read_text()) if (out / "probe.json").is_file() else {}
    for data in args.data:
        paths = sorted(Path(args.encoders).glob(f"{PREFIX[data]}-*.safetensors"))
        results[data] = evaluate(paths, data, train_subset=args.train_subset)
        series = {name: r["spectrum"] for name, r in results[data].items() if "spectrum" in r}
        if series:
            line_plot(series, out / f"spectrum_{data}.png", title=f"{PREFIX[data]}: singular values of embeddings",
                      xlabel="singular value index", ylabel="s_i / sum s")
        out.mkdir(parents=True, exist_ok=True)
        (out / "probe.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "probe_table.md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
