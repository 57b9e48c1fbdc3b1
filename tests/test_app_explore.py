"""Latent-space moves behind Browse (pages, variations, slerp) and GIF export."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from studio.app import explore
from studio.gif import save_gif


def test_pages_tile_the_seeds():
    assert explore.page_seeds(10, 0, 9) == list(range(10, 19))
    assert explore.page_seeds(10, 2, 16) == list(range(42, 58))
    with pytest.raises(ValueError, match="at least one"):
        explore.page_seeds(0, 0, 0)


def test_variations_are_seeded_and_scaled_by_strength():
    z = torch.randn(64, generator=torch.Generator().manual_seed(1))
    a = explore.variations(z, n=8, strength=0.3, seed=5)
    assert a.shape == (8, 64)
    assert torch.equal(a, explore.variations(z, n=8, strength=0.3, seed=5))
    assert not torch.equal(a, explore.variations(z, n=8, strength=0.3, seed=6))
    assert torch.equal(explore.variations(z, n=2, strength=0.0, seed=5), z.expand(2, -1))
    rel = (a - z).norm(dim=1) / z.norm()
    assert torch.allclose(rel, torch.full((8,), 0.3), atol=1e-5)  # strength = noise norm / |z|
    with pytest.raises(ValueError, match="one latent"):
        explore.variations(z[None], n=2, strength=0.1, seed=0)


def test_slerp_hits_ends_and_keeps_the_great_circle():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(32, generator=g), torch.randn(32, generator=g)
    path = explore.interpolation(z0, z1, steps=5)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    u = path / path.norm(dim=1, keepdim=True)
    angles = torch.arccos((u[:-1] * u[1:]).sum(1).clamp(-1, 1))
    assert torch.allclose(angles, angles.mean().expand(4), atol=1e-4)  # equal angular steps
    mid = explore.slerp(z0, z1, 0.5)
    assert mid.shape == (32,)
    assert math.isclose(float(mid.norm()), float((z0.norm() + z1.norm()) / 2), rel_tol=1e-5)
    same = explore.slerp(z0, z0 * 2, 0.5)  # parallel: linear fallback, no NaN
    assert torch.isfinite(same).all()
    with pytest.raises(ValueError, match="at least 2"):
        explore.interpolation(z0, z1, steps=1)


def test_gif_has_every_frame_and_loops(tmp_path):
    frames = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 3, 8, 8).contiguous()
    path = save_gif(frames, tmp_path / "a.gif", size=32, boomerang=True)
    with Image.open(path) as im:
        assert im.n_frames == 10 and im.size == (32, 32) and im.info.get("loop") == 0
    with pytest.raises(ValueError, match="frames"):
        save_gif(torch.zeros(0, 1, 8, 8), tmp_path / "b.gif")
