"""Inspire's realism term as the reference weighs it against the studio's weighting, side by side.

On the same held-out images, with the app's defaults (gradient, 200 steps, 8 restarts, started
from the shipped inversion encoder), each target is searched twice: once with the reference's
realism term (weight 0.03 on D's raw score) and once with the studio's (STUDIO_REALISM on D divided
by its spread over the model's own samples, `realism_spread`).
Reported per target: the result's pixel MSE to the target and its raw D score, and the ratio of
the MSEs; `--sheet` writes target | reference's | studio's, one row per target.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.realism_unit --model textures64 --targets 4 \\
        --json results/realism_unit_textures64.json --sheet /tmp/realism_textures64.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from optimizers import STUDIO_REALISM, GradientSearch, Objective, Weights, realism_spread  # noqa: E402
from optimizers.inversion import guess  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.shipped import shipped_encoder  # noqa: E402


def contact_sheet(rows: list[list[torch.Tensor]], path: Path, cell: int = 128) -> None:
    from PIL import Image

    from studio.imageio import to_pil
    sheet = Image.new("RGB", (cell * len(rows[0]), cell * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(to_pil(image).convert("RGB").resize((cell, cell), Image.NEAREST), (c * cell, r * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def write_outputs(summary: dict, json_path: str | None, sheet: list[list[torch.Tensor]],
                  sheet_path: str | None) -> None:
    """The --json summary and the --sheet contact sheet, each only when asked for."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(summary, indent=2) + "\n")
    if sheet_path:
        contact_sheet(sheet, Path(sheet_path))


def search_arguments(p: argparse.ArgumentParser, *, model: str, targets: int, sheet: str) -> None:
    """The options the realism benchmarks share: model, held-out targets, the app's search, outputs."""
    p.add_argument("--model", default=model)
    p.add_argument("--data", help="val data set for the targets (default: from the model id)")
    p.add_argument("--targets", type=int, default=targets)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--restarts", type=int, default=8)
    p.add_argument("--json")
    p.add_argument("--sheet", help=sheet)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    search_arguments(p, model="textures64", targets=4,
                     sheet="PNG: target | reference's realism | studio's, one row per target")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    model = Catalog().generator(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=args.data, targets=args.targets, seed=args.seed),
                           model, args.model)
    encoder = shipped_encoder(Path(args.model).stem)
    spread = realism_spread(model)
    if spread is None:
        raise SystemExit(f"{args.model} has no discriminator: there is no realism term to compare")
    rows, images = [], []
    for t in range(len(targets)):
        target = targets[t:t + 1]
        raw = Objective(model, target)  # reports both results in the reference's raw units
        row, shown = {"target": t}, [target]
        start = guess(encoder, target) if encoder is not None else None  # both searches start here
        for name, weights, unit in (("raw", Weights(), 1.0), ("spread", Weights(realism=STUDIO_REALISM), spread)):
            result = GradientSearch(Objective(model, target, weights=weights, realism_unit=unit), budget=args.budget,
                                    batch=args.restarts, seed=args.seed + t, start=start).run()
            terms = raw.breakdown(result.latent)
            row[name] = {"pixel_mse": terms["distance"], "d_score": -terms.get("realism", 0.0), "steps": result.steps}
            shown.append(model.generate(result.latent))
        row["mse_ratio_raw_over_spread"] = row["raw"]["pixel_mse"] / row["spread"]["pixel_mse"]
        rows.append(row)
        images.append(shown)
        print(json.dumps(row), flush=True)
    summary = {"model": args.model, "realism_spread": spread, "studio_realism": STUDIO_REALISM,
               "budget": args.budget, "restarts": args.restarts, "rows": rows}
    write_outputs(summary, args.json, images, args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
