"""`python -m studio assets --model PATH_OR_ID [--make metric directions]`: the dependent files of a
model (inversion encoder, search directions, preference metric), listed, and the quick ones made.

For a model file of your own they live beside it, in PATH's folder/<stem>.studio/ (see
`assetpaths`), where `python app.py --model PATH` picks them up. The inversion encoder trains for
minutes: `python -m studio.inversion --model PATH` (it writes the directions too).
"""
from __future__ import annotations

import argparse
import json
import time

import assetpaths
from optimizers.metric import pullback_metric, save_metric
from optimizers.subspace import image_directions, save_subspace
from studio.catalog import Catalog
from studio.devices import add_device_argument
from studio.usermodels import KINDS, NAMES, dependent_files

MAKES = ("metric", "directions")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assets", help="list (and make) a model's dependent files: directions, metric, inversion")
    p.add_argument("--model", required=True, help="catalog id, our .safetensors file or a pytorch_GAN_zoo .pth")
    p.add_argument("--make", nargs="+", choices=MAKES, default=[], help="compute and write these")
    p.add_argument("--samples", type=int, default=128, help="latents the metric averages over")
    p.add_argument("--directions", type=int, default=16, help="how many search directions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = Catalog()
    model = catalog.generator(args.model, device=args.device) if args.make else None
    wrote = {}
    for kind in args.make:
        start = time.perf_counter()
        out = assetpaths.output(kind, args.model)
        if kind == "metric":
            metric = pullback_metric(model, n=args.samples, seed=args.seed)
            save_metric(metric, out, info={"model": args.model, "samples": args.samples, "seed": args.seed})
        else:
            sub = image_directions(model, min(args.directions, model.latent_dim), seed=args.seed)
            save_subspace(sub, out, info={"generator": args.model, "explained": float(sub.explained.sum())})
        wrote[kind] = {"path": str(out), "seconds": round(time.perf_counter() - start, 1)}
    found = {k: (str(v) if v else None) for k, v in dependent_files(args.model).items()}
    where, _ = assetpaths.home(args.model)
    if args.json:
        print(json.dumps({"model": args.model, "folder": str(where.root), "files": found, "wrote": wrote}))
        return 0
    for kind, info in wrote.items():
        print(f"wrote {info['path']} ({info['seconds']} s)")
    print(f"{args.model}: dependent files in {where.root}/")
    for kind in KINDS:
        print(f"  {NAMES[kind]:18s} {found[kind] or 'missing'}")
    if not found["inversion"]:
        print(f"  (train the inversion encoder with: python -m studio.inversion --model {args.model})")
    return 0
