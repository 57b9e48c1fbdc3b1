"""Helpers for tests and benchmarks that need no UI: tiny models and catalogs made on the spot, a free port.

The studio run in-process (Gradio) is `studio.app.testing.running`; this module imports no Gradio.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from generators import PGAN, PGANConfig

# the two tiny generators of a test catalog: 16 px grey (the default) and 8 px colour
TINY_CONFIGS = {"tiny": PGANConfig(latent_dim=8, depths=(16, 16, 8), channels=1),
                "tinyrgb": PGANConfig(latent_dim=8, depths=(16, 8), channels=3)}
TINYRGB_REALISM = 0.01  # the Inspire realism weight 'tinyrgb' sets in `write_tiny_catalog`


def randomize(model: PGAN, seed: int = 0) -> PGAN:
    """Perturb every weight and bias so that each tensor matters (fresh biases are all zero and
    fresh PGANs look flat)."""
    g = torch.Generator().manual_seed(seed)
    for net in (model.generator, model.discriminator):
        if net is None:
            continue
        for p in net.parameters():
            p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def tiny_pgan(model_id: str) -> PGAN:
    """'tiny' or 'tinyrgb' (`TINY_CONFIGS`), randomised: seed 0 and 1, the same weights every time."""
    seed = list(TINY_CONFIGS).index(model_id)
    return randomize(PGAN.random(TINY_CONFIGS[model_id], seed=seed), seed=seed)


def write_catalog(root: str | Path, models: dict[str, PGAN], *, infos: dict[str, dict] | None = None,
                  extra_rows: Sequence[dict[str, Any]] = ()) -> Path:
    """Save `models` under root (with `infos[model_id]` as their info) and write root/catalog.json
    listing them (the first one the default), then `extra_rows`; returns the catalog path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (model_id, model) in enumerate(models.items()):
        model.save(root / f"{model_id}.safetensors", info=(infos or {}).get(model_id))
        rows.append({"id": model_id, "kind": "generator", "title": f"Tiny {model_id}",
                     "files": [f"{model_id}.safetensors"], "resolution": model.resolution,
                     "channels": model.channels, "latent_dim": model.latent_dim,
                     "data": "random weights (tests)", "license": "CC0", "metrics": {"fid": 123.4},
                     "default": i == 0})
    path = root / "catalog.json"
    path.write_text(json.dumps({"models": rows + list(extra_rows)}, indent=2))
    return path


def write_tiny_catalog(root: str | Path, *, encoder: bool = True, examples: bool = True) -> Path:
    """root/catalog.json with the two tiny generators (`tiny_pgan`), optionally a tiny encoder
    'tiny-enc' and two example targets; returns the catalog path.
    'tinyrgb' sets its Inspire realism weight (TINYRGB_REALISM), 'tiny' keeps the studio's."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    models, rows = {model_id: tiny_pgan(model_id) for model_id in TINY_CONFIGS}, []
    if encoder:
        from encoders import Encoder, EncoderConfig, save_encoder
        torch.manual_seed(0)
        save_encoder(Encoder(EncoderConfig(method="vicreg", resolution=16, width=4, dim=8, projector_dim=8,
                                           directclr_dims=4)), root / "tiny-enc.safetensors")
        rows.append({"id": "tiny-enc", "kind": "encoder", "title": "Tiny encoder", "files": ["tiny-enc.safetensors"],
                     "generator": "tiny"})
    if examples:
        (root / "examples").mkdir(exist_ok=True)
        for j in range(2):
            img = Image.linear_gradient("L").rotate(90 * j).resize((48, 40))
            img.save(root / "examples" / f"gradient{j}.png")
    return write_catalog(root, models, infos={"tinyrgb": {"inspire": {"realism": TINYRGB_REALISM}}}, extra_rows=rows)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server or a DDP rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["TINY_CONFIGS", "TINYRGB_REALISM", "randomize", "tiny_pgan", "write_catalog", "write_tiny_catalog",
           "free_port"]
