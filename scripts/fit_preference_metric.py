"""Compute and save what the preference drivers load for shipped generators: the latent metric of
"bayes" and the pixel prior of "bayes-image".

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/fit_preference_metric.py fashion32 faces64
    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/fit_preference_metric.py --only pixels textures64

writes assets/preference/<model id>-metric.safetensors (see optimizers/metric.py) and
assets/preference/<model id>-pixels.safetensors (see optimizers/preference_image.py). Rerun it after
retraining a generator: a pixel prior whose probe images no longer match is ignored (and computed at
the first composite), a stale metric is not detected.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import assetpaths  # noqa: E402
from optimizers.metric import pullback_metric, save_metric  # noqa: E402
from optimizers.preference_image import PRIOR_SAMPLES, fit_pixel_prior, save_pixel_prior  # noqa: E402
from studio.catalog import Catalog  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--only", choices=("metric", "pixels"), help="write only this one (default: both)")
    p.add_argument("--samples", type=int, default=128, help="latents the metric averages over")
    p.add_argument("--step", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    catalog = Catalog()
    for model_id in args.models:
        generator = catalog.generator(model_id)
        if args.only in (None, "metric"):
            start = time.perf_counter()
            metric = pullback_metric(generator, n=args.samples, seed=args.seed, step=args.step)
            values = torch.linalg.eigvalsh(metric.double()).flip(0)
            info = {"model": model_id, "samples": args.samples, "step": args.step, "seed": args.seed,
                    "how": "E_z[J^T J] / pixels over z ~ N(0, I), J by forward differences",
                    "top_eigenvalue_share": [round(float(v), 4) for v in (values / values.sum())[:8]],
                    "seconds": round(time.perf_counter() - start, 1)}
            print(save_metric(metric, assetpaths.SHIPPED.path("metric", model_id), info=info), info)
        if args.only in (None, "pixels"):
            start = time.perf_counter()
            prior, probes = fit_pixel_prior(generator, seed=0)  # seed 0, as computed at run time
            info = {"model": model_id, "samples": PRIOR_SAMPLES, "seed": 0, "components": prior.components,
                    "how": "top principal directions of generated images (optimizers.preference_image.fit_pixel_prior)",
                    "seconds": round(time.perf_counter() - start, 1)}
            print(save_pixel_prior(prior, generator, probes, assetpaths.SHIPPED.path("pixels", model_id),
                                   info=info), info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
