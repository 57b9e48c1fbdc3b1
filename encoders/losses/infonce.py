"""SimCLR's NT-Xent / InfoNCE loss (Chen, Kornblith, Norouzi & Hinton, ICML 2020; van den Oord
et al. 2018 for InfoNCE)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_views


class InfoNCELoss(nn.Module):
    """Normalised-temperature cross entropy over the 2N views of a batch.

    Each of the 2N embeddings (L2-normalised) must pick its partner view among the other 2N - 1
    by cosine similarity / temperature; the loss is the mean cross entropy over all 2N anchors.
    """

    def __init__(self, temperature: float = 0.2):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        check_views(z1, z2, "InfoNCE")
        n = z1.shape[0]
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        sim = z @ z.T / self.temperature  # [2N, 2N]
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(sim, target)
