"""Progressive GAN networks (Karras et al. 2018, "Progressive Growing of GANs").

The layer arithmetic follows pytorch_GAN_zoo's `progressive_conv_net.py`, the compatibility
reference, so its checkpoints load by renaming keys (see `generators.ganzoo`):

- equalized learning rate: weights are stored as N(0, 1) draws and the layer's *output* (bias
  included, as in the reference) is scaled at run time by He's constant sqrt(2 / fan_in);
- pixel-wise feature normalisation after every generator layer (and on the input latent);
- minibatch standard deviation as an extra channel before the discriminator's last conv;
- scales are added one at a time; `alpha` is the fade-in weight of the *lower*-resolution path
  (the reference's convention: alpha = 1 means only the previous scale is seen, 0 means none).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from weightfile import check_config_keys

from . import winograd

OUTPUT_ACTIVATIONS = (None, "tanh")


@dataclass(frozen=True)
class PGANConfig:
    """Everything that shapes the networks; stored as JSON beside the weights."""

    latent_dim: int = 64
    depths: tuple[int, ...] = (128, 128, 64, 32, 16)  # channels per scale: 4x4, 8x8, ...
    channels: int = 1  # 1 grayscale, 3 RGB
    leaky_relu: float = 0.2
    pixel_norm: bool = True
    minibatch_stddev: bool = True
    equalized_lr: bool = True
    output_activation: str | None = None  # None (WGAN-GP) or "tanh" (DCGAN/MSE losses)
    decision_size: int = 1  # discriminator outputs; > 1 only for zoo AC-GAN checkpoints
    alpha: float = 0.0  # fade-in weight of the lower scale, see module docstring

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if not self.depths or min(self.depths) < 1:
            raise ValueError(f"depths must be a non-empty list of positive ints, got {self.depths}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.decision_size < 1:
            raise ValueError(f"decision_size must be >= 1, got {self.decision_size}")

    @property
    def resolution(self) -> int:
        return 4 * 2 ** (len(self.depths) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["depths"] = list(self.depths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PGANConfig":
        """Strict: an unknown key is an error (a file from another version), never ignored."""
        check_config_keys(cls, d, "PGAN config")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class EqualizedLayer(nn.Module):
    """Conv or linear layer with N(0, 1) weights scaled by He's constant at run time."""

    def __init__(self, weight_shape: tuple[int, ...], *, equalized: bool, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(weight_shape) if equalized else torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(weight_shape[0]))
        fan_in = math.prod(weight_shape[1:])
        if not equalized:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0
        self.padding = padding
        self.winograd = False  # 3x3 convolutions at 4x4 and 8x8 by Winograd's algorithm (`use_winograd`)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Scaling weight and bias equals the reference's scaling of the output, at less cost.
        b = self.bias * self.scale
        if self.weight.dim() == 2:
            return F.linear(x, self.weight * self.scale, b)
        if self.winograd and winograd.supports(x, self.weight):
            # the weight's scale rides on Winograd's (tiny) kernel transform
            return winograd.conv3x3(x, self.weight, b, weight_scale=self.scale)
        return F.conv2d(x, self.weight * self.scale, b, padding=self.padding)


def use_winograd(net: nn.Module, on: bool = True) -> None:
    """Compute `net`'s float32 3x3 convolutions on 4x4 and 8x8 maps as Winograd F(4x4, 3x3) matrix
    products (`generators.winograd`): the same results up to float rounding, with 4x fewer
    multiplications, for training on a CPU (a GPU's cuDNN picks such algorithms itself)."""
    for m in net.modules():
        if isinstance(m, EqualizedLayer):
            m.winograd = on


def conv(c_in: int, c_out: int, k: int, equalized: bool) -> EqualizedLayer:
    return EqualizedLayer((c_out, c_in, k, k), equalized=equalized, padding=k // 2)


def linear(c_in: int, c_out: int, equalized: bool) -> EqualizedLayer:
    return EqualizedLayer((c_out, c_in), equalized=equalized)


class _LeakyReLU(torch.autograd.Function):
    """F.leaky_relu whose backward is linear in the incoming gradient alone.

    autograd's own backward also depends on the input, with a derivative that is exactly zero
    (leaky_relu_backward's formula returns zeros for it), so a gradient penalty's double backward
    sent those zeros back through every layer below: on the CPU at 4x4 one convolution backward
    and two matmuls per training step, 10-20% of the step's conv kernel time. Results are
    bit-identical (tests/test_pgan.py). The trainer builds its discriminator with `penalty_relu=True`.
    """

    generate_vmap_rule = True  # composable with torch.func transforms

    @staticmethod
    def forward(x: torch.Tensor, slope: float) -> torch.Tensor:
        return F.leaky_relu(x, slope)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, float], output: torch.Tensor) -> None:
        x, ctx.slope = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        # aten's own kernel, one pass (torch.where(x > 0, grad, grad * slope) took three); x is
        # detached, so a double backward differentiates this in `grad` alone
        return torch.ops.aten.leaky_relu_backward(grad, x.detach(), ctx.slope, False), None


def leaky_relu(x: torch.Tensor, slope: float) -> torch.Tensor:
    """Leaky ReLU for networks differentiated twice (the discriminator), see `_LeakyReLU`."""
    return _LeakyReLU.apply(x, slope)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def upscale2d(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2, [N, C, H, W] -> [N, C, 2H, 2W] (the reference's expand-and-reshape gives
    the same values; its backward, a sum over a strided view, took 2.5x longer on the CPU)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


_pool_matrices: dict[tuple[int, int, torch.dtype], torch.Tensor] = {}


def downscale2d(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, [N, C, H, W] -> [N, C, H/2, W/2]. On the CPU, for NCHW maps of up to 16x16,
    one matmul with a constant [H W, H W / 4] matrix: forward and backward of [64, 256, 8, 8] took
    0.7 ms against avg_pool2d's 5.3 (the same values up to float rounding)."""
    n, c, h, w = x.shape
    if x.device.type != "cpu" or h * w > 256 or h % 2 or w % 2 or not x.is_contiguous():
        return F.avg_pool2d(x, 2)
    key = (h, w, x.dtype)
    if key not in _pool_matrices:
        rows = torch.eye(h // 2).repeat_interleave(2, 0)  # [h, h/2]: pixel row -> pooled row
        cols = torch.eye(w // 2).repeat_interleave(2, 0)
        _pool_matrices[key] = (torch.einsum("ay,bx->abyx", rows, cols).reshape(h * w, h * w // 4) / 4).to(x.dtype)
    return (x.reshape(n * c, h * w) @ _pool_matrices[key]).view(n, c, h // 2, w // 2)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: mean over features of the stddev within groups of the batch.

    Groups as in the reference: size min(N, 4), or the whole batch when N is not divisible.
    """
    n, c, h, w = x.shape
    g = min(n, group_size)
    if n % g:
        g = n
    if g == 1:
        y = x.new_zeros(n, 1, h, w)
    else:
        # the unbiased variance over each group, written out: aten::var over this middle dimension
        # took 5.5 ms for [32, 256, 4, 4] on the CPU (27x this), 10% of a 4x4 training step
        # in float32 under bfloat16 autocast too: there the 1e-8 would round away and a zero
        # variance give sqrt an infinite gradient
        y = x.float().view(-1, g, c, h, w)
        y = (y - y.mean(dim=1, keepdim=True)).square().sum(dim=1).div(g - 1).add(1e-8).sqrt()
        y = y.view(n // g, -1).mean(dim=1)  # [groups]
        y = y.view(-1, 1, 1, 1, 1).expand(-1, g, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


def fading(alpha: float | torch.Tensor) -> bool:
    """Whether to blend in the previous scale (networks and the trainer's real images): alpha > 0,
    or a tensor alpha (the trainer's CUDA graphs hold one through a whole fade phase and fill in
    its value per step, see `generators.step_graph`; comparing it to 0 would wait on the device)."""
    return isinstance(alpha, torch.Tensor) or alpha > 0


class Generator(nn.Module):
    """z [N, latent_dim] -> images [N, C, R, R], roughly in [-1, 1] (not clipped)."""

    def __init__(self, config: PGANConfig):
        super().__init__()
        self.config = config
        eq, d0 = config.equalized_lr, config.depths[0]
        self.format_layer = linear(config.latent_dim, 16 * d0, eq)
        self.scale0 = conv(d0, d0, 3, eq)
        self.scales = nn.ModuleList()
        self.to_rgb = nn.ModuleList([conv(d0, config.channels, 1, eq)])
        for prev, depth in zip(config.depths[:-1], config.depths[1:]):
            self.scales.append(nn.ModuleList([conv(prev, depth, 3, eq), conv(depth, depth, 3, eq)]))
            self.to_rgb.append(conv(depth, config.channels, 1, eq))
        self.alpha = config.alpha  # visible progressive-growing state, changed by the trainer

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, self.config.leaky_relu)
        return pixel_norm(x) if self.config.pixel_norm else x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected latents [N, {self.config.latent_dim}], got {list(z.shape)}")
        x = pixel_norm(z) if self.config.pixel_norm else z
        x = F.leaky_relu(self.format_layer(x), self.config.leaky_relu).view(z.shape[0], -1, 4, 4)
        x = pixel_norm(x) if self.config.pixel_norm else x  # per 4x4 position, over channels
        x = self._act(self.scale0(x))
        fade = len(self.scales) > 0 and fading(self.alpha)
        low = None
        for i, (c1, c2) in enumerate(self.scales):
            if fade and i == len(self.scales) - 1:
                low = upscale2d(self.to_rgb[-2](x))
            x = self._act(c2(self._act(c1(upscale2d(x)))))
        x = self.to_rgb[-1](x)
        if low is not None:
            x = self.alpha * low + (1.0 - self.alpha) * x
        if self.config.output_activation == "tanh":
            x = torch.tanh(x)
        return x


class Discriminator(nn.Module):
    """images [N, C, R, R] -> scores [N, decision_size]; higher means more real (WGAN)."""

    def __init__(self, config: PGANConfig, *, penalty_relu: bool = False):
        super().__init__()
        self.config = config
        # True in training: the gradient penalty's double backward skips exact zeros (`_LeakyReLU`).
        # False elsewhere: under torch.func.vmap (the search's realism) the fused op is 20-40% faster.
        self.penalty_relu = penalty_relu
        eq, d0 = config.equalized_lr, config.depths[0]
        self.from_rgb = nn.ModuleList([conv(config.channels, d0, 1, eq)])
        self.scales = nn.ModuleList()
        for prev, depth in zip(config.depths[:-1], config.depths[1:]):
            self.scales.append(nn.ModuleList([conv(depth, depth, 3, eq), conv(depth, prev, 3, eq)]))
            self.from_rgb.append(conv(config.channels, depth, 1, eq))
        self.scale0_conv = conv(d0 + int(config.minibatch_stddev), d0, 3, eq)
        self.scale0_linear = linear(16 * d0, d0, eq)
        self.decision = linear(d0, config.decision_size, eq)
        self.alpha = config.alpha

    def _lrelu(self, x: torch.Tensor) -> torch.Tensor:
        if self.penalty_relu:
            return leaky_relu(x, self.config.leaky_relu)
        return F.leaky_relu(x, self.config.leaky_relu)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations [N, depths[0]]."""
        r = self.config.resolution
        if x.dim() != 4 or x.shape[1] != self.config.channels or x.shape[-2:] != (r, r):
            raise ValueError(f"expected images [N, {self.config.channels}, {r}, {r}], got {list(x.shape)}")
        fade = len(self.scales) > 0 and fading(self.alpha)
        low = self._lrelu(self.from_rgb[-2](downscale2d(x))) if fade else None
        x = self._lrelu(self.from_rgb[-1](x))
        for i, (c1, c2) in enumerate(reversed(self.scales)):
            x = downscale2d(self._lrelu(c2(self._lrelu(c1(x)))))
            if low is not None and i == 0:
                x = self.alpha * low + (1.0 - self.alpha) * x
        if self.config.minibatch_stddev:
            x = minibatch_stddev(x)
        x = self._lrelu(self.scale0_conv(x))
        return self._lrelu(self.scale0_linear(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decision(self.features(x))


def grown(config: PGANConfig, depths: tuple[int, ...], alpha: float = 0.0) -> PGANConfig:
    """The same config at another stage of growth."""
    d = config.to_dict()
    d.update(depths=list(depths), alpha=alpha)
    return PGANConfig.from_dict(d)


__all__ = ["PGANConfig", "Generator", "Discriminator", "minibatch_stddev", "pixel_norm", "upscale2d", "downscale2d",
           "grown", "fading", "use_winograd"]
