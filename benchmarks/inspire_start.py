"""Where Inspire's search starts: from the shipped inversion encoder's guess vs from random latents.

On the same held-out images, with the app's defaults (gradient, 200 steps, 8 restarts, the studio's
loss: pixel distance, latent prior 1, the model's own realism weight `default_realism` in units of
D's spread), each target is searched twice with the same seed: once started from the inversion
encoder's guess (what the Inspire tab and `studio inspire --start auto` do) and once from random
latents (`--start none`).
Reported per target: the final loss of each under that same loss, the result's pixel MSE to the
target, and how many of the targets ended lower from the guess.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.inspire_start --model faces64 --targets 8 \\
        --json results/inspire_start_faces64.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from optimizers import GradientSearch, Objective, Weights, default_realism, spread_unit  # noqa: E402
from optimizers.inversion import guess  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.shipped import shipped_encoder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="faces64")
    p.add_argument("--data", help="val data set for the targets (default: from the model id)")
    p.add_argument("--targets", type=int, default=8)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--restarts", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    model = Catalog().generator(args.model)
    encoder = shipped_encoder(Path(args.model).stem)
    if encoder is None:
        raise SystemExit(f"{args.model} ships no inversion encoder: there is no guess to start from")
    targets = load_targets(argparse.Namespace(images=None, data=args.data, targets=args.targets, seed=args.seed),
                           model, args.model)
    weights = Weights(realism=default_realism(model))
    unit = spread_unit(model, needed=weights.realism > 0)
    rows = []
    for t in range(len(targets)):
        target = targets[t:t + 1]
        objective = Objective(model, target, weights=weights, realism_unit=unit)
        row = {"target": t}
        for name, start in (("guess", guess(encoder, target)), ("random", None)):
            began = time.perf_counter()
            result = GradientSearch(objective, budget=args.budget, batch=args.restarts, seed=args.seed + t,
                                    start=start).run()
            row[name] = {"loss": result.loss, "pixel_mse": result.terms["distance"],
                         "steps": result.steps, "seconds": round(time.perf_counter() - began, 1)}
        row["guess_lower"] = row["guess"]["loss"] < row["random"]["loss"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    lower = sum(r["guess_lower"] for r in rows)
    print(f"{args.model}: from the guess the loss ended lower on {lower} of {len(rows)} targets", flush=True)
    if args.json:
        summary = {"model": args.model, "realism_unit": unit, "weights": asdict(weights), "budget": args.budget,
                   "restarts": args.restarts, "guess_lower": lower, "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
