"""Compute and save the latent metric the "bayes" preference driver uses, for shipped generators.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/fit_preference_metric.py fashion32 faces64

writes assets/preference/<model id>-metric.safetensors (see optimizers/metric.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizers.metric import SHIPPED, pullback_metric, save_metric  # noqa: E402
from studio.catalog import Catalog  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--step", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    catalog = Catalog()
    for model_id in args.models:
        start = time.perf_counter()
        metric = pullback_metric(catalog.generator(model_id), n=args.samples, seed=args.seed, step=args.step)
        values = torch.linalg.eigvalsh(metric.double()).flip(0)
        info = {"model": model_id, "samples": args.samples, "step": args.step, "seed": args.seed,
                "how": "E_z[J^T J] / pixels over z ~ N(0, I), J by forward differences",
                "top_eigenvalue_share": [round(float(v), 4) for v in (values / values.sum())[:8]],
                "seconds": round(time.perf_counter() - start, 1)}
        path = save_metric(metric, SHIPPED / f"{model_id}-metric", info=info)
        print(path, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
