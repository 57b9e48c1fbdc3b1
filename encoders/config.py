"""The frozen config of one encoder, saved inside its weights and loaded strictly."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from weightfile import check_config_keys

ENCODER_METHODS = ("irmae", "vicreg", "barlow", "simclr", "dcl", "dclw", "directclr")
HEADS = ("linear", "pooled", "multiscale")
# weight-free heads: (output size of the average pool, map) per readout; map 0 is the last 4 x 4 map
# (4 * width channels), map 1 the 8 x 8 map one stage up (2 * width channels)
POOLS = {"pooled": ((2, 0), (2, 1)), "multiscale": ((1, 0), (2, 0), (2, 1), (4, 1))}


def pooled_dim(width: int, head: str = "pooled") -> int:
    """D of a weight-free head: the pools of `POOLS[head]` concatenated (`pooled`: 2 x 2 pools of
    both maps, 24 * width; `multiscale`: also the last map's global mean and 4 x 4 pools of the map
    one stage up, 60 * width)."""
    channels = (max(8, 4 * width), max(8, 2 * width))
    return sum(size * size * channels[m] for size, m in POOLS[head])


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and loss of one encoder.

    `resolution`/`channels` are what the backbone sees; the `Encoder` resizes and converts any
    input to them. `dim` is the representation size D (what `Encoder` returns). The projector
    (VICReg, Barlow, SimCLR, DCL) maps D -> `projector_dim` during training only; IRMAE uses
    `irmae_layers` bias-free linear maps D -> D and a decoder instead; DirectCLR has no projector
    and applies InfoNCE to the first `directclr_dims` entries of the representation.

    `head` is how the backbone's maps become the representation: `linear` flattens the last 4 x 4
    map into a linear layer to `dim`; `pooled` and `multiscale` (no weights) concatenate average
    pools of the last two stages' maps, so `dim` must be `pooled_dim(width, head)` (768 and 1920
    for width 32).
    """

    method: str = "vicreg"
    resolution: int = 32
    channels: int = 1
    width: int = 32
    dim: int = 128
    projector_dim: int = 512
    irmae_layers: int = 4
    directclr_dims: int = 32
    temperature: float = 0.2
    dclw_sigma: float = 0.5
    vicreg_lambda: float = 25.0
    vicreg_mu: float = 25.0
    vicreg_nu: float = 1.0
    barlow_lambda: float = 0.0051
    head: str = "linear"

    def __post_init__(self) -> None:
        if self.method not in ENCODER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(ENCODER_METHODS)}")
        if self.resolution not in (16, 32, 64, 128):
            raise ValueError(f"resolution must be 16, 32, 64 or 128, got {self.resolution}")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; known: {', '.join(HEADS)}")
        if self.head in POOLS and self.dim != pooled_dim(self.width, self.head):
            raise ValueError(f"the {self.head} head of width {self.width} gives dim "
                             f"{pooled_dim(self.width, self.head)}, got dim={self.dim}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.irmae_layers < 0:
            raise ValueError(f"irmae_layers must be >= 0, got {self.irmae_layers}")
        if not 0 < self.directclr_dims <= self.dim:
            raise ValueError(f"directclr_dims must be in 1..dim={self.dim}, got {self.directclr_dims}")
        if min(self.width, self.dim, self.projector_dim) < 1 or self.temperature <= 0:
            raise ValueError("width, dim, projector_dim and temperature must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncoderConfig":
        """Strict: an unknown key is an error (a file from another version), never ignored."""
        check_config_keys(cls, d, "encoder config")
        return cls(**d)
