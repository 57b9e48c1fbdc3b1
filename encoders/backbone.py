"""The convolutional backbone and the `Encoder` every distance and benchmark uses.

`Encoder(images)` takes a batch [N, C, H, W] in [-1, 1] of any size and channel count, converts
it to the config's channels and resolution itself (differentiably, so gradient search can flow
through it) and returns features [N, D].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import POOLS, EncoderConfig

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


def adapt_images(images: torch.Tensor, *, channels: int, resolution: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, channels, resolution, resolution]: centre square crop, channel
    conversion (RGB -> luminance, gray -> repeated, extra channels dropped), area/bilinear resize."""
    if images.dim() != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {list(images.shape)}")
    n, c, h, w = images.shape
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        images = images[:, :, top:top + s, left:left + s]
    if c != channels:
        if channels == 1:
            images = (images[:, :3] * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True) \
                if c >= 3 else images[:, :1]
        else:
            images = images[:, :3] if c >= 3 else images[:, :1].expand(n, 3, *images.shape[2:])
    size = images.shape[-1]
    if size > resolution:
        images = F.interpolate(images, size=(resolution, resolution), mode="area")
    elif size < resolution:
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return images


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvBackbone(nn.Module):
    """[N, C, R, R] -> [N, D]: stride-2 conv stages down to 4 x 4, one more conv, then the head.

    Channels double each stage and reach 4 * width at 4 x 4 (width / 2 at 32 x 32 for R = 64), so
    the cost stays small on a CPU. No head pools only globally: each keeps where things are, which
    matters for aligned faces (the mouth is always low in the frame) and the moving-dot probe.
    `linear` flattens the last map into a linear layer; `pooled` concatenates 2 x 2 average pools
    of the last map [4w, 4, 4] and of the map one stage up [2w, 8, 8] (a multi-scale readout with
    no weights of its own, read by the projector during training and by probes and distances);
    `multiscale` adds the last map's mean and 4 x 4 pools of the map one stage up (finer places:
    the corners of a mouth, the sleeves of a shirt).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        w = config.width
        stages = int(math.log2(config.resolution // 4))  # 32 -> 3, 64 -> 4
        layers = []
        cin = config.channels
        for i in range(stages):
            cout = max(8, w * 4 // 2 ** (stages - 1 - i))
            layers.append(_conv(cin, cout, 2))
            cin = cout
        layers.append(_conv(cin, cin, 1))
        self.features = nn.Sequential(*layers)
        self.out_channels = cin
        self.head = config.head
        if self.head == "linear":
            self.fc = nn.Linear(cin * 16, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head == "linear":
            return self.fc(self.features(x).flatten(1))
        upper = self.features[:-2](x)  # [N, 2w, 8, 8]
        maps = (self.features[-2:](upper), upper)  # the last [N, 4w, 4, 4], the one above
        return torch.cat([F.adaptive_avg_pool2d(maps[m], size).flatten(1) for size, m in POOLS[self.head]], 1)


class Encoder(nn.Module):
    """Images -> features [N, D]; the representation every method is probed and compared on.

    For IRMAE the representation is the code after the extra linear layers (what the decoder
    reads), so those layers live here. The buffers `feature_std` [D] and `pair_median` [] hold the
    statistics `Distance` normalises by (measured on real images after training; 1 until then).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.backbone = ConvBackbone(config)
        n_linear = config.irmae_layers if config.method == "irmae" else 0
        self.linear = nn.Sequential(*[nn.Linear(config.dim, config.dim, bias=False) for _ in range(n_linear)])
        self.register_buffer("feature_std", torch.ones(config.dim))
        self.register_buffer("pair_median", torch.ones(()))
        self.info: dict = {}

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = adapt_images(images, channels=self.config.channels, resolution=self.config.resolution)
        return self.linear(self.backbone(x))
