"""`train encoder`: IRMAE or an SSL encoder on faces | fashion | textures | FOLDER (resumable).

Added to the `train` command group by `studio.commands.train`, which calls `register_train`;
`register` is a no-op so the CLI's discovery loop does not add a second `train` command.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from encoders import ENCODER_METHODS, EncoderConfig, save_encoder
from encoders.config import HEADS, pooled_dim
from encoders.train import CHECKPOINT, EncoderTrainConfig, train_encoder
from weightfile import read_info
from studio.devices import add_device_argument

# The shipped recipe per data set: backbone resolution/channels and optimisation defaults.
RECIPES = {
    "faces": dict(resolution=32, channels=1, steps=600),
    "fashion": dict(resolution=32, channels=1, steps=600),
    "textures": dict(resolution=32, channels=3, steps=600),
}
FOLDER_RECIPE = dict(resolution=32, channels=1, steps=600)
CALIBRATION_IMAGES = 2000


def register(sub: argparse._SubParsersAction) -> None:
    """Nothing at top level: `train encoder` lives under `train` (see `register_train`)."""


def register_train(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("encoder", help="train an IRMAE or self-supervised encoder",
                             description="Train an encoder; rerunning the same command resumes from "
                                         "OUT/checkpoint.safetensors.")
    p.add_argument("--method", required=True, choices=ENCODER_METHODS)
    p.add_argument("--data", required=True, help="faces | fashion | textures | FOLDER of images")
    p.add_argument("--out", required=True, help="run folder (checkpoint, encoder.safetensors + .json)")
    p.add_argument("--steps", type=int, help="optimisation steps (default: the data set's recipe)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, help="backbone input size (16, 32, 64 or 128)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="backbone channels (FOLDER default 1)")
    p.add_argument("--width", type=int, default=32, help="backbone base width")
    p.add_argument("--head", default="linear", choices=HEADS,
                   help="representation: linear (flatten + linear to --dim), pooled (2x2 pools of the last two "
                        "stages, D = 24 * width) or multiscale (also the last map's mean and 4x4 pools of the "
                        "stage above, D = 60 * width)")
    p.add_argument("--dim", type=int, help="representation size D (linear head; default 128)")
    p.add_argument("--irmae-layers", type=int, default=4, help="IRMAE extra linear layers (0 = plain autoencoder)")
    p.add_argument("--temperature", type=float, default=0.2, help="SimCLR / DCL / DirectCLR temperature")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--export", help="also write a small float16 copy to EXPORT.safetensors + .json")
    add_device_argument(p)
    p.add_argument("--threads", type=int, help="torch CPU threads for this process")
    p.set_defaults(func=run)


def load_training_data(data: str, *, resolution: int, channels: int, seed: int):
    """(stream of training batches, real calibration images [M, C, R, R] in [-1, 1], skipped count)."""
    from studio.data import TensorStream, load_dataset, load_textures, make_stream
    if data == "textures":
        stream = make_stream("textures", split="train", seed=seed)
        cal = load_textures(split="train", size=64)
        return stream, _subset(cal.float(), seed), cal.skipped
    if data in RECIPES:
        images = load_dataset(data, split="train")
        return make_stream(data, split="train", seed=seed), _subset(images.float(), seed), images.skipped
    images = load_dataset(data, split="train", size=max(resolution, 32), channels=channels)
    if images.skipped:
        print(f"skipped {images.skipped} unreadable image(s) in {data}", file=sys.stderr)
    return TensorStream(images.images, seed=seed), _subset(images.float(), seed), images.skipped


def _subset(images: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return images[torch.randperm(len(images), generator=g)[:CALIBRATION_IMAGES]]


def run(args: argparse.Namespace) -> int:
    from studio.data import data_license
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = RECIPES.get(args.data, FOLDER_RECIPE)
    if args.data not in RECIPES and not Path(args.data).is_dir():
        raise ValueError(f"--data must be faces, fashion, textures or an image folder; {args.data!r} is none")
    dim = args.dim or (128 if args.head == "linear" else pooled_dim(args.width, args.head))
    config = EncoderConfig(method=args.method, resolution=args.resolution or recipe["resolution"],
                           channels=args.channels or recipe["channels"], width=args.width, dim=dim,
                           irmae_layers=args.irmae_layers, directclr_dims=min(32, dim),
                           temperature=args.temperature, head=args.head)
    train = EncoderTrainConfig(steps=args.steps or recipe["steps"], batch_size=args.batch_size, lr=args.lr,
                        seed=args.seed, augment=args.data if args.data in RECIPES else "generic")
    out = Path(args.out)
    if args.restart and (out / CHECKPOINT).exists():
        shutil.rmtree(out)
    stream, calibration, skipped = load_training_data(args.data, resolution=config.resolution,
                                                      channels=config.channels, seed=args.seed)
    name = args.data if args.data in RECIPES else Path(args.data).name
    info = {"data": name, "method": args.method, "license": data_license(args.data, "the folder's own"),
            "skipped_images": skipped}
    result = train_encoder(config, stream, train=train, out_dir=out, calibration_images=calibration,
                           device=args.device, info=info)
    print(f"wrote {result.path} ({result.steps} steps, {result.seconds / 60:.1f} min, "
          f"final loss {sum(result.losses[-20:]) / len(result.losses[-20:]):.4f})")
    if args.export:
        path = save_encoder(result.encoder, args.export, half=True,
                            info={**result.encoder.info, **read_info(result.path), "id": Path(args.export).stem})
        print(f"exported {path}")
    return 0
