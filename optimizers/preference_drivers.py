"""Comparison-only optimizers behind `PreferenceSearch`: they propose k coordinate vectors u per
round and learn only from the order the person gives (a pick is an order of length 1).

- `ElitistDriver` ("elitist", ours): a (1 + (k-1)) evolution strategy. Candidate 0 is the current
  choice, the others are Gaussian steps around it; keeping the current choice shrinks the step,
  choosing a new one grows it (the 1/5th success rule, with picks as the only signal). Showing
  the current choice makes a wrong pick cheap to undo in the next round.
- `NevergradDriver` (any nevergrad registry name): the optimizer over u, told rank-based losses
  offset by -k * round (constant losses make CMA restart silently; the newest choice must be the
  incumbent). "CMA" is `ParametrizedCMA(popsize=k)` (the registry's CMA crashes at d >= 300).

u ~ N(0, I) is the prior in every driver.
"""
from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from .preference_image import ImageBayesDriver
from .preference_model import BayesDriver


class Driver(Protocol):
    incumbent: np.ndarray  # u of the latest choice

    def ask(self) -> np.ndarray: ...  # [k, m], the same until told

    def tell(self, order: tuple[int, ...]) -> None: ...


class ElitistDriver:
    """(1 + (k-1))-ES on picks with success-based step-size control."""

    def __init__(self, u0: np.ndarray, k: int, seed: int, *, sigma: float = 0.5, grow: float = 1.25,
                 shrink: float = 0.7, min_sigma: float = 0.02, max_sigma: float = 2.0):
        self.rng = np.random.RandomState(seed)
        self.incumbent = np.asarray(u0, dtype=np.float64).copy()
        self.k, self.sigma = k, sigma
        self.grow, self.shrink, self.min_sigma, self.max_sigma = grow, shrink, min_sigma, max_sigma
        self.pending: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        if self.pending is None:
            steps = self.sigma * self.rng.randn(self.k - 1, len(self.incumbent))
            self.pending = np.vstack([self.incumbent[None], self.incumbent[None] + steps])
        return self.pending

    def tell(self, order: tuple[int, ...]) -> None:
        candidates = self.ask()
        if order[0] == 0:
            self.sigma = max(self.min_sigma, self.sigma * self.shrink)
        else:
            self.incumbent = candidates[order[0]].copy()
            self.sigma = min(self.max_sigma, self.sigma * self.grow)
        self.pending = None


class NevergradDriver:
    """A nevergrad optimizer over coordinates u in R^m, started at u0, asked k at a time, told
    offset ranks. u ~ N(0, I) is the prior, so DiscreteOnePlusOne's mutations (one coordinate
    redrawn from N(0, 1)) keep candidates on it; CMA samples around u0 with step 1."""

    def __init__(self, name: str, u0: np.ndarray, k: int, seed: int):
        import nevergrad as ng
        dim = len(u0)
        cma = name == "CMA"
        param = ng.p.Array(init=u0 if cma else np.zeros(dim)).set_mutation(sigma=1.0)
        param.random_state = np.random.RandomState(seed)
        factory = ng.families.ParametrizedCMA(popsize=k) if cma else ng.optimizers.registry[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.opt = factory(param, budget=100_000, num_workers=k)
            if not cma:  # make u0 the incumbent, and use up the optimizer's fixed first ask (u = 0)
                self.opt.tell(self.opt.parametrization.spawn_child(new_value=u0), 0.0)
                self.opt.tell(self.opt.ask(), 1.0)
        self.k, self.told_rounds = k, 0
        self.pending: list = []
        self.incumbent = np.asarray(u0, dtype=np.float64).copy()  # u of the latest choice

    def ask(self) -> np.ndarray:
        """[k, m] candidates of the current round (asked once, then cached until told)."""
        if not self.pending:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.pending = [self.opt.ask() for _ in range(self.k)]
        return np.stack([c.value for c in self.pending])

    def tell(self, order: tuple[int, ...]) -> None:
        self.ask()
        self.told_rounds += 1
        rank = {i: r for r, i in enumerate(order)}
        worst = len(order)  # unranked candidates tie behind the ranked ones
        offset = -self.k * self.told_rounds
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, cand in enumerate(self.pending):
                self.opt.tell(cand, float(rank.get(i, worst) + offset))
        self.incumbent = np.asarray(self.pending[order[0]].value, dtype=np.float64).copy()
        self.pending = []



DRIVERS = {"elitist": ElitistDriver, "bayes": BayesDriver, "bayes-image": ImageBayesDriver}


def make_driver(name: str, u0: np.ndarray | None, k: int, seed: int, **options) -> Driver:
    """Our driver by name, or a nevergrad optimizer name; `options` go to drivers that plan their
    first round ("bayes": dim, metric, strength; "bayes-image": dim, prior, render, invert, strength)."""
    if getattr(DRIVERS.get(name), "plans_first_round", False):
        return DRIVERS[name](u0, k, seed, **options)
    if name in DRIVERS:
        return DRIVERS[name](u0, k, seed)
    return NevergradDriver(name, u0, k, seed)


__all__ = ["Driver", "ElitistDriver", "NevergradDriver", "BayesDriver", "ImageBayesDriver", "DRIVERS", "make_driver"]
