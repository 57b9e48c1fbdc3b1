"""Inspire as one library call: `prepare()` a target once, then `inspire()` it with any strategy.

    prepared = prepare(generator, target, start=encoder_or_latent, weights=None, distance=None)
    result = inspire(prepared, method="gradient", budget=None, restarts=None, seed=0,
                     callback=None, should_stop=None)            # -> SearchResult
    run = search(prepared, method="CMA")                         # the Search, to stream: run.iterate()

`prepare` builds everything a search of this target needs: the objective (distance + prior +
realism), the start latents (a learned inversion encoder's guess, given as the encoder object or
as latents: this layer never looks up shipped files, the studio resolves them) and the realism
unit, D's spread over the generator's own samples, measured once per generator and cached
(`realism_unit`). `inspire`/`search` pick the method's defaults (`defaults(method)`): the fast
path measured in docs/benchmarks/realtime_inspire.md. The CLI (`studio inspire`), the app's
Inspire tab and the benchmarks all go through here.
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .inversion import InversionEncoder, fits, guess
from .objective import DistanceFn, GeneratorLike, Objective, Weights, default_realism, realism_spread
from .registry import make_search
from .search import ProgressEvent, Search, SearchResult, as_starts


@dataclass(frozen=True)
class MethodDefaults:
    """What a method runs with when the caller does not say: `budget` (gradient steps, or evaluated
    latents for Nevergrad), `batch` (restarts, or latents asked per step) and strategy keywords."""

    budget: int
    batch: int
    options: dict[str, Any] = field(default_factory=dict)


# The fast path (docs/benchmarks/realtime_inspire.md, benchmarks/inspire_realtime.py): one restart
# from the inversion's guess at a higher lr reaches the old 200 x 8 search's final loss in a
# fraction of its time; a flattening curve ends it early. D runs every step: linearizing it between
# every 4th step (`realism_every=4`, objective.LinearizedRealism) saved 1.5 s of 5.5 s but ended
# 0.4-6% higher (D's image gradient outweighs the pixel distance's on faces64), so it is not the default.
# Adam's betas (0.8, 0.9) and a cosine down to a tenth of the lr (2026-12-02, tuned on held-out faces the
# benchmark does not use): 100 steps end 2-3% below the old 200 x 8 search's loss, where 150 steps
# at Adam's usual (0.9, 0.99) ended 0.5% above it: shorter memories follow a curving basin faster.
GRADIENT = MethodDefaults(budget=100, batch=1, options={"lr": 0.3, "betas": (0.8, 0.9), "final_lr": 0.1})
# `studio inspire` (raw pixel MSE, where the old CLI ran 300 x 16) takes 150 steps: 3% above the
# old loss against 8% at 100 steps; a script waits less than a person does at the screen.
CLI_GRADIENT_BUDGET = 150
# Gradient-free methods search around the start with a step of 0.3 (per latent coordinate; the
# prior's scale is 1) and ask 8 latents at a time.
NEVERGRAD = MethodDefaults(budget=400, batch=8, options={"sigma": 0.3})
PER_METHOD: dict[str, MethodDefaults] = {"gradient": GRADIENT}


def defaults(method: str) -> MethodDefaults:
    """The defaults `search` uses for `method` (gradient, or any Nevergrad name)."""
    return PER_METHOD.get(method, NEVERGRAD)


def default_budget(method: str) -> int:
    return defaults(method).budget


# -- per-generator constants -----------------------------------------------------------------------

_UNITS: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()
_UNITS_LOCK = threading.Lock()


def realism_unit(generator: Any) -> float:
    """D's spread over the generator's own samples (`realism_spread`, 1 without a discriminator),
    measured on the first call for this generator object and remembered while it lives. A model
    whose sidecar states it (`"inspire": {"realism_spread": s}`, the shipped ones, checked against a
    fresh measurement by tests/test_inspire.py) skips the measurement: a CLI run is a new process."""
    with _UNITS_LOCK:
        known = _UNITS.get(generator)
    if known is not None:
        return known
    unit = stored_spread(getattr(generator, "info", None)) or realism_spread(generator) or 1.0
    with _UNITS_LOCK:
        _UNITS[generator] = unit
    return unit


def stored_spread(info: Any) -> float | None:
    """A sidecar's measured D spread (`info["inspire"]["realism_spread"]`, a number > 0), or None."""
    value = (info.get("inspire") or {}).get("realism_spread") if isinstance(info, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def forget_realism_unit(generator: Any) -> None:
    """Measure D's spread again next time (after the generator's weights changed)."""
    with _UNITS_LOCK:
        _UNITS.pop(generator, None)


# -- prepare -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """A target made ready to search: the objective, the start latents [m, d] (or None) and where
    they came from ("inversion", "latent", "none"), and the realism unit in use."""

    objective: Objective
    start: torch.Tensor | None
    start_kind: str

    @property
    def realism_unit(self) -> float:
        return self.objective.realism_unit

    @property
    def generator(self) -> GeneratorLike:
        return self.objective.generator

    @property
    def weights(self) -> Weights:
        return self.objective.weights

    def start_loss(self) -> float:
        """The loss of the (first) start latent, or inf without one."""
        if self.start is None:
            return math.inf
        with torch.no_grad():
            return float(self.objective(self.start[:1])[0][0])


def prepare(generator: GeneratorLike, target: torch.Tensor, *, start: InversionEncoder | torch.Tensor | None = None,
            weights: Weights | None = None, distance: DistanceFn | None = None,
            unit: float | None = None) -> Prepared:
    """Everything a search of `target` [1, C, H, W] needs, built once.

    `start`: an inversion encoder (its guess for the target starts the search; it must fit the
    generator) or latents [d] / [m, d], or None (the strategy's own random start).
    `weights`: None is distance 1, prior 1 and the generator's own realism weight
    (`default_realism`). `unit`: the unit of D's score, None for the cached spread
    (`realism_unit`; measured only when the realism weight is > 0). `distance`: e.g. an
    encoders.Distance; None is the pixel MSE.
    """
    weights = Weights(realism=default_realism(generator)) if weights is None else weights
    if unit is None:
        unit = realism_unit(generator) if weights.realism > 0 else 1.0
    objective = Objective(generator, target, distance=distance, weights=weights, realism_unit=unit)
    if isinstance(start, InversionEncoder):
        if not fits(start, generator):
            raise ValueError("the inversion encoder is for another generator shape (latent size, resolution "
                             "or channels differ)")
        starts, kind = guess(start, objective.target)[None], "inversion"
    else:
        starts = as_starts(start, objective.latent_dim)
        kind = "none" if starts is None else "latent"
    return Prepared(objective, starts, kind)


# -- search --------------------------------------------------------------------------------------

def search(prepared: Prepared, *, method: str = "gradient", budget: int | None = None, restarts: int | None = None,
           seed: int = 0, **options: Any) -> Search:
    """The search for a prepared target, not yet run: stream it with `.iterate()`, stop it with
    `.cancel()`. Unset budget/restarts and strategy keywords come from `defaults(method)`;
    `restarts` is the gradient's restarts or Nevergrad's latents per step."""
    d = defaults(method)
    kw = {**d.options, **options}
    return make_search(method, prepared.objective, budget=d.budget if budget is None else budget, seed=seed,
                       batch=d.batch if restarts is None else restarts, start=prepared.start, **kw)


def inspire(prepared: Prepared, *, method: str = "gradient", budget: int | None = None, restarts: int | None = None,
            seed: int = 0, callback: Callable[[ProgressEvent], None] | None = None,
            should_stop: Callable[[ProgressEvent], bool] | None = None, **options: Any) -> SearchResult:
    """Search the prepared target's latent space to the end; the best latent [1, d] and its loss."""
    return search(prepared, method=method, budget=budget, restarts=restarts, seed=seed, **options).run(
        callback=callback, should_stop=should_stop)


__all__ = ["prepare", "Prepared", "search", "inspire", "defaults", "default_budget", "MethodDefaults",
           "realism_unit", "forget_realism_unit", "GRADIENT", "CLI_GRADIENT_BUDGET", "NEVERGRAD", "PER_METHOD"]
