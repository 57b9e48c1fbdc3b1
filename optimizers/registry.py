"""`SEARCHES`: search strategies by name; `make_search(name, objective, ...)` builds one.

Our own strategies ("gradient") are classes registered here; every other name must be in
nevergrad's registry and runs as a `NevergradSearch`. Unknown names are a ValueError that
suggests the closest names.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator

from .gradient import GradientSearch
from .nevergrad_search import NevergradSearch, nevergrad_names, suggest
from .objective import Objective
from .search import Search, check_budget

Factory = Callable[..., Search]


class SearchRegistry(Mapping):
    """Read-only mapping name -> factory(objective, *, budget, seed, batch, **kw) -> Search."""

    def __init__(self, own: dict[str, type[Search]]):
        self._own = dict(own)

    def own_names(self) -> list[str]:
        return sorted(self._own)

    def names(self) -> list[str]:
        return self.own_names() + nevergrad_names()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._own or name in nevergrad_names())

    def __getitem__(self, name: str) -> Factory:
        if name in self._own:
            return self._own[name]
        if name in nevergrad_names():
            return lambda objective, **kw: NevergradSearch(objective, optimizer=name, **kw)
        raise ValueError(f"unknown search method {name!r}{suggest(str(name), self.names())}; use "
                         f"{' or '.join(self.own_names())} or a nevergrad optimizer name (e.g. NGOpt, CMA, "
                         f"DiscreteOnePlusOne)")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


SEARCHES = SearchRegistry({"gradient": GradientSearch})


def make_search(name: str, objective: Objective, *, budget: int, seed: int = 0, batch: int | None = None,
                **kw: Any) -> Search:
    """A search by name. `budget` is gradient steps for "gradient", evaluated latents otherwise;
    `batch` is restarts per step (gradient, default 16) or latents asked per step (nevergrad,
    default 16). Other keywords go to the strategy (e.g. lr, start, sigma)."""
    factory = SEARCHES[name]
    check_budget(budget)
    if batch is not None:
        kw["batch"] = check_budget(batch, "batch")
    return factory(objective, budget=budget, seed=seed, **kw)


__all__ = ["SEARCHES", "SearchRegistry", "make_search"]
