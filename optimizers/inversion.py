"""Learned inversion: an encoder image -> z, trained on a generator's own samples, whose guess
starts the gradient search (the idea of in-domain GAN inversion, Zhu et al. 2020: an encoder's
code lands in the right basin, the optimisation then refines it).

Training needs only the generator: draw z, render x = G(z), and fit E so that E(x) predicts z
(latent loss on the sphere the generator actually sees, since PGAN pixel-normalises z) and
G(E(x)) redraws x (image loss). Real images are never needed, so every shipped generator gets
its encoder from the same code. Weights: safetensors + JSON config, loaded strictly. A model's
encoder file is found and loaded once by the studio (`studio.shipped.shipped_encoder`); this layer
is handed the encoder object.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from weightfile import load_state, load_weights, save_weights

FORMAT = "studio-inversion/1"


@dataclass(frozen=True)
class InversionConfig:
    """Shape of the encoder; stored beside its weights."""

    latent_dim: int
    resolution: int
    channels: int
    width: int = 16  # channels of the first conv, doubled at every halving (capped at 8x)

    def __post_init__(self) -> None:
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if self.channels not in (1, 3) or self.latent_dim < 1 or self.width < 1:
            raise ValueError(f"bad inversion config {self}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InversionConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown inversion config keys: {unknown}")
        return cls(**d)


@dataclass(frozen=True)
class InversionTrainConfig:
    steps: int = 2000
    batch: int = 32
    lr: float = 2e-3
    image_weight: float = 1.0  # weight of ||G(E(x)) - x||^2 next to the latent loss
    image_every: int = 4  # the image loss backpropagates through G: only every n-th step
    seed: int = 0


class InversionEncoder(nn.Module):
    """images [N, C, R, R] in [-1, 1] -> latents [N, d] with mean square 1 (the prior's shell)."""

    def __init__(self, config: InversionConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in, c_out, r = config.channels, config.width, config.resolution
        while r > 4:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2),
                       nn.Conv2d(c_out, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in, c_out, r = c_out, min(2 * c_out, 8 * config.width), r // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 16, 4 * config.latent_dim), nn.LeakyReLU(0.2),
                                  nn.Linear(4 * config.latent_dim, config.latent_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c = self.config
        if images.dim() != 4 or images.shape[1:] != (c.channels, c.resolution, c.resolution):
            raise ValueError(f"expected images [N, {c.channels}, {c.resolution}, {c.resolution}], "
                             f"got {list(images.shape)}")
        z = self.head(self.features(images))
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def unit_shell(z: torch.Tensor) -> torch.Tensor:
    """z scaled to mean square 1 per row: what PGAN's pixel norm makes of it."""
    return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def train_inversion(generator: Any, *, config: InversionConfig | None = None,
                    train: InversionTrainConfig = InversionTrainConfig(),
                    callback: Callable[[int, dict[str, float]], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    init: InversionEncoder | None = None) -> tuple[InversionEncoder, dict[str, Any]]:
    """Fit an encoder to the generator's own samples; returns it (eval mode) and its metrics.

    With `init`, training continues from a copy of that encoder (e.g. after the generator was
    fine-tuned) instead of a fresh one.
    """
    config = init.config if init is not None else (
        config or InversionConfig(generator.latent_dim, generator.resolution, generator.channels))
    device = getattr(generator, "device", torch.device("cpu"))
    if (config.latent_dim, config.resolution, config.channels) != (generator.latent_dim, generator.resolution,
                                                                   generator.channels):
        raise ValueError(f"inversion config {config} does not fit the generator")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train.seed)
        encoder = InversionEncoder(config).to(device)
    if init is not None:
        encoder.load_state_dict(init.state_dict())
    encoder.train().requires_grad_(True)
    opt = torch.optim.Adam(encoder.parameters(), lr=train.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / train.steps))))
    gen = torch.Generator().manual_seed(train.seed + 1)
    start, log = time.perf_counter(), {}
    step = 0
    for step in range(1, train.steps + 1):
        z = torch.randn(train.batch, config.latent_dim, generator=gen).to(device)
        with torch.no_grad():
            x = generator.generate(z)
        z_hat = encoder(x)
        latent_loss = (z_hat - unit_shell(z)).pow(2).mean()
        loss = latent_loss
        image_loss = torch.zeros(())
        if train.image_weight > 0 and step % max(1, train.image_every) == 0:
            image_loss = (generator.generate(z_hat) - x).pow(2).mean()
            loss = loss + train.image_weight * image_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log = {"latent_loss": float(latent_loss.detach()), "image_loss": float(image_loss.detach()),
               "seconds": time.perf_counter() - start}
        if callback is not None:
            callback(step, log)
        if should_stop is not None and should_stop():
            break
    encoder.eval().requires_grad_(False)
    metrics = {"steps": step, **log, **evaluate_inversion(encoder, generator, seed=train.seed + 2)}
    return encoder, metrics


@torch.no_grad()
def evaluate_inversion(encoder: InversionEncoder, generator: Any, *, n: int = 256, seed: int = 12345) -> dict[str, float]:
    """On fresh samples: cosine(E(G(z)), z) and pixel MSE of G(E(G(z))) vs G(z), and vs a random z."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, encoder.config.latent_dim, generator=gen)
    x = generator.generate(z)
    z_hat = torch.cat([encoder(b) for b in x.split(64)])
    rec = generator.generate(z_hat)
    other = generator.generate(torch.randn(n, encoder.config.latent_dim, generator=gen))
    return {"cosine": float(F.cosine_similarity(z_hat.cpu(), z, dim=1).mean()),
            "recon_mse": float((rec - x).pow(2).mean()), "random_mse": float((other - x).pow(2).mean())}


def save_inversion(encoder: InversionEncoder, path: str | Path, *, info: dict[str, Any] | None = None) -> Path:
    """PATH.safetensors (config in metadata) and PATH.json (config + info)."""
    return save_weights(path, encoder.state_dict(), format=FORMAT, config=asdict(encoder.config), info=info)


def load_inversion(path: str | Path, *, device: str | torch.device | None = None) -> InversionEncoder:
    """Strict load of `save_inversion` output (eval mode, frozen)."""
    wf = load_weights(path, format=FORMAT, kind="inversion encoder")
    encoder = InversionEncoder(InversionConfig.from_dict(wf.config))
    load_state(encoder, wf.tensors, path=wf.path)
    return encoder.to(device or "cpu").eval().requires_grad_(False)


def fits(encoder: InversionEncoder, generator: Any) -> bool:
    """Whether the encoder's latents and images are the generator's."""
    return encoder.config.latent_dim == generator.latent_dim and encoder.config.resolution == generator.resolution \
        and encoder.config.channels == generator.channels


@torch.no_grad()
def guess(encoder: InversionEncoder, target: torch.Tensor) -> torch.Tensor:
    """The encoder's latent [d] for one image [1, C, R, R] (resized/converted by the caller)."""
    return encoder(target.to(next(encoder.parameters()).device, torch.float32))[0].cpu()


__all__ = ["InversionConfig", "InversionTrainConfig", "InversionEncoder", "train_inversion", "evaluate_inversion",
           "save_inversion", "load_inversion", "fits", "guess", "unit_shell"]
