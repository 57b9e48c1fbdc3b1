"""3x3 convolutions at 4x4 and 8x8 as Winograd F(4x4, 3x3) matrix products, for training on the CPU.

At 4x4 and 8x8 a PGAN step is nearly all 3x3 convolutions with 256 channels, and oneDNN's direct
kernels already run them near this CPU's float32 peak; Winograd's algorithm (Lavin & Gray 2016,
"Fast Algorithms for Convolutional Neural Networks") needs 4x fewer multiplications for the same
result. Each 4x4 output tile is A^T [(G g G^T) * (B^T d B)] A, with d the 6x6 input tile around it.

Written with torch matrix products only, so autograd differentiates it (twice, for the gradient
penalty) and every product is one large GEMM with no layout copies:
- the input transform of every tile of an image is one constant matrix applied to the flattened
  H*W pixels ([36 T^2, H W], T = H / 4 tiles per side; zero padding is folded in), which reads an
  NCHW tensor as a transposed [H W, N C] matrix;
- the 36 products per tile are one batched matmul over channels: [36, T^2 N, C] x [36, C, O];
- the output transform is again one constant matrix, written so the result comes out NCHW.
The flattened transforms do more arithmetic than separable ones would (at 8x8 their matrices are
81-86% zeros, at 4x4 31-44%), but as single GEMMs they cost less than the copies a separable form
needs. At 16x16 and above they would cost more than they save, so those sizes keep `F.conv2d`.
On the CPU the transforms run as generated C instead (`generators.winograd_c`, built on first
use; these matmuls remain the fallback): the same maps, in one pass over memory.

Results equal `F.conv2d(x, w, b, padding=1)` up to float32 rounding (about 1e-5 of the output's
largest value, tests/test_winograd.py). Not for bfloat16: the transforms' coefficients (up to 8 in
A, 5 in B) would amplify its rounding, and AMX runs bfloat16 direct convolutions fast anyway.
"""
from __future__ import annotations

import torch

from . import winograd_c
from .winograd_transforms import ALPHA, C_SIZES, G, SIZES, TILE, axis_transforms

_matrices: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _constants(size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(input transform [36 T^2, size^2], output transform [36 T^2, size^2], weight transform [36, 9])."""
    key = (size, dtype, device)
    if key not in _matrices:
        b, a = axis_transforms(size)
        tiles = size // TILE
        # rows (i, j, ty, tx): the batched matmul's batch is the tile element (i, j) and its rows
        # (ty, tx, n) come out contiguous; columns (h, w): an image's pixels
        k_in = torch.einsum("iyh,jxw->ijyxhw", b, b).reshape(ALPHA * ALPHA * tiles * tiles, size * size)
        k_out = torch.einsum("hiy,wjx->ijyxhw", a, a).reshape(ALPHA * ALPHA * tiles * tiles, size * size)
        g = torch.tensor(G, dtype=torch.float64)
        k_w = torch.kron(g, g)  # [36, 9]: G w G^T on a flattened 3x3 kernel
        _matrices[key] = tuple(m.to(device=device, dtype=dtype).contiguous() for m in (k_in, k_out, k_w))
    return _matrices[key]


def supports(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `conv3x3` applies: a float32 3x3 kernel on square 4x4 or 8x8 images, outside autocast."""
    return (weight.shape[-2:] == (3, 3) and x.dim() == 4 and x.shape[-1] == x.shape[-2]
            and x.shape[-1] in SIZES and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled(x.device.type))


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
            weight_scale: float = 1.0) -> torch.Tensor:
    """`F.conv2d(x, weight * weight_scale, bias, padding=1)` for x [N, C, S, S] with S in SIZES (see
    `supports`); the scale multiplies the small kernel-transform matrix (in the C path, the output
    transform) instead of the weights."""
    if not supports(x, weight):
        raise ValueError(f"Winograd F(4x4, 3x3) takes float32 [N, C, S, S] with S in {SIZES} and 3x3 kernels, "
                         f"got {x.dtype} {list(x.shape)} and {list(weight.shape)}")
    n, c, size, _ = x.shape
    out = weight.shape[0]
    if weight.shape[1] != c:
        raise ValueError(f"input has {c} channels, the kernel expects {weight.shape[1]}")
    tiles = size // TILE
    rows = tiles * tiles * n  # T^2 N tiles
    if size in C_SIZES and x.device.type == "cpu" and winograd_c.available():
        # the same maps as below, as generated C (`winograd_c`; at 8x8 these matmuls' matrices are
        # 86% zeros); the equalized-lr scale rides on the output transform
        u = winograd_c.kernel_tiles(weight)  # [36, O, C]
        v = winograd_c.to_tiles(x, f"in{size}").view(ALPHA * ALPHA, rows, c)
        m = torch.bmm(v, u.transpose(1, 2)).view(ALPHA, ALPHA, tiles, tiles, n, out)
        return winograd_c.from_tiles(m, f"out{size}", bias, weight_scale)
    k_in, k_out, k_w = _constants(size, x.dtype, x.device)
    k_w = k_w * weight_scale if weight_scale != 1.0 else k_w
    u = (k_w @ weight.reshape(out * c, 9).t()).view(ALPHA * ALPHA, out, c)  # G g G^T per kernel
    v = (k_in @ x.reshape(n * c, size * size).t()).view(ALPHA * ALPHA, rows, c)  # B^T d B per tile
    m = torch.bmm(v, u.transpose(1, 2))  # [36, T^2 N, O]: the element-wise products, summed over channels
    y = (m.view(k_in.shape[0], n * out).t() @ k_out).view(n, out, size, size)  # A^T m A, NCHW
    return y if bias is None else y + bias.view(out, 1, 1)


__all__ = ["SIZES", "conv3x3", "supports"]
