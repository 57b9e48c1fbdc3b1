"""Inspire's realism weight judged without the discriminator, side by side on the same targets.

Each held-out target is searched with the app's defaults (gradient, 200 steps, 8 restarts, started
from the shipped inversion encoder, realism in units of `realism_spread`) once per realism weight.
Reported per weight, averaged over targets:
- pixel MSE to the target and the perceptual distance to it in the model's own VICReg encoder
  (`feature_term`, the Inspire distance `MODEL-vicreg`): how much of the target survives;
- D's raw score of the result (what the realism term pushes up);
- the mean distance to the 5 nearest of 512 other held-out real images in that encoder's feature
  space, beside the same number for the targets themselves: a judge of "looks like the data" that
  D never saw. Lower than the real targets' own value means more typical than real images are.
`--targets-from DATA` takes the targets from another data set (a texture as inspiration for a face):
there the realism term is what keeps the result in the model's domain, which the 5-NN distance shows.
`--sheet` writes target | one result per weight, one row per target.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.realism_judge --model faces64 --targets 16 \\
        --json results/realism_judge_faces64.json --sheet /tmp/realism_judge_faces64.png
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

from benchmarks.realism_unit import search_arguments, write_outputs  # noqa: E402
from encoders.distance import feature_term, pixel_term  # noqa: E402
from encoders.io import load_encoder  # noqa: E402
from optimizers import GradientSearch, Objective, Weights, independent_realism, realism_spread  # noqa: E402
from optimizers.inversion import guess  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.data import data_for_model, load_dataset, to_float  # noqa: E402
from studio.shipped import shipped_encoder  # noqa: E402


def features(encoder, images: torch.Tensor) -> torch.Tensor:
    """[N, F] features, each dimension in units of its std on real data (as `feature_term`)."""
    with torch.no_grad():
        return encoder(images) / encoder.feature_std


def knn_distance(encoder, images: torch.Tensor, reference: torch.Tensor, k: int = 5) -> torch.Tensor:
    """[N] mean distance to the k nearest reference features, per feature dimension (std units)."""
    f = features(encoder, images)
    return (torch.cdist(f, reference) / f.shape[1] ** 0.5).topk(k, largest=False).values.mean(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    search_arguments(p, model="faces64", targets=16, sheet="PNG: target | one result per weight, one row per target")
    p.add_argument("--encoder", help="judge encoder (default: MODEL-vicreg)")
    p.add_argument("--targets-from", help="take the targets from another data set's val split (faces, fashion, "
                                          "textures; converted to the model's size and channels): inspiration "
                                          "from outside the model's domain. The 5-NN reference stays the model's")
    p.add_argument("--weights", default="0,0.005,0.02", help="realism weights in spread units, comma-separated")
    args = p.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",") if w]
    model = Catalog().generator(args.model)
    name = args.data or data_for_model(args.model)
    if name is None:
        raise SystemExit("give --data for a model id that does not start with faces, fashion or textures")
    encoder = load_encoder(args.encoder or f"{args.model}-vicreg").eval()
    inversion, spread, d_score = shipped_encoder(args.model), realism_spread(model), independent_realism(model)
    if spread is None or d_score is None:
        raise SystemExit(f"{args.model} has no discriminator: there is no realism term to judge")
    val = to_float(load_dataset(name, split="val", size=model.resolution, channels=model.channels).images)
    order = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))
    targets, others = val[order[:args.targets]], val[order[args.targets:args.targets + 512]]
    if args.targets_from:
        pool = to_float(load_dataset(args.targets_from, split="val", size=model.resolution,
                                     channels=model.channels).images)
        targets = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:args.targets]]
    reference = features(encoder, others)
    real_knn = float(knn_distance(encoder, targets, reference).mean())
    print(f"targets' own 5-NN distance to the model's held-out real images: {real_knn:.4f}", flush=True)
    rows, sheet = [], []
    for t in range(len(targets)):
        target = targets[t:t + 1]
        start = guess(inversion, target) if inversion is not None else None
        row, shown = {"target": t}, [target]
        for w in weights:
            objective = Objective(model, target, weights=Weights(realism=w), realism_unit=spread)
            result = GradientSearch(objective, budget=args.budget, batch=args.restarts, seed=t, start=start).run()
            with torch.no_grad():
                image = model.generate(result.latent)
                row[str(w)] = {"pixel_mse": float(pixel_term(image, target)),
                               "vicreg": float(feature_term(encoder, image, target)),
                               "knn": float(knn_distance(encoder, image, reference)),
                               "d_score": float(d_score(image)[0])}
            shown.append(image)
        rows.append(row)
        sheet.append(shown)
        print(json.dumps(row), flush=True)
    means = {str(w): {k: sum(r[str(w)][k] for r in rows) / len(rows) for k in ("pixel_mse", "vicreg", "knn", "d_score")}
             for w in weights}
    for w, m in means.items():
        print(f"realism {w}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    summary = {"model": args.model, "targets_from": args.targets_from or name, "realism_spread": spread,
               "budget": args.budget, "restarts": args.restarts, "targets_knn": real_knn, "means": means, "rows": rows}
    write_outputs(summary, args.json, sheet, args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
