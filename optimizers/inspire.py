"""`inspire()`: find the generation closest to a target image, with any search strategy by name."""
from __future__ import annotations

from typing import Any, Callable

import torch

from .objective import DistanceFn, GeneratorLike, Objective, Weights
from .registry import make_search
from .search import ProgressEvent, SearchResult

DEFAULT_BUDGETS = {"gradient": 300}  # gradient steps; nevergrad budgets count evaluations
DEFAULT_NEVERGRAD_BUDGET = 2000


def default_budget(method: str) -> int:
    return DEFAULT_BUDGETS.get(method, DEFAULT_NEVERGRAD_BUDGET)


def inspire(generator: GeneratorLike, target: torch.Tensor, *, method: str = "gradient", budget: int | None = None,
            seed: int = 0, batch: int | None = None, distance: DistanceFn | None = None,
            weights: Weights = Weights(), realism_unit: float = 1.0, start: torch.Tensor | None = None,
            callback: Callable[[ProgressEvent], None] | None = None,
            should_stop: Callable[[ProgressEvent], bool] | None = None, **search_kw: Any) -> SearchResult:
    """Search the generator's latent space for the image closest to `target` [1, C, H, W].

    `method` is "gradient" or a nevergrad optimizer name; `start` (e.g. a learned inversion's
    guess, [d] or [m, d]) seeds the search; `realism_unit=realism_spread(generator)` weighs D as the
    studio does (1: the reference's raw score); other keywords go to the strategy.
    """
    objective = Objective(generator, target, distance=distance, weights=weights, realism_unit=realism_unit)
    search = make_search(method, objective, budget=budget or default_budget(method), seed=seed, batch=batch,
                         start=start, **search_kw)
    return search.run(callback=callback, should_stop=should_stop)


__all__ = ["inspire", "default_budget", "DEFAULT_BUDGETS"]
