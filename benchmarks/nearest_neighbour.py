"""Are generated images copies of training images? A nearest-neighbour check.

For each generated image, the L2 distance (pixels in [-1, 1], RMS per pixel) to its nearest
training image; compared with the same distance for held-out real images (val split), which are
new images of the same distribution. A generator that memorised would have many samples far
closer to the training set than held-out images ever are. Prints both distributions' quantiles
and the fraction of samples closer than the 1st percentile of held-out images, and writes a
grid: each sample next to its nearest training image.

    python -m benchmarks.nearest_neighbour --model faces64 --data faces --out assets/samples/faces64_nn.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def nearest(queries: torch.Tensor, bank: torch.Tensor, *, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS pixel distance [Q] of each query [Q, C, H, W] to its nearest bank image, and its index."""
    q = queries.flatten(1).float()
    best_d = torch.full((len(q),), float("inf"))
    best_i = torch.zeros(len(q), dtype=torch.long)
    q2 = q.square().sum(1, keepdim=True)
    for start in range(0, len(bank), chunk):
        b = bank[start:start + chunk].flatten(1).float()
        d = (q2 - 2 * q @ b.T + b.square().sum(1)[None]).clamp_min(0)
        v, i = d.min(dim=1)
        better = v < best_d
        best_d[better], best_i[better] = v[better], i[better] + start
    return (best_d / q.shape[1]).sqrt(), best_i


def check(model, train: torch.Tensor, val: torch.Tensor, *, n: int = 512, seed: int = 20_000) -> dict:
    """Distances of n samples and of up to n held-out images to the training set."""
    fake = model.generate(model.sample_latents(n, seed=seed)).clamp(-1, 1)
    d_fake, i_fake = nearest(fake, train)
    d_val, _ = nearest(val[:n], train)
    q = torch.tensor([0.01, 0.1, 0.5])
    threshold = torch.quantile(d_val, 0.01)
    return {"n_samples": n, "n_train": len(train), "n_val": min(n, len(val)),
            "samples_quantiles_1_10_50": [round(v, 4) for v in torch.quantile(d_fake, q).tolist()],
            "val_quantiles_1_10_50": [round(v, 4) for v in torch.quantile(d_val, q).tolist()],
            "fraction_closer_than_val_p1": round(float((d_fake < threshold).float().mean()), 4),
            "_fake": fake, "_nearest": train[i_fake], "_d": d_fake}


def main(argv: list[str] | None = None) -> int:
    from studio.catalog import load_generator
    from studio.data import load_dataset
    from studio.imageio import grid
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="faces | fashion | textures | FOLDER")
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--out", help="PNG: the 8 closest samples (top) over their nearest training images")
    p.add_argument("--json")
    args = p.parse_args(argv)
    model = load_generator(args.model)
    kw = dict(size=model.resolution, channels=model.channels)
    train = load_dataset(args.data, split="train", **kw).float()
    val = load_dataset(args.data, split="val", **kw).float()
    result = check(model, train, val, n=args.n)
    if args.out:
        order = result["_d"].argsort()[:8]
        pairs = torch.cat([result["_fake"][order], result["_nearest"][order]])
        grid(pairs, nrow=8).save(args.out)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    print(json.dumps(public, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(public, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
