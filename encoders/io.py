"""Our encoder weight format: PATH.safetensors (weights, config in metadata) + PATH.json sidecar
(config, training data, metrics), and `load_encoder` by path or by shipped id."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import assetpaths
from weightfile import load_state, load_weights, save_weights

from .backbone import Encoder
from .config import EncoderConfig

FORMAT = "studio-encoder/1"
SHIPPED = assetpaths.SHIPPED.folder("encoder")


class UnknownEncoderError(ValueError):
    """An encoder id that is neither a shipped encoder nor a weights file."""


def save_encoder(encoder: Encoder, path: str | Path, *, info: dict[str, Any] | None = None,
                 half: bool = False) -> Path:
    """Write the encoder (float16 floats when `half`, to keep shipped files small)."""
    tensors = {k: v.half() if half and v.is_floating_point() else v for k, v in encoder.state_dict().items()}
    return save_weights(path, tensors, format=FORMAT, config=encoder.config.to_dict(),
                        info={**encoder.info, **(info or {})})


def shipped_ids() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.safetensors"))


def resolve(path_or_id: str | Path) -> Path:
    """A weights path, or a shipped id like 'faces64-vicreg' -> assets/encoders/<id>.safetensors."""
    p = Path(path_or_id)
    if p.is_file():
        return p
    shipped = assetpaths.SHIPPED.find("encoder", str(path_or_id)) if assetpaths.MODEL_ID.fullmatch(str(path_or_id)) \
        else None
    if shipped is not None:
        return shipped
    if p.suffix == ".safetensors":
        raise UnknownEncoderError(f"{p}: no such encoder file")
    raise UnknownEncoderError(f"unknown encoder {str(path_or_id)!r}; shipped: {', '.join(shipped_ids()) or 'none'}")


def load_encoder(path_or_id: str | Path, *, device: str | torch.device | None = None) -> Encoder:
    """An `Encoder` in eval mode with frozen weights, from our safetensors file or a shipped id."""
    wf = load_weights(resolve(path_or_id), format=FORMAT, kind="encoder")
    encoder = Encoder(EncoderConfig.from_dict(wf.config))
    load_state(encoder, wf.tensors, path=wf.path)
    encoder.info = dict(wf.info)
    encoder.info.setdefault("id", wf.path.stem)
    return encoder.to(device or "cpu").eval().requires_grad_(False)
