"""Shape checks shared by the SSL losses: two views of the same batch, [N, D] each."""
from __future__ import annotations

import torch


def check_views(z1: torch.Tensor, z2: torch.Tensor, loss: str, *, min_batch: int = 2) -> None:
    if z1.dim() != 2 or z2.dim() != 2:
        raise ValueError(f"{loss}: expected two [N, D] embeddings, got {list(z1.shape)} and {list(z2.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"{loss}: the two views must have the same shape, got {list(z1.shape)} and {list(z2.shape)}")
    if z1.shape[0] < min_batch:
        raise ValueError(f"{loss}: needs a batch of at least {min_batch}, got {z1.shape[0]}")
