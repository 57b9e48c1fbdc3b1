"""Animated GIFs of a search or an interpolation: image batches in, a .gif file out."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from studio.imageio import to_pils

MAX_FRAMES = 400


def save_gif(frames: torch.Tensor, path: str | Path, *, size: int = 256, frame_ms: int = 80,
             boomerang: bool = False, hold_last_ms: int = 800) -> Path:
    """[T, C, H, W] in [-1, 1] -> looping GIF at `size` px (bicubic upscaling), one frame per image.

    `boomerang` plays forwards then backwards (for interpolations); the last frame is held a
    little longer so the result of a search is visible.
    """
    if frames.dim() != 4 or len(frames) == 0:
        raise ValueError(f"expected frames [T, C, H, W] with T >= 1, got {list(frames.shape)}")
    if len(frames) > MAX_FRAMES:  # keep evenly spaced frames, always the last one
        idx = torch.linspace(0, len(frames) - 1, MAX_FRAMES).round().long()
        frames = frames[idx]
    pils = [im.convert("RGB").resize((size, size), Image.BICUBIC) for im in to_pils(frames)]
    durations = [frame_ms] * len(pils)
    if boomerang and len(pils) > 2:
        pils = pils + pils[-2:0:-1]
        durations = [frame_ms] * len(pils)
    durations[-1 if not boomerang else len(frames) - 1] = max(frame_ms, hold_last_ms)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pils[0].save(path, format="GIF", save_all=True, append_images=pils[1:], duration=durations,
                 loop=0, optimize=False, disposal=1)
    return path
