"""Seeded, batched augmentations that suit each data set (the views SSL methods compare).

Everything runs on tensors [N, C, H, W] in [-1, 1] and draws from one `torch.Generator`, so a
seed gives the same views anywhere and training can resume the exact random stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each augmentation; colour jitter applies to RGB batches only."""

    crop_scale: tuple[float, float] = (0.5, 1.0)  # area fraction kept by the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    rot90: bool = False  # random quarter turns (textures have no up)
    brightness: float = 0.4  # shift in [-b, b] (in [-1, 1] units, i.e. half of the range)
    contrast: float = 0.4  # factor in [1 - c, 1 + c] around each image's mean
    saturation: float = 0.4  # RGB only
    grayscale: float = 0.2  # RGB only: probability of dropping colour
    blur: float = 0.5  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.1, 1.5)  # in pixels at the encoder resolution


PRESETS: dict[str, AugmentConfig] = {
    # aligned faces: mild crops keep the mouth in frame, faces are left-right symmetric
    "faces": AugmentConfig(crop_scale=(0.6, 1.0), blur_sigma=(0.1, 1.2)),
    # centred garments: left-right flips are fine, up-down are not
    "fashion": AugmentConfig(crop_scale=(0.4, 1.0), blur_sigma=(0.1, 1.0)),
    # textures are stationary: any crop, flip or quarter turn shows the same material
    "textures": AugmentConfig(crop_scale=(0.2, 1.0), vflip=0.5, rot90=True),
    "generic": AugmentConfig(),
}


def preset(name: str) -> AugmentConfig:
    """The augmentation preset for a data set name; unknown names (user folders) get 'generic'."""
    return PRESETS.get(name, PRESETS["generic"])


class Augment:
    """`aug(images) -> views`, one independent random draw per image, from a seeded generator."""

    def __init__(self, config: AugmentConfig, *, seed: int):
        self.config = config
        self.generator = torch.Generator().manual_seed(int(seed))

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (hi - lo) + lo

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"expected [N, C, H, W], got {list(images.shape)}")
        x = images.float()
        x = self._crop_flip(x)
        x = self._photometric(x)
        if self.config.blur > 0:
            x = self._blur(x)
        return x.clamp(-1, 1)

    def _crop_flip(self, x: torch.Tensor) -> torch.Tensor:
        """Random resized crop, flips and quarter turns as one affine resampling per image."""
        c, n = self.config, len(x)
        area = self._u(n, *c.crop_scale)
        log_r = self._u(n, math.log(c.crop_ratio[0]), math.log(c.crop_ratio[1]))
        ratio = torch.exp(log_r)
        sx = torch.sqrt(area * ratio).clamp(max=1.0)  # half-widths in normalised coordinates
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (torch.rand(n, generator=self.generator) * 2 - 1) * (1 - sx)
        ty = (torch.rand(n, generator=self.generator) * 2 - 1) * (1 - sy)
        fx = torch.where(torch.rand(n, generator=self.generator) < c.hflip, -1.0, 1.0)
        fy = torch.where(torch.rand(n, generator=self.generator) < c.vflip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = sx * fx, sy * fy
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        if c.rot90:
            k = torch.randint(0, 4, (n,), generator=self.generator).float() * (math.pi / 2)
            rot = torch.stack([torch.stack([torch.cos(k), -torch.sin(k)], 1),
                               torch.stack([torch.sin(k), torch.cos(k)], 1)], 1).round()
            theta[:, :, :2] = rot @ theta[:, :, :2]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _photometric(self, x: torch.Tensor) -> torch.Tensor:
        c, n = self.config, len(x)
        if x.shape[1] == 3:
            gray = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            s = self._u(n, 1 - c.saturation, 1 + c.saturation).view(n, 1, 1, 1)
            drop = (torch.rand(n, generator=self.generator) < c.grayscale).view(n, 1, 1, 1)
            s = torch.where(drop, torch.zeros_like(s), s)
            x = gray + (x - gray) * s
        mean = x.mean((1, 2, 3), keepdim=True)
        contrast = self._u(n, 1 - c.contrast, 1 + c.contrast).view(n, 1, 1, 1)
        bright = self._u(n, -c.brightness, c.brightness).view(n, 1, 1, 1)
        return (x - mean) * contrast + mean + bright

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image Gaussian blur with a random sigma, as one grouped separable convolution."""
        c, (n, ch, h, w) = self.config, x.shape
        sigma = self._u(n, *c.blur_sigma)
        on = torch.rand(n, generator=self.generator) < c.blur
        radius = max(1, math.ceil(2 * c.blur_sigma[1]))
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k = torch.exp(-t[None] ** 2 / (2 * sigma[:, None] ** 2))
        k = k / k.sum(1, keepdim=True)
        k[~on] = (t == 0).to(x.dtype)  # identity kernel where no blur is drawn
        k = k.repeat_interleave(ch, 0)  # [N*C, K]
        y = F.pad(x.reshape(1, n * ch, h, w), (radius, radius, radius, radius), mode="reflect")
        y = F.conv2d(y, k.view(n * ch, 1, 1, -1), groups=n * ch)
        y = F.conv2d(y, k.view(n * ch, 1, -1, 1), groups=n * ch)
        return y.view(n, ch, h, w)
