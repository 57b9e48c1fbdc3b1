"""DirectCLR (Jing, Vincent, LeCun & Tian, "Understanding Dimensional Collapse in Contrastive
Self-supervised Learning", ICLR 2022).

No projector: InfoNCE is applied directly to the first d0 entries of the representation. The
paper shows the projector's job in contrastive learning is to pick a low-rank subspace of the
representation, so training a fixed subspace directly prevents the collapse of the rest.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_views
from .infonce import InfoNCELoss


class DirectCLRLoss(nn.Module):
    """InfoNCE on `z[:, :d0]` of the two views' representations [N, D], D >= d0."""

    def __init__(self, d0: int, temperature: float = 0.2):
        super().__init__()
        if d0 < 1:
            raise ValueError(f"d0 must be >= 1, got {d0}")
        self.d0 = d0
        self.infonce = InfoNCELoss(temperature)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        check_views(z1, z2, "DirectCLR")
        if z1.shape[1] < self.d0:
            raise ValueError(f"DirectCLR: representation has {z1.shape[1]} dims, fewer than d0 = {self.d0}")
        return self.infonce(z1[:, :self.d0], z2[:, :self.d0])
