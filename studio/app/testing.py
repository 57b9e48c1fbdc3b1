"""Helpers for tests and benchmarks: a tiny catalog made on the spot, and the studio run in-process."""
from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Iterator

import torch
from PIL import Image

from generators import PGAN, PGANConfig
from studio.app.context import Limits
from studio.app.factory import create_app
from studio.app.theme import serve
from studio.catalog import Catalog


def _randomize(model: PGAN, seed: int) -> PGAN:
    """Fresh PGANs have zero biases and look flat; perturb every tensor so images differ."""
    g = torch.Generator().manual_seed(seed)
    for net in (model.generator, model.discriminator):
        for p in net.parameters():
            p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


TINYRGB_REALISM = 0.01


def write_tiny_catalog(root: str | Path, *, encoder: bool = True, examples: bool = True) -> Path:
    """root/catalog.json with two tiny generators ('tiny' 16 px grey, 'tinyrgb' 8 px colour),
    optionally a tiny encoder 'tiny-enc' and two example targets; returns the catalog path.
    'tinyrgb' sets its Inspire realism weight (TINYRGB_REALISM), 'tiny' keeps the studio's."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (model_id, cfg) in enumerate([("tiny", PGANConfig(latent_dim=8, depths=(16, 16, 8), channels=1)),
                                         ("tinyrgb", PGANConfig(latent_dim=8, depths=(16, 8), channels=3))]):
        model = _randomize(PGAN.random(cfg, seed=i), seed=i)
        model.save(root / f"{model_id}.safetensors",  # tinyrgb sets its own Inspire realism weight
                   info={"inspire": {"realism": TINYRGB_REALISM}} if model_id == "tinyrgb" else None)
        rows.append({"id": model_id, "kind": "generator", "title": f"Tiny {model_id}", "files": [f"{model_id}.safetensors"],
                     "resolution": model.resolution, "channels": model.channels, "latent_dim": model.latent_dim,
                     "data": "random weights (tests)", "license": "CC0", "metrics": {"fid": 123.4},
                     "default": i == 0})
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
    path = root / "catalog.json"
    path.write_text(json.dumps({"models": rows}, indent=2))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(catalog: str | Path | Catalog, *, limits: Limits | None = None) -> Iterator[tuple[object, str]]:
    """The studio served on 127.0.0.1 in this process: yields (demo, url), closes it afterwards."""
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    demo = create_app(cat, limits=limits)
    for attempt in range(3):
        port = free_port()
        try:
            serve(demo, port=port, prevent_thread_lock=True, quiet=True)
            break
        except ValueError as e:
            # Gradio gives up on a server that does not answer its 3-second check (a starved CPU)
            demo.close()
            if "localhost is not accessible" not in str(e) or attempt == 2:
                raise
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
