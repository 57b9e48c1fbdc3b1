"""Widen a trained PGAN's scales without changing what it computes (Net2Net, Chen et al. 2016).

Each channel of a widened scale is repeated k times (its output weights copied, the weights that
read it divided by k), which leaves every layer's output the same: duplicated channels keep the
mean of squares that pixel norm divides by, leaky ReLU and pooling act per channel, and the
equalized-lr constants are re-applied for the new fan-ins. The copies would then receive
identical gradients forever, so a small `noise` (relative to each layer's weight spread) breaks
the symmetry. Used to continue a model at a width the first training could not afford.
"""
from __future__ import annotations

import torch

from .model import PGAN
from .pgan import Discriminator, EqualizedLayer, Generator, PGANConfig, grown


def _factors(old: PGANConfig, depths: tuple[int, ...]) -> list[int]:
    if len(depths) != len(old.depths) or depths[0] != old.depths[0]:
        raise ValueError(f"widening keeps the number of scales and the 4x4 width: {old.depths} -> {depths}")
    if any(d % o or d < o for d, o in zip(depths, old.depths)):
        raise ValueError(f"each new width must be a multiple of the old one: {old.depths} -> {depths}")
    return [d // o for d, o in zip(depths, old.depths)]


def _copy(new: EqualizedLayer, old: EqualizedLayer, k_in: int, k_out: int, noise: float, gen: torch.Generator) -> None:
    """new's effective weights = old's with input channels repeated k_in times (/ k_in) and outputs k_out times."""
    w = old.weight.detach() * old.scale
    w = w.repeat_interleave(k_out, dim=0).repeat_interleave(k_in, dim=1) / k_in
    b = (old.bias.detach() * old.scale).repeat_interleave(k_out)
    if noise and (k_in > 1 or k_out > 1):
        w = w + noise * w.std() * torch.randn(w.shape, generator=gen)
    with torch.no_grad():
        new.weight.copy_(w / new.scale)
        new.bias.copy_(b / new.scale)


def widen(model: PGAN, depths: tuple[int, ...], *, noise: float = 0.01, seed: int = 0) -> PGAN:
    """`model` with channels per scale `depths` (integer multiples of its own; 4x4 unchanged)."""
    k = _factors(model.config, tuple(depths))
    cfg = grown(model.config, tuple(depths), model.config.alpha)
    gen = torch.Generator().manual_seed(seed)
    g_old, g = model.generator, Generator(cfg)
    _copy(g.format_layer, g_old.format_layer, 1, 1, noise, gen)
    _copy(g.scale0, g_old.scale0, 1, 1, noise, gen)
    _copy(g.to_rgb[0], g_old.to_rgb[0], 1, 1, noise, gen)
    for i, ((c1, c2), (o1, o2)) in enumerate(zip(g.scales, g_old.scales)):
        _copy(c1, o1, k[i], k[i + 1], noise, gen)
        _copy(c2, o2, k[i + 1], k[i + 1], noise, gen)
        _copy(g.to_rgb[i + 1], g_old.to_rgb[i + 1], k[i + 1], 1, noise, gen)
    d = None
    if model.discriminator is not None:
        d_old, d = model.discriminator, Discriminator(cfg)
        for i, (new, old) in enumerate(zip(d.from_rgb, d_old.from_rgb)):
            _copy(new, old, 1, k[i], noise, gen)
        for i, ((c1, c2), (o1, o2)) in enumerate(zip(d.scales, d_old.scales)):
            _copy(c1, o1, k[i + 1], k[i + 1], noise, gen)
            _copy(c2, o2, k[i + 1], k[i], noise, gen)
        for name in ("scale0_conv", "scale0_linear", "decision"):
            _copy(getattr(d, name), getattr(d_old, name), 1, 1, noise, gen)
    info = {**model.info, "widened_from": list(model.config.depths)}
    return PGAN(cfg, g.eval(), d.eval() if d is not None else None, info=info)


__all__ = ["widen"]
