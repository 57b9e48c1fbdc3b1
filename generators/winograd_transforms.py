"""The matrices of Winograd's F(4x4, 3x3) (Lavin & Gray 2016): what `generators.winograd` multiplies
with and `generators.winograd_c` compiles into C, in one place that both import."""
from __future__ import annotations

import torch

# F(4x4, 3x3) with interpolation points 0, +-1, +-2 and infinity (Lavin & Gray, section 4.2)
BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
TILE, ALPHA = 4, 6  # output tile side, input tile side (TILE + 3 - 1)
SIZES = (4, 8)  # image sides where it pays (`generators.winograd`)
C_SIZES = (4, 8)  # sides whose transforms run as generated C on the CPU (`winograd_c`)


def axis_transforms(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Along one image axis of `size` pixels with T = size / 4 tiles: the input transform
    [ALPHA, T, size] (B^T on each tile's 6 pixels, padding 1 folded in: pixels outside are zeros)
    and the output transform [size, ALPHA, T] (A^T placing each tile's 4 outputs)."""
    bt, at = torch.tensor(BT, dtype=torch.float64), torch.tensor(AT, dtype=torch.float64)
    tiles = size // TILE
    b = torch.zeros(ALPHA, tiles, size, dtype=torch.float64)
    a = torch.zeros(size, ALPHA, tiles, dtype=torch.float64)
    for t in range(tiles):
        for k in range(ALPHA):
            pixel = TILE * t + k - 1  # the tile's k-th input pixel; -1 and `size` are padding
            if 0 <= pixel < size:
                b[:, t, pixel] = bt[:, k]
        a[TILE * t:TILE * (t + 1), :, t] = at
    return b, a


__all__ = ["BT", "G", "AT", "TILE", "ALPHA", "SIZES", "C_SIZES", "axis_transforms"]
