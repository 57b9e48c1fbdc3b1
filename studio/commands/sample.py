"""`sample`: images from seeds or latents, as a PNG grid or raw arrays."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from studio.catalog import Catalog
from studio.devices import add_device_argument
from studio.imageio import grid, save_png
from studio.latents import load_latents, save_array
from studio.seeds import parse_seeds

OUT_SUFFIXES = (".png", ".npy", ".pt")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate images from seeds or latents")
    p.add_argument("--model", help="catalog id, our .safetensors file or a pytorch_GAN_zoo .pth (default: catalog default)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seeds", help="e.g. 0-15 or 1,5,9 (one latent per seed)")
    src.add_argument("--latents", help=".npy or .pt file of shape N x latent_dim")
    p.add_argument("--out", required=True, help=".png grid, or .npy/.pt raw N x C x H x W floats in [-1, 1]")
    p.add_argument("--truncation", type=float, help="redraw latent entries with |z| > T (seeds only)")
    add_device_argument(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=run)


def sample(model, z: torch.Tensor, *, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """[N, latent_dim] -> [N, C, H, W], with a progress bar when there are several batches."""
    chunks = z.split(batch_size)
    bar = tqdm(chunks, desc="generating", unit="batch", disable=not progress or len(chunks) < 2)
    return torch.cat([model.generate(c).cpu() for c in bar])


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in OUT_SUFFIXES:
        raise ValueError(f"--out must end in {', '.join(OUT_SUFFIXES)}, got {out.name!r}")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    catalog = Catalog()
    model_id = args.model or catalog.default_generator()
    model = catalog.generator(model_id, device=args.device)
    if args.seeds:
        seeds = parse_seeds(args.seeds)
        z = model.latents_for_seeds(seeds, truncation=args.truncation)
    else:
        if args.truncation is not None:
            raise ValueError("--truncation applies to --seeds, not to given latents")
        seeds = None
        z = load_latents(args.latents, model.latent_dim)
    images = sample(model, z, batch_size=args.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        meta = {"model": model_id, "seeds": seeds, "truncation": args.truncation}
        if len(z) == 1:
            meta["latent"] = z[0].tolist()
        save_png(grid(images), out, meta)
    else:
        save_array(images, out)
    print(f"wrote {len(images)} image(s) to {out}")
    return 0
