"""Progressive previews: a PGAN stopped at a lower scale and drawn by that scale's toRGB (or by a
colour head fitted to its own full renders), checked against full renders."""
from __future__ import annotations

import pytest
import torch

from generators import PGAN, PGANConfig
from generators.model import preview_agreement
from studio.testing import randomize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def rgb_model() -> PGAN:
    return randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 16, 8, 8), channels=3), seed=2), seed=2)


def test_full_resolution_preview_is_the_image(rgb_model):
    z = rgb_model.sample_latents(5, seed=0)
    assert rgb_model.preview_resolutions() == [4, 8, 16, 32]
    assert torch.equal(rgb_model.preview(z, 32), rgb_model.generate(z))


@pytest.mark.parametrize("level", [0, 1, 2])
def test_a_lower_scale_preview_is_the_model_grown_only_that_far(rgb_model, level):
    """The preview at scale k equals a PGAN with the first k + 1 scales and the same weights."""
    c = rgb_model.config
    small = PGAN.random(PGANConfig(latent_dim=c.latent_dim, depths=c.depths[:level + 1], channels=c.channels))
    own = rgb_model.generator.state_dict()
    small.generator.load_state_dict({k: own[k] for k in small.generator.state_dict()})
    z = rgb_model.sample_latents(6, seed=1)
    out = rgb_model.preview(z, 4 * 2 ** level)
    assert out.shape == (6, 3, 4 * 2 ** level, 4 * 2 ** level)
    assert torch.allclose(out, small.generate(z), atol=1e-6)


def test_previews_are_cheaper_and_differentiable(rgb_model):
    z = rgb_model.sample_latents(2, seed=0).requires_grad_(True)
    rgb_model.preview(z, 8).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one of \\[4, 8, 16, 32\\]"):
        rgb_model.preview(z, 12)


def test_a_fitted_head_matches_the_downsampled_full_render(rgb_model):
    before = preview_agreement(rgb_model, 16, n=32, seed=5)
    report = rgb_model.fit_preview(16, n=128)
    after = preview_agreement(rgb_model, 16, n=32, seed=5)
    assert after["mse"] < 0.5 * before["mse"]
    assert after["correlation_mean"] > before["correlation_mean"]
    assert after["identified"] >= 0.9
    z = rgb_model.sample_latents(4, seed=9)
    full = torch.nn.functional.adaptive_avg_pool2d(rgb_model.generate(z), 16)
    assert (rgb_model.preview(z, 16) - full).pow(2).mean() < before["mse"]


def test_shipped_faces_previews_can_be_chosen_by():
    """faces64 at 32 px: with the fitted head, every preview is nearest its own full image."""
    from studio.catalog import Catalog
    model = Catalog().generator("faces64")
    saved = dict(model.preview_heads)
    try:
        report = model.fit_preview(32, n=96)
    finally:
        model.preview_heads = saved
    assert report["after"]["identified"] >= 0.95 and report["after"]["correlation_mean"] > 0.85
    assert report["after"]["mse"] < 0.1 * report["before"]["mse"]


def test_bfloat16_renders_are_close_and_searches_stay_float32(rgb_model):
    z = rgb_model.sample_latents(4, seed=3)
    full, prev = rgb_model.generate(z), rgb_model.preview(z, 16)
    rgb_model.use_bfloat16()
    fast = rgb_model.generate(z)
    assert fast.dtype == torch.float32 and fast.shape == full.shape
    assert (fast - full).abs().mean() < 0.02 * full.abs().mean() + 0.02
    assert (rgb_model.preview(z, 16) - prev).abs().mean() < 0.02 * prev.abs().mean() + 0.02
    zg = z.clone().requires_grad_(True)
    assert torch.allclose(rgb_model.generate(zg), full, atol=1e-6)  # gradients go through float32
    rgb_model.use_bfloat16(False)
    assert torch.equal(rgb_model.generate(z), full)
