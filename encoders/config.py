"""The frozen config of one encoder, saved inside its weights and loaded strictly."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

METHODS = ("irmae", "vicreg", "barlow", "simclr", "dcl", "dclw", "directclr")
HEADS = ("linear", "pooled")


def pooled_dim(width: int) -> int:
    """D of the `pooled` head: 2 x 2 average pools of the last map (4 * width channels) and of the
    map one stage up (2 * width channels), concatenated."""
    return 4 * (max(8, 4 * width) + max(8, 2 * width))


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and loss of one encoder.

    `resolution`/`channels` are what the backbone sees; the `Encoder` resizes and converts any
    input to them. `dim` is the representation size D (what `Encoder` returns). The projector
    (VICReg, Barlow, SimCLR, DCL) maps D -> `projector_dim` during training only; IRMAE uses
    `irmae_layers` bias-free linear maps D -> D and a decoder instead; DirectCLR has no projector
    and applies InfoNCE to the first `directclr_dims` entries of the representation.

    `head` is how the backbone's maps become the representation: `linear` flattens the last 4 x 4
    map into a linear layer to `dim`; `pooled` (no weights) concatenates 2 x 2 average pools of
    the last two stages' maps, so `dim` must be `pooled_dim(width)` (768 for width 32).
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
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        if self.resolution not in (16, 32, 64, 128):
            raise ValueError(f"resolution must be 16, 32, 64 or 128, got {self.resolution}")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; known: {', '.join(HEADS)}")
        if self.head == "pooled" and self.dim != pooled_dim(self.width):
            raise ValueError(f"the pooled head of width {self.width} gives dim {pooled_dim(self.width)}, "
                             f"got dim={self.dim}")
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
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"encoder config has unknown keys {unknown}")
        return cls(**d)
