"""Gradient-free search with any optimizer of nevergrad's registry, by name, asked in batches.

See shared/design/NEVERGRAD_NOTES.md: the parametrization is an `ng.p.Array` with a mutation
sigma (the latent sigma), its random state seeded so the same seed gives the same run; "CMA" is
built as `ParametrizedCMA(popsize=batch)` because the registry's CMA crashes at d >= 300 unless the
population equals the batch; optimizers that cannot run in parallel are asked one at a time.
"""
from __future__ import annotations

import difflib
import math
import warnings

import numpy as np
import torch

from .objective import Objective
from .search import Search, as_starts

PENALTY = 1e12  # what a NaN/inf loss is told as: the worst value, but finite


def nevergrad_names() -> list[str]:
    import nevergrad as ng
    return sorted(ng.optimizers.registry)


def suggest(name: str, names: list[str]) -> str:
    """' (did you mean X, Y?)' for a typo, or ''."""
    lower = {n.lower(): n for n in names}
    close = [lower[name.lower()]] if name.lower() in lower else []
    close += [lower[n] for n in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
              if lower[n] not in close]
    return f" (did you mean {', '.join(close[:3])}?)" if close else ""


def check_nevergrad_name(name: str) -> str:
    names = nevergrad_names()
    if name not in names:
        raise ValueError(f"unknown nevergrad optimizer {name!r}{suggest(name, names)}; "
                         f"see nevergrad.optimizers.registry for the {len(names)} names")
    return name


class NevergradSearch(Search):
    """`budget` counts evaluated latents; each step asks `batch` of them and tells them in order.

    With `start` latents [m, d] the parametrization is centred on the first (every optimizer
    samples around its centre: CMA's mean, DE's and PSO's first population, RandomSearch, the
    OnePlusOne parents) and all of them are suggested first; `sigma` is the step per latent
    coordinate (default 0.3 around a start, 1, the prior's scale, without one). Centred on the
    prior's origin instead, CMA, NGOpt, PSO and RandomSearch never found a latent better than an
    inversion's guess (docs/benchmarks/realtime_inspire.md).
    """

    unit = "evaluations"
    START_SIGMA = 0.3

    def __init__(self, objective: Objective, *, budget: int, seed: int = 0, batch: int = 16,
                 optimizer: str = "NGOpt", sigma: float | None = None, start: torch.Tensor | None = None):
        super().__init__(objective, budget=budget, seed=seed, batch=batch)
        import nevergrad as ng
        self.name = check_nevergrad_name(optimizer)
        starts = as_starts(start, self.latent_dim)
        if sigma is None:
            sigma = 1.0 if starts is None else self.START_SIGMA
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        self.sigma = float(sigma)
        centre = np.zeros(self.latent_dim) if starts is None else starts[0].double().numpy()
        param = ng.p.Array(init=centre).set_mutation(sigma=self.sigma)
        param.random_state = np.random.RandomState(self.seed)
        # CMA works in the parametrization's standardized space (units of sigma): scale 1 is a step of sigma
        factory = ng.families.ParametrizedCMA(popsize=self.batch, scale=1.0) if optimizer == "CMA" \
            else ng.optimizers.registry[optimizer]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.optimizer = factory(param, budget=budget, num_workers=self.batch)
            except ValueError as e:
                if "parallelization" not in str(e):
                    raise
                self.batch = 1  # a sequential optimizer: one candidate per step
                self.optimizer = factory(param, budget=budget, num_workers=1)
        for row in [] if starts is None else starts:
            self.optimizer.suggest(row.double().numpy())
        self._pending: list = []

    def ask(self) -> torch.Tensor:
        if self._pending:
            raise RuntimeError("tell() the previous candidates before asking again")
        n = min(self.batch, self.budget - self.steps) or self.batch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pending = [self.optimizer.ask() for _ in range(n)]
        return torch.tensor(np.stack([c.value for c in self._pending]), dtype=torch.float32)

    def _update(self, latents: torch.Tensor, losses: torch.Tensor) -> None:
        if len(latents) != len(self._pending):
            raise ValueError(f"tell() got {len(latents)} latents, {len(self._pending)} were asked")
        pending, self._pending = self._pending, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for candidate, loss in zip(pending, losses.tolist()):
                self.optimizer.tell(candidate, loss if math.isfinite(loss) else PENALTY)


__all__ = ["NevergradSearch", "nevergrad_names", "check_nevergrad_name", "suggest", "PENALTY"]
