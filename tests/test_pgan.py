"""PGAN networks, the generator protocol and our safetensors format."""
from __future__ import annotations

import json

import pytest
import torch

from generators import PGAN, CheckpointError, Discriminator, Generator, PGANConfig, sample_latents
from generators.pgan import downscale2d, grown, minibatch_stddev, pixel_norm, upscale2d
from studio.testing import randomize


def test_config_validation_and_strict_loading():
    with pytest.raises(ValueError, match="channels"):
        PGANConfig(channels=2)
    with pytest.raises(ValueError, match="alpha"):
        PGANConfig(alpha=1.5)
    with pytest.raises(ValueError, match="PGAN config has unknown keys"):
        PGANConfig.from_dict({"latent_dim": 4, "depth": [4]})
    c = PGANConfig(latent_dim=4, depths=[8, 4])
    assert c.depths == (8, 4) and c.resolution == 8
    assert PGANConfig.from_dict(json.loads(c.to_json())) == c
    with pytest.raises(Exception):
        c.latent_dim = 5  # frozen


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_scale(channels):
    for n_scales in range(1, 5):
        c = PGANConfig(latent_dim=6, depths=(8,) * n_scales, channels=channels)
        g, d = Generator(c), Discriminator(c)
        x = g(torch.randn(5, 6))
        assert x.shape == (5, channels, c.resolution, c.resolution)
        assert d(x).shape == (5, 1)


def test_bad_input_shapes_are_clear_errors(tiny_model):
    with pytest.raises(ValueError, match=r"expected latents \[N, 8\]"):
        tiny_model.generator(torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"expected images \[N, 1, 16, 16\]"):
        tiny_model.discriminator(torch.randn(2, 3, 16, 16))


def test_fade_in_blends_lower_scale():
    c = PGANConfig(latent_dim=6, depths=(8, 8, 8), channels=1)
    g = randomize(PGAN.random(c, seed=0)).generator
    z = torch.randn(3, 6)
    new = g(z)
    g.alpha = 1.0  # only the previous scale, upsampled: constant over each 2x2 block
    old = g(z)
    assert torch.equal(old[:, :, ::2, ::2], old[:, :, 1::2, 1::2])
    g.alpha = 0.25
    assert torch.allclose(g(z), 0.25 * old + 0.75 * new, atol=1e-6)


def test_discriminator_fade_in_uses_downsampled_path():
    c = PGANConfig(latent_dim=6, depths=(8, 8), channels=1, minibatch_stddev=False)
    d = randomize(PGAN.random(c, seed=0)).discriminator
    x = torch.randn(4, 1, 8, 8)
    full = d(x)
    d.alpha = 0.5
    assert not torch.allclose(d(x), full)


def _penalty_grads(d: Discriminator, x: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x)[:, 0].sum(), x, create_graph=True)
    gp = (g.flatten(1).norm(dim=1) - 1.0).square().mean()
    grads = torch.autograd.grad(gp, list(d.parameters()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(d.parameters(), grads)]


def test_discriminator_leaky_relu_matches_autograd_to_second_order():
    """The discriminator's leaky ReLU skips a zero derivative; the penalty's gradients stay exact."""
    c = PGANConfig(latent_dim=6, depths=(8, 6), channels=3, alpha=0.4)
    d = randomize(PGAN.random(c, seed=0)).discriminator.double().requires_grad_(True)
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    reference, out = _penalty_grads(d, x), d(x)  # autograd's own leaky ReLU
    d.penalty_relu = True  # as the trainer builds it (Discriminator(config, penalty_relu=True))
    ours = _penalty_grads(d, x)
    assert torch.equal(d(x), out)
    assert all(torch.equal(a, b) for a, b in zip(ours, reference))
    assert sum(float(g.abs().sum()) for g in ours) > 0


def test_discriminator_under_vmap_matches_a_loop():
    """The custom leaky ReLU composes with torch.func.vmap (how the search scores images one by one)."""
    c = PGANConfig(latent_dim=6, depths=(8, 6), channels=1)
    d = randomize(PGAN.random(c, seed=1)).discriminator
    d.penalty_relu = True
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    scores = torch.func.vmap(lambda im: d(im[None])[0, 0])(x)
    (g,) = torch.autograd.grad(scores.sum(), x)
    loop = torch.stack([d(im[None])[0, 0] for im in x])
    (g_loop,) = torch.autograd.grad(loop.sum(), x)
    assert torch.allclose(scores, loop, atol=1e-6) and torch.allclose(g, g_loop, atol=1e-6)


def test_layer_helpers():
    x = torch.randn(2, 5, 3, 3)
    assert torch.allclose(pixel_norm(x).pow(2).mean(1), torch.ones(2, 3, 3), atol=1e-5)
    up = upscale2d(x)
    assert up.shape == (2, 5, 6, 6) and torch.equal(up[:, :, 1::2, ::2], x)
    y = minibatch_stddev(torch.randn(8, 3, 2, 2))
    assert y.shape == (8, 4, 2, 2)
    assert torch.equal(y[:4, 3], y[:4, 3].flatten()[0].expand(4, 2, 2))  # one value per group of 4
    assert torch.equal(minibatch_stddev(torch.randn(1, 3, 2, 2))[:, 3], torch.zeros(1, 2, 2))


@pytest.mark.parametrize("shape", [(3, 5, 8, 8), (2, 1, 4, 4), (2, 3, 16, 8), (1, 2, 32, 32)])
def test_downscale2d_is_average_pooling_with_its_gradient(shape):
    """A matmul on the CPU up to 16x16 (NCHW), avg_pool2d otherwise (larger maps, channels-last)."""
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.avg_pool2d(x, 2)
    g = torch.randn_like(ref)
    (want_grad,) = torch.autograd.grad(ref, x, g)
    for inp in (x, x.contiguous(memory_format=torch.channels_last)):
        y = downscale2d(inp)
        assert y.shape == ref.shape and torch.allclose(y, ref, atol=1e-12)
        assert torch.allclose(torch.autograd.grad(y, x, g)[0], want_grad, atol=1e-12)
    xf = x.detach().float()
    assert torch.allclose(downscale2d(xf), torch.nn.functional.avg_pool2d(xf, 2), atol=1e-6)


def test_sample_latents_portable_and_deterministic():
    a = sample_latents(3, 4, seed=7)
    assert torch.equal(a, sample_latents(3, 4, seed=7))
    assert not torch.equal(a, sample_latents(3, 4, seed=8))
    # torch's CPU Mersenne-Twister normal stream: the same numbers on every machine
    assert torch.allclose(sample_latents(1, 3, seed=0)[0], torch.tensor([1.5410, -0.2934, -2.1788]), atol=1e-4)
    t = sample_latents(200, 16, seed=1, truncation=0.5)
    assert t.abs().max() <= 0.5 and t.std() > 0.2


def test_latents_for_seeds_independent_of_neighbours(tiny_model):
    a = tiny_model.latents_for_seeds([3, 4, 5])
    b = tiny_model.latents_for_seeds([5])
    assert torch.equal(a[2], b[0])


def test_generate_batches_and_grad(tiny_model):
    z = tiny_model.sample_latents(10, seed=0)
    assert torch.allclose(tiny_model.generate(z, batch_size=3), tiny_model.generate(z), atol=1e-5)
    zg = z.clone().requires_grad_(True)
    tiny_model.realism(tiny_model.generate(zg)).sum().backward()
    assert zg.grad is not None and zg.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in tiny_model.generator.parameters())


def test_save_load_round_trip(tmp_path, tiny_model):
    path = tiny_model.save(tmp_path / "m", info={"title": "tiny"})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    loaded = PGAN.load(path)
    z = tiny_model.sample_latents(4, seed=1)
    assert torch.equal(loaded.generate(z), tiny_model.generate(z))
    assert torch.equal(loaded.realism(loaded.generate(z)), tiny_model.realism(tiny_model.generate(z)))
    assert loaded.info["title"] == "tiny" and loaded.config == tiny_model.config
    path.with_suffix(".json").unlink()  # the config inside the safetensors file suffices
    assert PGAN.load(path).config == tiny_model.config
    assert PGAN.load(path, with_discriminator=False).discriminator is None


def test_load_errors(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="no such file"):
        PGAN.load(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        PGAN.load(bad)
    path = tiny_model.save(tmp_path / "m")
    bigger = PGAN.random(grown(tiny_model.config, (16, 16, 8, 8)))
    bigger.save(tmp_path / "big")
    (tmp_path / "big.safetensors").replace(path)  # weights of one shape...
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"format": "studio-pgan/1", "config": tiny_model.config.to_json()})
    with pytest.raises(CheckpointError, match="do not match its config"):  # ...under another's config
        PGAN.load(path)
