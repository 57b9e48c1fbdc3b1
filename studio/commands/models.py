"""`models`: list the catalog."""
from __future__ import annotations

import argparse
import json

from studio.catalog import Catalog


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = Catalog()
    rows = [e.to_dict() for e in catalog.entries.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models in the catalog")
    for e in catalog.entries.values():
        shape = f"{e.resolution}x{e.resolution}x{e.channels}" if e.resolution else ""
        latent = f"z={e.latent_dim}" if e.latent_dim else ""
        mark = "*" if e.default else " "
        print(f"{mark} {e.id:<20} {e.kind:<10} {shape:<10} {latent:<6} {e.title}")
    return 0
