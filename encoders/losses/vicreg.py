"""VICReg: Variance-Invariance-Covariance Regularization (Bardes, Ponce & LeCun, ICLR 2022)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_views


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square matrix, flattened."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class VICRegLoss(nn.Module):
    """lambda * invariance + mu * variance + nu * covariance on two views [N, D].

    invariance: mean squared error between the views; variance: mean of relu(1 - sqrt(var + eps))
    per dimension (unbiased variance), averaged over both views; covariance: sum of squared
    off-diagonal covariance entries divided by D, summed over both views. Defaults are the
    paper's: lambda = mu = 25, nu = 1, eps = 1e-4.
    """

    def __init__(self, lambda_: float = 25.0, mu: float = 25.0, nu: float = 1.0, eps: float = 1e-4):
        super().__init__()
        self.lambda_, self.mu, self.nu, self.eps = lambda_, mu, nu, eps

    def terms(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        check_views(z1, z2, "VICReg")
        n, d = z1.shape
        invariance = F.mse_loss(z1, z2)
        variance = z1.new_zeros(())
        covariance = z1.new_zeros(())
        for z in (z1, z2):
            z = z - z.mean(0)
            std = torch.sqrt(z.var(0) + self.eps)
            variance = variance + F.relu(1 - std).mean() / 2
            cov = z.T @ z / (n - 1)
            covariance = covariance + off_diagonal(cov).pow(2).sum() / d
        return {"invariance": invariance, "variance": variance, "covariance": covariance}

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        t = self.terms(z1, z2)
        return self.lambda_ * t["invariance"] + self.mu * t["variance"] + self.nu * t["covariance"]
