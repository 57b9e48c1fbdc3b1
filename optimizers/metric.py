"""How far apart two latents look: the generator's pull-back of pixel distance, a [d, d] metric.

For latents close to each other, ||G(z + dz) - G(z)||^2 ~ dz^T J(z)^T J(z) dz with J the
generator's Jacobian [pixels, d]. Averaged over z ~ N(0, I) and divided by the pixel count,

    M = E_z[J(z)^T J(z)] / P

says which latent directions change the image (in mean squared pixels per unit step) and which
barely do. The "bayes" preference driver (`optimizers.preference_model`) measures distances to
the person's unknown target with it. Shipped per model as
assets/preference/<model id>-metric.safetensors (d x d floats, 16 KB at d = 64); this module
computes, saves and loads the format, the studio finds a model's file (`studio.shipped.shipped_metric`)
and hands the matrix to the search (`SearchAssets(metric=...)`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from weightfile import WeightFileError, load_weights, save_weights

FORMAT = "studio-latent-metric/1"


@torch.no_grad()
def pullback_metric(generator: Any, *, n: int = 128, seed: int = 0, step: float = 1e-2, batch: int = 64) -> torch.Tensor:
    """E_z[J^T J] / P [d, d] over n latents z ~ N(0, I), J by forward differences of size `step`."""
    d = generator.latent_dim
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    metric = torch.zeros(d, d, dtype=torch.float64)
    pixels = 1
    for zb in z.split(batch):
        base = generator.generate(zb).flatten(1).double()  # [b, P]
        pixels = base.shape[1]
        cols = []
        for j in range(d):
            shifted = zb.clone()
            shifted[:, j] += step
            cols.append((generator.generate(shifted).flatten(1).double() - base) / step)
        jac = torch.stack(cols, dim=-1)  # [b, P, d]
        metric += torch.einsum("bpi,bpj->ij", jac, jac)
    metric /= n * pixels
    return (0.5 * (metric + metric.T)).float()


def save_metric(metric: torch.Tensor, path: str | Path, *, info: dict[str, Any] | None = None) -> Path:
    """PATH.safetensors holding the metric; `info` goes into its metadata (no sidecar)."""
    return save_weights(path, {"metric": metric.float()}, format=FORMAT, metadata={"info": json.dumps(info or {})},
                        sidecar=False)


def load_metric(path: str | Path) -> torch.Tensor:
    """Strict load of `save_metric` output: a finite symmetric [d, d] matrix."""
    t = load_weights(path, format=FORMAT, kind="latent metric", require_config=False).tensors
    if set(t) != {"metric"}:
        raise WeightFileError(f"{path}: a latent metric file holds one tensor, metric; has {sorted(t)}")
    m = t["metric"].float()
    if m.dim() != 2 or m.shape[0] != m.shape[1] or not torch.isfinite(m).all() or not torch.allclose(m, m.T):
        raise WeightFileError(f"{path}: the metric must be a finite symmetric square matrix")
    return m


__all__ = ["pullback_metric", "save_metric", "load_metric"]
