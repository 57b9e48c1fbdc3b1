"""What every latent search shares: ask/tell, best-so-far that NaN cannot corrupt, progress events,
`run()` / `iterate()` as the one loop the UI, the CLI and the benchmarks use, and `cancel()`."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from .objective import Objective


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a search. `step` and `budget` count the search's own unit (gradient steps, or
    evaluated latents for ask/tell optimizers); `best_latent` is [1, d]; `terms` are floats."""

    step: int
    budget: int
    best_loss: float
    best_latent: torch.Tensor
    terms: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    """The best latent [1, d] found, its loss and terms, and how the search got there."""

    latent: torch.Tensor
    loss: float
    terms: dict[str, float]
    steps: int
    seconds: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, best loss, seconds)
    stopped: str = "budget"  # "budget" | "plateau" | "cancelled"


def check_budget(budget: object, what: str = "budget") -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"{what} must be a positive integer, got {budget!r}")
    return budget


class Search:
    """Base class: subclasses implement `ask()`, `_update(latents, losses)` and optionally `step()`.

    `tell(latents, losses, terms)` records the best so far (non-finite losses never become best and
    are handed to the optimizer as a large finite penalty) and then updates the strategy.
    """

    name = "search"
    unit = "evaluations"

    def __init__(self, objective: Objective, *, budget: int, seed: int = 0, batch: int = 1):
        self.objective = objective
        self.budget = check_budget(budget)
        self.batch = check_budget(batch, "batch")
        self.seed = int(seed)
        self.latent_dim = objective.latent_dim
        self.steps = 0
        self.best_loss = math.inf
        self.best_latent: torch.Tensor | None = None  # [1, d]
        self.best_terms: dict[str, float] = {}
        self.history: list[tuple[int, float, float]] = []
        self.seconds = 0.0
        self.stopped: str | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    # -- ask / tell ------------------------------------------------------------------------------
    def ask(self) -> torch.Tensor:
        """The next latents to evaluate, [n, d]."""
        raise NotImplementedError

    def tell(self, latents: torch.Tensor, losses: torch.Tensor,
             terms: dict[str, torch.Tensor] | None = None) -> None:
        """Report the losses [n] of the latents [n, d] returned by the last `ask()`."""
        losses = torch.as_tensor(losses, dtype=torch.float32).detach().reshape(-1).cpu()
        if len(losses) != len(latents):
            raise ValueError(f"got {len(losses)} losses for {len(latents)} latents")
        self._record(latents.detach().cpu(), losses, terms or {})
        self._update(latents.detach().cpu(), losses)

    def _update(self, latents: torch.Tensor, losses: torch.Tensor) -> None:
        raise NotImplementedError

    def _record(self, latents: torch.Tensor, losses: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        finite = torch.isfinite(losses) & torch.isfinite(latents).all(dim=1)
        if finite.any():
            masked = torch.where(finite, losses, torch.full_like(losses, math.inf))
            i = int(masked.argmin())
            if float(masked[i]) < self.best_loss:
                with self._lock:
                    self.best_loss = float(masked[i])
                    self.best_latent = latents[i:i + 1].clone()
                    self.best_terms = {k: float(v.detach().reshape(-1)[i]) for k, v in terms.items()}

    # -- the loop --------------------------------------------------------------------------------
    def step(self) -> ProgressEvent:
        """Ask, evaluate the objective without gradients, tell; one event."""
        start = time.perf_counter()
        z = self.ask()
        with torch.no_grad():
            losses, terms = self.objective(z)
        self.tell(z, losses, terms)
        self.steps += len(z)
        return self._event(start)

    def _event(self, start: float) -> ProgressEvent:
        self.seconds += time.perf_counter() - start
        self.history.append((self.steps, self.best_loss, self.seconds))
        with self._lock:
            latent = self.best_latent if self.best_latent is not None else self.fallback_latent()
            return ProgressEvent(self.steps, self.budget, self.best_loss, latent.clone(), dict(self.best_terms),
                                 self.seconds)

    def finished(self) -> str | None:
        """Why the search is over ("budget", "plateau", "cancelled"), or None."""
        if self._cancel.is_set():
            return "cancelled"
        if self.steps >= self.budget:
            return "budget"
        return None

    def iterate(self) -> Iterator[ProgressEvent]:
        """Yield one event per step until the budget is spent, a plateau, or `cancel()`."""
        while (why := self.finished()) is None:
            yield self.step()
        self.stopped = why

    def run(self, callback: Callable[[ProgressEvent], None] | None = None,
            should_stop: Callable[[ProgressEvent], bool] | None = None) -> SearchResult:
        """Run to the end; `callback` sees every event, `should_stop(event) -> True` ends early."""
        for event in self.iterate():
            if callback is not None:
                callback(event)
            if should_stop is not None and should_stop(event):
                self.cancel()
        return self.result()

    def cancel(self) -> SearchResult:
        """Stop at the end of the current step (safe from another thread); the best so far."""
        self._cancel.set()
        return self.result()

    def fallback_latent(self) -> torch.Tensor:
        """What to show before anything was evaluated: the seed's first latent, [1, d]."""
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(1, self.latent_dim, generator=gen)

    def result(self) -> SearchResult:
        with self._lock:
            latent = self.best_latent if self.best_latent is not None else self.fallback_latent()
            return SearchResult(latent.clone(), self.best_loss, dict(self.best_terms), self.steps, self.seconds,
                                list(self.history), self.stopped or self.finished() or "running")


def as_starts(start: torch.Tensor | None, latent_dim: int) -> torch.Tensor | None:
    """A start latent [d] or [m, d] as a finite float [m, d] tensor, or None."""
    if start is None:
        return None
    start = torch.as_tensor(start, dtype=torch.float32).detach().cpu()
    if start.dim() == 1:
        start = start[None]
    if start.dim() != 2 or start.shape[1] != latent_dim:
        raise ValueError(f"start must be a latent [{latent_dim}] or [m, {latent_dim}], got {list(start.shape)}")
    if not torch.isfinite(start).all():
        raise ValueError("start latent contains NaN or inf")
    return start


__all__ = ["ProgressEvent", "SearchResult", "Search", "check_budget", "as_starts"]
