"""The slow-features check of Sobal et al. 2022 ("Joint Embedding Predictive Architectures Focus
on Slow Features"), adapted to our frozen encoders: a dot on a 28 x 28 canvas with pixel-noise
distractors that either change from image to image or stay fixed.

    python benchmarks/encoders_slowfeatures.py [--encoders fashion32-vicreg ...]

For each encoder (and raw pixels): the R^2 of a linear (ridge) probe for the dot's (x, y) from the
features, under changing and under fixed noise; and, as a distance, how far apart two images with
the same dot and different noise are, relative to two images with the same noise and the dot
moved by 4 pixels (lower = the distance ignores the distractor). Writes assets/encoders/slow.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoders import load_encoder, shipped_ids  # noqa: E402
from encoders.diagnostics import embed  # noqa: E402

SIZE, DOT = 28, 3


def dots(positions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """[N, 2] integer top-left corners + noise [N, 1, 28, 28] -> images in [-1, 1]."""
    x = (-1 + noise).clamp(-1, 1)
    for i, (r, c) in enumerate(positions.tolist()):
        x[i, :, r:r + DOT, c:c + DOT] = 1.0
    return x


def make_set(n: int, *, fixed: bool, level: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, SIZE - DOT + 1, (n, 2), generator=g)
    if fixed:
        one = level * torch.rand(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(999))
        noise = one.expand(n, -1, -1, -1)
    else:
        noise = level * torch.rand(n, 1, SIZE, SIZE, generator=g)
    return dots(pos, noise.clone()), pos.float()


def ridge_r2(ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor, alpha: float = 1.0) -> float:
    mean, std = ftr.mean(0), ftr.std(0).clamp_min(1e-6)
    a, b = ((ftr - mean) / std).double(), ((fte - mean) / std).double()
    a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
    b = torch.cat([b, torch.ones(len(b), 1, dtype=b.dtype)], 1)
    w = torch.linalg.solve(a.T @ a + alpha * torch.eye(a.shape[1], dtype=a.dtype), a.T @ ytr.double())
    pred = b @ w
    return float(1 - (pred - yte.double()).pow(2).sum() / (yte.double() - yte.double().mean(0)).pow(2).sum())


def distractor_ratio(features, n: int = 300, level: float = 0.8, seed: int = 5) -> float:
    """median d(same dot, other noise) / median d(same noise, dot moved 4 px); d = mean sq. diff."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, SIZE - DOT - 4 + 1, (n, 2), generator=g)
    n1, n2 = level * torch.rand(n, 1, SIZE, SIZE, generator=g), level * torch.rand(n, 1, SIZE, SIZE, generator=g)
    a, b = dots(pos, n1.clone()), dots(pos, n2.clone())
    moved = dots(pos + torch.tensor([0, 4]), n1.clone())
    fa, fb, fm = features(a), features(b), features(moved)
    noise_d = (fa - fb).pow(2).mean(1).median()
    move_d = (fa - fm).pow(2).mean(1).median()
    return float(noise_d / move_d.clamp_min(1e-12))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", nargs="+", help="ids or paths (default: every shipped encoder)")
    ap.add_argument("--level", type=float, default=0.8, help="noise amplitude (in [-1, 1] units)")
    ap.add_argument("--out", default="assets/encoders/slow.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.encoders or shipped_ids()
    sets = {cond: (make_set(2000, fixed=cond == "fixed", level=args.level, seed=1),
                   make_set(1000, fixed=cond == "fixed", level=args.level, seed=2)) for cond in ("changing", "fixed")}
    feature_fns = {"pixels": lambda x: x.flatten(1)}
    for name in names:
        enc = load_encoder(name)
        feature_fns[name] = lambda x, enc=enc: embed(enc, x) / enc.feature_std
    rows = {}
    for name, fn in feature_fns.items():
        row = {}
        for cond, ((xtr, ytr), (xte, yte)) in sets.items():
            row[f"r2_{cond}_noise"] = ridge_r2(fn(xtr), ytr, fn(xte), yte)
        row["distractor_ratio"] = distractor_ratio(fn, level=args.level)
        rows[name] = row
        print(f"{name:>22}: R2 changing {row['r2_changing_noise']:.3f} fixed {row['r2_fixed_noise']:.3f} "
              f"distractor/dot distance ratio {row['distractor_ratio']:.3f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"level": args.level, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
