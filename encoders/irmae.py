"""IRMAE: Implicit Rank-Minimizing Autoencoder (Jing, Zbontar & LeCun, NeurIPS 2020).

encoder -> l bias-free linear layers with no activation between them -> decoder, trained with
pixel MSE. The extra linear layers change nothing the network can express (their product is one
matrix) but gradient descent through a deep linear chain favours low-rank codes, so the code
space ends up with a low effective rank. `irmae_layers = 0` is a plain autoencoder.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Encoder, adapt_images
from .config import EncoderConfig


class Decoder(nn.Module):
    """[N, D] -> [N, C, R, R] in [-1, 1]: linear to 4 x 4, then stride-2 transposed-conv stages."""

    def __init__(self, config: EncoderConfig, in_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.fc = nn.Linear(config.dim, in_channels * 16)
        w = config.width
        stages = int(math.log2(config.resolution // 4))
        layers: list[nn.Module] = []
        cin = in_channels
        for i in reversed(range(stages)):
            cout = max(8, w * 4 // 2 ** (stages - i)) if i else max(8, w // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        layers += [nn.Conv2d(cin, config.channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc(z)).view(len(z), self.in_channels, 4, 4)
        return torch.tanh(self.net(x))


class IRMAE(nn.Module):
    """Encoder (backbone + `irmae_layers` linear maps) and decoder; `loss(images)` is pixel MSE."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if config.method != "irmae":
            raise ValueError(f"IRMAE needs method 'irmae', got {config.method!r}")
        self.encoder = Encoder(config)
        self.decoder = Decoder(config, self.encoder.backbone.out_channels)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] -> [N, C', R, R] reconstruction at the encoder's channels and resolution."""
        return self.decoder(self.encoder(images))

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Mean squared error in [-1, 1] pixel space between the images and their reconstruction."""
        c = self.encoder.config
        target = adapt_images(images, channels=c.channels, resolution=c.resolution)
        return F.mse_loss(self.reconstruct(images), target)
