"""Latent files given by users: `.npy` (never with pickles) or `.pt` (weights-only)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch


def load_latents(path: str | Path, latent_dim: int) -> torch.Tensor:
    """[N, latent_dim] float32 from FILE.npy or FILE.pt; clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such latents file")
    if path.suffix not in (".npy", ".pt"):
        raise ValueError(f"{path}: latents must be .npy or .pt")
    try:
        if path.suffix == ".npy":
            z = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".pt":
            z = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(z, dict) and "z" in z:
                z = z["z"]
    except (pickle.UnpicklingError, OSError, RuntimeError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a readable latents file ({str(e).splitlines()[0][:160]})") from None
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{path}: holds a {type(z).__name__}, expected an array N x {latent_dim}")
    if z.dim() == 1:
        z = z[None]
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{path}: latents have shape {list(z.shape)}, the model needs N x {latent_dim}")
    z = z.float()
    if not torch.isfinite(z).all():
        raise ValueError(f"{path}: latents contain NaN or inf")
    return z


def save_array(array: torch.Tensor, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, array.detach().cpu().numpy())
    elif path.suffix == ".pt":
        torch.save(array.detach().cpu(), path)
    else:
        raise ValueError(f"{path}: expected .npy or .pt")
    return path
