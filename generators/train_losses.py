"""The losses of a progressive-GAN training step (`generators.train.Trainer.update`).

`kind` is the config's `loss` (`train_config.LOSSES`): "wgan-gp" is WGAN (Arjovsky et al. 2017)
with the gradient penalty of Gulrajani et al. 2017 and PGAN's drift term (Karras et al. 2018);
"logistic" is the non-saturating logistic loss (Goodfellow et al. 2014) with an R1 penalty on
real images (Mescheder et al. 2018), as in StyleGAN2. Scores are D's outputs `[n]` in float32; a
`critic` maps images `[n, C, r, r]` to such scores (D, with augmentation and autocast as the
trainer runs it).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]  # images [n, C, r, r] -> scores [n]


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor, *, drift: float) -> torch.Tensor:
    """D's loss on its scores of real and fake images (`drift`: epsilon of epsilon * D(real)^2, WGAN only)."""
    if kind == "logistic":
        return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
    return d_fake.mean() - d_real.mean() + drift * d_real.square().mean()


def generator_loss(kind: str, scores: torch.Tensor) -> torch.Tensor:
    """G's loss on D's scores of its images."""
    return F.softplus(-scores).mean() if kind == "logistic" else -scores.mean()


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (|grad D(mix)| - 1)^2 on the mixes lerp(fake, real, eps), eps [n, 1, 1, 1] in [0, 1)."""
    mix = torch.lerp(fake, real, eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def r1_penalty(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1: |grad D(real)|^2 on real images (already augmented, if D sees augmented images), its own D pass."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).square().sum(dim=1).mean()


__all__ = ["Critic", "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty"]
