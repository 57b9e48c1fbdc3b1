"""Comparison-only optimizers behind `PreferenceSearch`: they propose k coordinate vectors u per
round and learn only from the order the person gives (a pick is an order of length 1).

- `ElitistDriver` ("elitist", ours): a (1 + (k-1)) evolution strategy. Candidate 0 is the current
  choice, the others are Gaussian steps around it; keeping the current choice shrinks the step,
  choosing a new one grows it (the 1/5th success rule, with picks as the only signal). Showing
  the current choice makes a wrong pick cheap to undo in the next round.
- `NevergradDriver` (any nevergrad registry name): the optimizer over u, told rank-based losses
  offset by -k * round (constant losses make CMA restart silently; the newest choice must be the
  incumbent). "CMA" is `ParametrizedCMA(popsize=k)` (the registry's CMA crashes at d >= 300).
- `BayesDriver` ("bayes") and `ImageBayesDriver` ("bayes-image"): a choice model fit on every round.

Every driver implements `optimizers.preference_base.Driver`; which one, and its settings, is a
`DriverOptions` (saved in the search's state). u ~ N(0, I) is the prior in every driver.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assetpaths import MODEL_ID  # the studio's model id syntax (never a path): what "bayes:<id>" may name

from .nevergrad_search import check_nevergrad_name
from .preference_base import Driver
from .preference_image import ImageBayesDriver, ImageOptions
from .preference_model import BayesDriver, ChoiceOptions, _strict_keys


class ElitistDriver(Driver):
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

    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        self._no_shown(shown)
        candidates = self.ask()
        if order[0] == 0:
            self.sigma = max(self.min_sigma, self.sigma * self.shrink)
        else:
            self.incumbent = candidates[order[0]].copy()
            self.sigma = min(self.max_sigma, self.sigma * self.grow)
        self.pending = None


class NevergradDriver(Driver):
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

    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        self._no_shown(shown)
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


DRIVERS: dict[str, type[Driver]] = {"elitist": ElitistDriver, "bayes": BayesDriver, "bayes-image": ImageBayesDriver}
MODEL_DRIVERS = ("bayes", "bayes-image")  # ours that may name a model whose shipped files they use


@dataclass(frozen=True)
class DriverOptions:
    """Which driver a preference search runs, and its settings: a typed part of the search's state.

    `driver` is one of `DRIVERS` or a nevergrad optimizer name; `model` (bayes, bayes-image only)
    names the model whose data it uses, handed to the search as `SearchAssets` ("bayes": its latent
    metric; "bayes-image": its inversion encoder and pixel prior); `choice` and `image` are the
    choice model's and the image driver's settings (kept for every driver, used by those that have
    them)."""

    driver: str
    model: str | None = None
    choice: ChoiceOptions = field(default_factory=ChoiceOptions)
    image: ImageOptions = field(default_factory=ImageOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.driver, str) or not self.driver:
            raise ValueError(f"driver must be a name, got {self.driver!r}")
        if self.driver not in DRIVERS:
            check_nevergrad_name(self.driver)
        if self.model is not None:
            if self.driver not in MODEL_DRIVERS or not isinstance(self.model, str) or not MODEL_ID.fullmatch(self.model):
                raise ValueError(f"optimizer {self.name!r}: only 'bayes:<model id>' or 'bayes-image:<model id>' "
                                 f"names a model")
        if not isinstance(self.choice, ChoiceOptions) or not isinstance(self.image, ImageOptions):
            raise ValueError("choice and image must be ChoiceOptions and ImageOptions")

    @property
    def name(self) -> str:
        """The short name: "elitist", "bayes:faces64", "CMA", ..."""
        return self.driver if self.model is None else f"{self.driver}:{self.model}"

    @property
    def driver_class(self) -> type[Driver]:
        return DRIVERS.get(self.driver, NevergradDriver)

    @property
    def plans_first_round(self) -> bool:
        return self.driver_class.plans_first_round

    @property
    def replays_shown(self) -> bool:
        return self.driver_class.replays_shown

    @classmethod
    def parse(cls, name: str, **settings: Any) -> "DriverOptions":
        """"bayes-image:faces64" -> DriverOptions("bayes-image", "faces64") with today's defaults."""
        if not isinstance(name, str):
            raise ValueError(f"optimizer must be a name, got {name!r}")
        driver, _, model = name.partition(":")
        return cls(driver, model or None, **settings)

    @classmethod
    def legacy(cls, name: str) -> "DriverOptions":
        """The options a state saved before options were saved ran with: its optimizer name, the
        choice model's defaults then (which are today's), and bayes-image's inverting proposals."""
        return cls.parse(name, choice=ChoiceOptions(temperature=0.3, error_rate=0.1, rank_depth=3, window=100),
                         image=ImageOptions.inverting())

    def to_dict(self) -> dict[str, Any]:
        return {"driver": self.driver, "model": self.model, "choice": self.choice.to_dict(),
                "image": self.image.to_dict()}

    @classmethod
    def from_dict(cls, d: Any) -> "DriverOptions":
        d = _strict_keys(cls, d, "driver options")
        if set(d) != {"driver", "model", "choice", "image"}:
            raise ValueError(f"driver options need exactly driver, model, choice, image; got {sorted(d)}")
        return cls(d["driver"], d["model"], ChoiceOptions.from_dict(d["choice"]), ImageOptions.from_dict(d["image"]))


def make_driver(options: DriverOptions, u0: np.ndarray | None, k: int, seed: int, **bridge: Any) -> Driver:
    """The driver `options` names. Drivers that plan their first round take `bridge` ("bayes": dim,
    metric, strength; "bayes-image": dim, prior, render, invert, strength) and their options."""
    if options.driver == "bayes":
        return BayesDriver(u0, k, seed, options=options.choice, **bridge)
    if options.driver == "bayes-image":
        return ImageBayesDriver(u0, k, seed, options=options.choice, image=options.image, **bridge)
    if options.driver == "elitist":
        return ElitistDriver(u0, k, seed)
    return NevergradDriver(options.driver, u0, k, seed)


__all__ = ["Driver", "DriverOptions", "ChoiceOptions", "ImageOptions", "ElitistDriver", "NevergradDriver",
           "BayesDriver", "ImageBayesDriver", "DRIVERS", "make_driver"]
