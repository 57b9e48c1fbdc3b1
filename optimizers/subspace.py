"""Lower-dimensional search spaces for preference rounds: a basis [m, d] for `PreferenceSearch`.

A person gives about log2(k) bits per round, so 20 rounds cannot pin down 64 independent
coordinates; most of them barely change the image anyway. Two ways to find the m directions
that matter:

- `image_directions(generator, m)`: the latent directions that move the image most, the top
  right-singular vectors of the cross-covariance between z and G(z)'s pixels over samples (the
  linear part of the generator, as in GANSpace but measured on the output);
- `principal_directions(codes, m)`: plain PCA of given latents, e.g. the learned inversion's codes
  of real images (where real images live in the latent space).

Both return a `Subspace(center [d], basis [m, d])` whose rows are scaled so that N(0, 1)
coordinates reproduce the spread of the data along each direction. A model's saved directions
(assets/inversion/<model id>-directions.safetensors) are found by the studio
(`studio.shipped.shipped_subspace`), which hands the basis to the search.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from weightfile import WeightFileError, load_weights, save_weights

FORMAT = "studio-subspace/1"


@dataclass(frozen=True)
class Subspace:
    center: torch.Tensor  # [d]
    basis: torch.Tensor  # [m, d], rows scaled to the data's std along them
    explained: torch.Tensor  # [m] fraction of the variance each direction explains

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    def to_latents(self, coords: torch.Tensor) -> torch.Tensor:
        """[n, m] coordinates -> [n, d] latents."""
        return self.center + coords @ self.basis


def principal_directions(codes: torch.Tensor, m: int) -> Subspace:
    """PCA of latents [n, d]: the m directions of largest variance, scaled by their std."""
    codes = torch.as_tensor(codes, dtype=torch.float64)
    if codes.dim() != 2 or not 1 <= m <= min(codes.shape):
        raise ValueError(f"need codes [n, d] with 1 <= m <= min(n, d), got {list(codes.shape)} and m={m}")
    center = codes.mean(dim=0)
    _, s, vh = torch.linalg.svd(codes - center, full_matrices=False)
    var = s.pow(2) / max(1, len(codes) - 1)
    basis = vh[:m] * var[:m].sqrt()[:, None]
    return Subspace(center.float(), basis.float(), (var[:m] / var.sum()).float())


@torch.no_grad()
def image_directions(generator: Any, m: int, *, n: int = 1024, seed: int = 0, batch: int = 128) -> Subspace:
    """The m latent directions along which G's images change most (linearly), as unit-std rows.

    Rows are unit vectors times 1 (the prior's std), centred at 0: a coordinate of u along
    direction v moves z by u * v, like one coordinate of a N(0, I) latent.
    """
    d = generator.latent_dim
    if not 1 <= m <= d:
        raise ValueError(f"m must be in [1, {d}], got {m}")
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    x = torch.cat([generator.generate(b).flatten(1).double().cpu() for b in z.split(batch)])  # [n, P]
    cross = (z.double() - z.double().mean(0)).T @ (x - x.mean(0)) / (n - 1)  # [d, P]
    u, s, _ = torch.linalg.svd(cross, full_matrices=False)
    energy = s.pow(2)
    return Subspace(torch.zeros(d), u[:, :m].T.float().contiguous(), (energy[:m] / energy.sum()).float())


def save_subspace(sub: Subspace, path: str | Path, *, info: dict[str, Any] | None = None) -> Path:
    """PATH.safetensors with center, basis and explained; `info` goes into its metadata (no sidecar)."""
    tensors = {"center": sub.center, "basis": sub.basis, "explained": sub.explained}
    return save_weights(path, tensors, format=FORMAT, metadata={"info": json.dumps(info or {})}, sidecar=False)


def load_subspace(path: str | Path) -> Subspace:
    """Strict load of `save_subspace` output."""
    t = load_weights(path, format=FORMAT, kind="subspace", require_config=False).tensors
    if set(t) != {"center", "basis", "explained"}:
        raise WeightFileError(f"{path}: a subspace file needs tensors center, basis and explained, has {sorted(t)}")
    c, b, e = t["center"], t["basis"], t["explained"]
    if b.dim() != 2 or c.shape != (b.shape[1],) or e.shape != (b.shape[0],):
        raise WeightFileError(f"{path}: inconsistent subspace shapes (center {list(c.shape)}, "
                              f"basis {list(b.shape)}, explained {list(e.shape)})")
    return Subspace(c.float(), b.float(), e.float())


__all__ = ["Subspace", "principal_directions", "image_directions", "save_subspace", "load_subspace"]
