"""Differentiable augmentation of the discriminator's inputs (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", DiffAugment).

The same random transforms are applied to real and generated images before the discriminator,
in its update and in the generator's, so D cannot memorise a small training set and G still
gets gradients through them (every op is differentiable in the image). Policies, as in the
paper's reference code, for images [N, C, H, W] in [-1, 1]:

- ``color``: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel mean;
  RGB only) and contrast (x U(0.5, 1.5) around the image mean);
- ``translation``: shift by up to 1/8 of the size in x and y, zero-padded;
- ``cutout``: a zeroed square of half the size at a random position.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation,cutout" -> ("color", "translation", "cutout"); "" -> (); unknown names are errors."""
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}: choose from {POLICIES}")
    return parts


def _uniform(n: int, gen: torch.Generator, like: torch.Tensor, low: float, high: float) -> torch.Tensor:
    u = torch.rand(n, 1, 1, 1, generator=gen, device=like.device, dtype=torch.float32)
    return (u * (high - low) + low).to(like.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + _uniform(n, gen, x, -0.5, 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * _uniform(n, gen, x, 0.0, 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(n, gen, x, 0.5, 1.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), generator=gen, device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=gen, device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + dy + 1).clamp(0, h + 1)  # indices into the zero-padded image
    gx = (gx + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen, device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    ry, rx = ys - oy + ch // 2, xs - ox + cw // 2  # position inside the square, [N, H, 1] and [N, 1, W]
    inside = (ry >= 0) & (ry < ch) & (rx >= 0) & (rx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)  # [N, 1, H, W] mask


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """`x` [N, C, H, W] through each transform of `policy` in turn, a fresh random draw per image."""
    for name in policy:
        x = _OPS[name](x, gen)
    return x


__all__ = ["POLICIES", "parse_policy", "diff_augment"]
