"""Moving around a latent space: seed pages, variations, slerp interpolation. Plain tensors in and out.

These PGANs pixel-normalise their input, so only a latent's direction matters: interpolation is
spherical (slerp) and a variation's strength is the noise norm relative to the latent's norm.
"""
from __future__ import annotations

import torch


def page_seeds(start: int, page: int, n: int) -> list[int]:
    """The seeds on page `page` (0-based) of a browse grid of `n` starting at seed `start`."""
    if n < 1:
        raise ValueError(f"a page needs at least one image, got n={n}")
    first = int(start) + int(page) * n
    if first < 0:
        raise ValueError("seeds are non-negative: go to a later page or a larger start seed")
    return list(range(first, first + n))


def variations(z: torch.Tensor, *, n: int, strength: float, seed: int) -> torch.Tensor:
    """`n` latents around z [d] -> [n, d]; strength 0 gives z itself, 1 a fresh-looking direction."""
    if z.dim() != 1:
        raise ValueError(f"expected one latent [d], got {list(z.shape)}")
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n, z.shape[0], generator=gen)
    # noise scaled to |z| so that `strength` means the same at any latent size
    scale = z.norm() / noise.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return z[None] + strength * scale * noise


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between [d] latents; t scalar or [T] -> [d] or [T, d].

    Norms are interpolated linearly, directions along the great circle; near-parallel latents fall
    back to linear interpolation.
    """
    t_ = torch.as_tensor(t, dtype=z0.dtype)
    tt = t_.reshape(-1, 1)
    n0, n1 = z0.norm(), z1.norm()
    u0, u1 = z0 / n0.clamp_min(1e-12), z1 / n1.clamp_min(1e-12)
    omega = torch.arccos((u0 @ u1).clamp(-1.0, 1.0))
    if omega.abs() < 1e-4:
        out = (1 - tt) * z0 + tt * z1
    else:
        so = torch.sin(omega)
        direction = (torch.sin((1 - tt) * omega) / so) * u0 + (torch.sin(tt * omega) / so) * u1
        out = direction * ((1 - tt) * n0 + tt * n1)
    return out[0] if t_.dim() == 0 else out


def interpolation(z0: torch.Tensor, z1: torch.Tensor, *, steps: int) -> torch.Tensor:
    """`steps` latents from z0 to z1 inclusive -> [steps, d]."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    return slerp(z0, z1, torch.linspace(0, 1, steps))
