"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny, ICML 2021)."""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_views
from .vicreg import off_diagonal


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """[D, D] cross-correlation of the batch-normalised views (biased variance, as BatchNorm1d)."""
    check_views(z1, z2, "Barlow Twins")
    n = z1.shape[0]
    z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    return z1.T @ z2 / n


class BarlowTwinsLoss(nn.Module):
    """sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2, C the batch-normalised cross-correlation.

    lambda = 0.0051 is the paper's value (for D = 8192; we keep it, as the issue asks).
    """

    def __init__(self, lambda_: float = 0.0051, eps: float = 1e-5):
        super().__init__()
        self.lambda_, self.eps = lambda_, eps

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        c = cross_correlation(z1, z2, self.eps)
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        return on_diag + self.lambda_ * off_diagonal(c).pow(2).sum()
