"""`embed`: features of every image in a folder with one encoder, as FEATS.npy + FEATS.txt."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from encoders import Encoder, load_encoder
from studio.devices import add_device_argument
from studio.imageio import ImageError, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass
class Embedding:
    features: np.ndarray  # [N, D] float32, one row per readable image
    paths: list[str]  # relative paths, sorted, one per row
    skipped: list[str] = field(default_factory=list)  # one-line reasons for unreadable images


def list_images(folder: str | Path) -> list[Path]:
    """Image files under `folder` (recursive), sorted by relative path; errors for no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise ValueError(f"{folder}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def embed_folder(encoder: Encoder, folder: str | Path, *, batch_size: int = 64, progress: bool = True) -> Embedding:
    """Every readable image under `folder` -> features in sorted relative-path order."""
    folder = Path(folder)
    files = list_images(folder)
    c = encoder.config
    device = next(encoder.parameters()).device
    rows, paths, skipped, batch = [], [], [], []

    def flush() -> None:
        if batch:
            with torch.no_grad():
                rows.append(encoder(torch.cat(batch).to(device)).float().cpu().numpy())
            batch.clear()

    for p in tqdm(files, desc="embedding", unit="img", disable=not progress or len(files) < 2 * batch_size):
        try:
            batch.append(load_image(p, channels=c.channels, size=c.resolution))
        except ImageError as e:
            skipped.append(str(e))
            continue
        paths.append(p.relative_to(folder).as_posix())
        if len(batch) == batch_size:
            flush()
    flush()
    if not paths:
        raise ValueError(f"{folder}: none of the {len(files)} image file(s) could be read, e.g. {skipped[0]}")
    return Embedding(np.concatenate(rows).astype(np.float32), paths, skipped)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="encoder features of a folder of images (.npy + .txt of paths)")
    p.add_argument("--encoder", required=True, help="shipped encoder id (e.g. faces64-vicreg) or .safetensors")
    p.add_argument("--images", required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="FEATS.npy; the row order goes to FEATS.txt")
    p.add_argument("--batch-size", type=int, default=64)
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out.name!r}")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    encoder = load_encoder(args.encoder, device=args.device)
    result = embed_folder(encoder, args.images, batch_size=args.batch_size)
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable image(s), e.g. {result.skipped[0]}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, result.features)
    out.with_suffix(".txt").write_text("".join(f"{p}\n" for p in result.paths))
    print(f"wrote {out} ({len(result.paths)} x {result.features.shape[1]}) and {out.with_suffix('.txt')}"
          + (f"; skipped {len(result.skipped)} unreadable" if result.skipped else ""))
    return 0
