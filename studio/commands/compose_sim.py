"""`compose-sim`: composing by preference with a simulated user, as a table (see optimizers.simulate)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from optimizers.simulate import USERS, ComposeSetting, SimulatedUser, compose_table, markdown
from studio.catalog import Catalog
from studio.commands.inspire import make_distance
from studio.imageio import load_image, resize_batch
from studio.shipped import optimizer_assets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compose-sim", help="benchmark composing by preference with a simulated user")
    p.add_argument("--model", help="catalog id or model file (default: catalog default)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="data set whose val split gives hidden targets: faces, fashion, textures, or "
                                    "a folder (default: from the model id)")
    src.add_argument("--images", nargs="+", help="target image files instead of a data set")
    p.add_argument("--targets", type=int, default=4, help="number of held-out targets (default 4)")
    p.add_argument("--k", default="4,9,16", help="candidates per round, comma separated")
    p.add_argument("--rounds", default="10,20,40", help="checkpoints, comma separated")
    p.add_argument("--methods", default="pick,rank", help="pick and/or rank")
    p.add_argument("--users", default="perfect,flip,bt", help=f"any of {', '.join(USERS)}")
    p.add_argument("--error", type=float, default=0.2, help="flip user: probability of a wrong pick")
    p.add_argument("--temperature", type=float, default=0.05,
                   help="bt user: choice temperature, a fraction of the typical judge distance between the target "
                        "and a random generation")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--optimizer", help="preference driver: elitist, bayes, bayes:<model id> (bayes:MODEL = the "
                                       "model's shipped metric), bayes-image:<model id> (a choice model on the "
                                       "candidates' images) or a nevergrad name (default: the search's default)")
    p.add_argument("--judge", help="judge distance terms, e.g. pixel=1,faces64-vicreg=1 (default raw pixel MSE)")
    p.add_argument("--inversion-budget", type=int, default=200, help="gradient steps of the full inversion")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the full table as JSON")
    p.set_defaults(func=run)


def int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"bad {what} {text!r}: use comma-separated integers") from None
    if not values or min(values) < 1:
        raise ValueError(f"bad {what} {text!r}: positive integers needed")
    return values


def load_targets(args: argparse.Namespace, model, model_id: str) -> torch.Tensor:
    if args.targets < 1:
        raise ValueError("--targets must be >= 1")
    if args.images:
        return torch.cat([load_image(p, channels=model.channels, size=model.resolution) for p in args.images])
    from studio.data import data_for_model, load_dataset, to_float
    name = args.data or data_for_model(model_id)
    if name is None:
        raise ValueError("give --data (faces, fashion, textures or a folder) or --images for the hidden targets")
    images = load_dataset(name, split="val", size=model.resolution, channels=model.channels).images
    if not isinstance(images, torch.Tensor) or len(images) == 0:
        raise ValueError(f"data set {name!r} has no fixed-size val images")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[: args.targets]
    return resize_batch(to_float(images[pick]), model.resolution)


def run(args: argparse.Namespace) -> int:
    catalog = Catalog()
    model_id = args.model or catalog.default_generator()
    model = catalog.generator(model_id)
    ks, checkpoints = int_list(args.k, "--k"), int_list(args.rounds, "--rounds")
    methods = [m for m in args.methods.split(",") if m]
    if not methods or set(methods) - {"pick", "rank"}:
        raise ValueError(f"bad --methods {args.methods!r}: use pick and/or rank")
    users = [SimulatedUser(u, error=args.error, temperature=args.temperature) for u in args.users.split(",") if u]
    options: tuple = (("strength", args.strength),)
    if args.optimizer:
        options += (("optimizer", args.optimizer), ("assets", optimizer_assets(args.optimizer, model)))
    settings = [ComposeSetting(f"{m}, {u.kind} user", m, u, options) for m in methods for u in users]
    targets = load_targets(args, model, model_id)
    judge = make_distance(args.judge, "cpu")
    table = compose_table(model, targets, judge or _pixel(), settings, ks=ks, checkpoints=checkpoints, seed=args.seed,
                          inversion_budget=args.inversion_budget, progress=lambda m: print(m, file=sys.stderr))
    text = markdown(table)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": model_id, "judge": args.judge or "pixel-mse", **table},
                                              indent=2) + "\n")
    return 0


def _pixel():
    from optimizers import pixel_distance
    return pixel_distance
