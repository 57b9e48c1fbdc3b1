"""`export`: our PGAN in pytorch_GAN_zoo's checkpoint format."""
from __future__ import annotations

import argparse

from generators.ganzoo import export_zoo
from studio.catalog import Catalog

FORMATS = ("ganzoo",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to another format")
    p.add_argument("--model", required=True, help="catalog id or our .safetensors file")
    p.add_argument("--format", choices=FORMATS, default="ganzoo")
    p.add_argument("--out", required=True, help="FILE.pth")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = Catalog().generator(args.model)
    path = export_zoo(model, args.out)
    print(f"wrote {path} (pytorch_GAN_zoo PGAN format; load with ProgressiveGAN().load(path))")
    return 0
