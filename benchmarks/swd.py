"""Sliced Wasserstein distance on Laplacian pyramids (Karras et al. 2018, appendix D).

For every image, a Laplacian pyramid from full resolution down to 16x16 (the last level is the
16x16 low-pass image); from every level 128 random 7x7 neighbourhoods per image; descriptors
normalised per channel over the whole set (each set by its own mean and std); per level the
sliced Wasserstein distance between the two sets of descriptors along 4 x 128 random unit
directions (sort the projections, mean absolute difference, average over the 4 repeats),
reported x 1e3. The noise floor is the same distance between two disjoint halves of real images.

    python -m benchmarks.swd --model faces64 --data faces          # catalog id or .safetensors
    python -m benchmarks.swd --model assets/faces64.safetensors --data faces --n 2048 --json out.json

The generated set has as many images as each real half (the held-out ``val`` split by default),
so model and floor are measured with the same sample size.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GAUSS = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = (GAUSS[:, None] * GAUSS[None, :]).to(x)[None, None].expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H/2, W/2]: Gaussian blur, then every second pixel."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, 2H, 2W]: zero-insertion, then blur x 4."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up) * 4.0


def laplacian_pyramid(x: torch.Tensor, min_res: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down to `min_res`, whose level is the low-pass."""
    levels = []
    while x.shape[-1] > min_res:
        low = pyr_down(x)
        levels.append(x - pyr_up(low))
        x = low
    levels.append(x)
    return levels


def descriptors(level: torch.Tensor, per_image: int, gen: torch.Generator, size: int = 7) -> torch.Tensor:
    """[N, C, H, W] -> [N * per_image, C, size, size] random neighbourhoods."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (n, per_image), generator=gen)
    xs = torch.randint(0, w - size + 1, (n, per_image), generator=gen)
    patches = level.unfold(2, size, 1).unfold(3, size, 1)  # [N, C, H', W', size, size]
    idx = torch.arange(n)[:, None].expand(n, per_image)
    return patches[idx, :, ys, xs].reshape(n * per_image, c, size, size)


def normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per channel zero mean, unit std over all descriptors; -> [M, C * size * size]."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return desc.flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator, *, directions: int = 128,
                       repeats: int = 4) -> float:
    """[M, D] x [M, D] -> mean over `repeats` of the mean |sorted(a.d) - sorted(b.d)|."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {list(a.shape)} vs {list(b.shape)}")
    out = []
    for _ in range(repeats):
        d = torch.randn(a.shape[1], directions, generator=gen)
        d = d / d.norm(dim=0, keepdim=True)
        pa, _ = torch.sort(a @ d, dim=0)
        pb, _ = torch.sort(b @ d, dim=0)
        out.append((pa - pb).abs().mean().item())
    return sum(out) / len(out)


def swd(images_a: torch.Tensor, images_b: torch.Tensor, *, min_res: int = 16, per_image: int = 128,
        seed: int = 0, chunk: int = 256) -> dict[str, float]:
    """SWD x 1e3 per pyramid level ('64', '32', '16', ...) and their mean ('avg').

    images_*: [N, C, H, W] in [-1, 1], same N and shape.
    """
    if images_a.shape != images_b.shape:
        raise ValueError(f"image sets differ: {list(images_a.shape)} vs {list(images_b.shape)}")
    gen = torch.Generator().manual_seed(seed)
    per_level: list[list[list[torch.Tensor]]] = []
    for images in (images_a, images_b):
        levels: list[list[torch.Tensor]] = []
        for part in images.float().split(chunk):
            for i, lev in enumerate(laplacian_pyramid(part * 127.5, min_res)):
                if i == len(levels):
                    levels.append([])
                levels[i].append(descriptors(lev, per_image, gen))
        per_level.append(levels)
    result = {}
    res = images_a.shape[-1]
    for i, (da, db) in enumerate(zip(*per_level)):
        result[str(res >> i)] = 1e3 * sliced_wasserstein(normalise(torch.cat(da)), normalise(torch.cat(db)), gen)
    result["avg"] = sum(result.values()) / len(result)
    return result


def evaluate(model, real: torch.Tensor, *, seed: int = 0, latent_seed: int = 10_000) -> dict:
    """Model vs real half A, and the floor real half A vs real half B (same size n each)."""
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    n = len(real) // 2
    half_a, half_b = real[perm[:n]], real[perm[n:2 * n]]
    fake = model.generate(model.sample_latents(n, seed=latent_seed)).clamp(-1, 1)
    floor = swd(half_a, half_b, seed=seed)
    score = swd(fake, half_a, seed=seed)
    # SWD normalises each set by its own per-channel mean and std, so it cannot see a colour or
    # brightness shift: the channel means of both sets are reported beside it
    means = {"real": [round(float(v), 3) for v in half_a.mean(dim=(0, 2, 3))],
             "generated": [round(float(v), 3) for v in fake.mean(dim=(0, 2, 3))]}
    return {"n": n, "swd": score, "floor": floor, "ratio": score["avg"] / floor["avg"], "channel_means": means}


def main(argv: list[str] | None = None) -> int:
    from studio.catalog import load_generator
    from studio.data import load_dataset
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="catalog id or .safetensors file")
    p.add_argument("--data", required=True, help="faces | fashion | textures | FOLDER")
    p.add_argument("--split", default="val", help="real images to compare with (default: held-out val)")
    p.add_argument("--n", type=int, default=4096, help="at most this many real images (two halves)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_generator(args.model)
    real = load_dataset(args.data, split=args.split, size=model.resolution, channels=model.channels).float()
    real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))[:args.n]]
    result = {"model": args.model, "data": args.data, "split": args.split, **evaluate(model, real, seed=args.seed)}
    levels = ", ".join(f"{k}px {v:.2f}" for k, v in result["swd"].items() if k != "avg")
    print(f"{args.model} vs {args.data}/{args.split} (n={result['n']} per set): SWD x1e3 avg "
          f"{result['swd']['avg']:.2f} ({levels}); real-vs-real floor {result['floor']['avg']:.2f}; "
          f"ratio {result['ratio']:.2f}; channel means real {result['channel_means']['real']} "
          f"generated {result['channel_means']['generated']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
