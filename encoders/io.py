"""Our encoder weight format: PATH.safetensors (weights, config in metadata) + PATH.json sidecar
(config, training data, metrics), and `load_encoder` by path or by shipped id."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .backbone import Encoder
from .config import EncoderConfig

FORMAT = "studio-encoder/1"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = ASSETS / "encoders"


class UnknownEncoderError(ValueError):
    """An encoder id that is neither a shipped encoder nor a weights file."""


def save_encoder(encoder: Encoder, path: str | Path, *, info: dict[str, Any] | None = None,
                 half: bool = False) -> Path:
    """Write the encoder (float16 floats when `half`, to keep shipped files small)."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in encoder.state_dict().items():
        v = v.detach().cpu()
        tensors[k] = (v.half() if half and v.is_floating_point() else v).contiguous()
    save_file(tensors, str(path), metadata={"format": FORMAT, "config": encoder.config.to_json()})
    sidecar = {"format": FORMAT, "config": encoder.config.to_dict(), **{**encoder.info, **(info or {})}}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def shipped_ids() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.safetensors"))


def resolve(path_or_id: str | Path) -> Path:
    """A weights path, or a shipped id like 'faces64-vicreg' -> assets/encoders/<id>.safetensors."""
    p = Path(path_or_id)
    if p.is_file():
        return p
    shipped = SHIPPED / f"{path_or_id}.safetensors"
    if shipped.is_file():
        return shipped
    if p.suffix == ".safetensors":
        raise UnknownEncoderError(f"{p}: no such encoder file")
    raise UnknownEncoderError(f"unknown encoder {str(path_or_id)!r}; shipped: {', '.join(shipped_ids()) or 'none'}")


def load_encoder(path_or_id: str | Path, *, device: str | torch.device | None = None) -> Encoder:
    """An `Encoder` in eval mode with frozen weights, from our safetensors file or a shipped id."""
    path = resolve(path_or_id)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"{path}: not a studio encoder file (format {meta.get('format')!r})")
    encoder = Encoder(EncoderConfig.from_dict(json.loads(meta["config"])))
    expected = encoder.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise ValueError(f"{path}: tensor {k} has shape {list(v.shape)}, config expects {list(expected[k].shape)}")
    encoder.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        encoder.info = {k: v for k, v in json.loads(sidecar.read_text()).items() if k not in ("format", "config")}
    encoder.info.setdefault("id", path.stem)
    return encoder.to(device or "cpu").eval().requires_grad_(False)
