"""DCL and DCLW: Decoupled Contrastive Learning (Yeh, Hong, Hsu, Liu, Chen & LeCun, ECCV 2022).

InfoNCE with the positive pair removed from the denominator, which removes the coupling between
the positive and negative terms that makes InfoNCE need large batches. DCLW additionally weights
the positive term by a negative von Mises-Fisher weight (sigma = 0.5): harder positive pairs
(lower similarity) get more weight.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_views


def von_mises_fisher_weights(z1: torch.Tensor, z2: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """[N] weights 2 - N * softmax_i(<z1_i, z2_i> / sigma) for L2-normalised z1, z2 (mean 1)."""
    sim = (z1 * z2).sum(1) / sigma
    return 2 - len(z1) * F.softmax(sim, dim=0)


class DCLLoss(nn.Module):
    """Symmetrised decoupled contrastive loss; `sigma` set means DCLW.

    For anchor z1_i: -w_i <z1_i, z2_i> / t + log sum_{j != i} exp(<z1_i, z1_j> / t)
    + log sum_{j != i} exp(<z1_i, z2_j> / t); averaged over i and over the two view orders.
    """

    def __init__(self, temperature: float = 0.2, sigma: float | None = None):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature, self.sigma = temperature, sigma

    def _one_way(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(z1.shape[0], dtype=torch.bool, device=z1.device)
        sim_11 = z1 @ z1.T / self.temperature
        sim_12 = z1 @ z2.T / self.temperature
        positive = -torch.diagonal(sim_12)
        if self.sigma is not None:
            positive = positive * von_mises_fisher_weights(z1, z2, self.sigma)
        # the diagonals (self, positive) are left out of the denominators: exp(-inf) = 0
        negative = torch.logsumexp(sim_11.masked_fill(eye, float("-inf")), 1) + \
            torch.logsumexp(sim_12.masked_fill(eye, float("-inf")), 1)
        return (positive + negative).mean()

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        check_views(z1, z2, "DCLW" if self.sigma is not None else "DCL")
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        return (self._one_way(z1, z2) + self._one_way(z2, z1)) / 2
