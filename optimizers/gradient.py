"""Gradient search: many restarts in one batch, Adam, a learning-rate schedule that really applies.

Compared with pytorch_GAN_zoo's `gradientDescentOnInput` (one latent per target, Adam lr 1 for all
6000 steps because its decay-and-restart rebinds locals inside `resetVar` and never reaches the
optimizer), this search
- runs `batch` restarts as one batch (one forward/backward for all of them),
- decays the learning rate on the optimizer itself (cosine by default; "step" is the reference's
  intended x0.1 at each third with every restart reset to its own best),
- keeps the best latent of every restart, ignores NaN/inf losses and resets a restart whose latent
  became non-finite to its best,
- optionally halves the restarts (keeping the best) at given fractions of the budget, which saves
  most of the compute once the good basins are known,
- stops when the best loss has not improved for `patience` steps,
- can start from given latents (an encoder's guess), jittered for half of the other restarts,
- can run D's realism term every `realism_every`-th step only, linearized in between
  (`objective.LinearizedRealism`); only the exact losses of D's steps compete for the best.
"""
from __future__ import annotations

import math
import time

import torch

from .objective import LinearizedRealism, Objective
from .search import ProgressEvent, Search, as_starts

SCHEDULES = ("cosine", "step", "constant")


class Adam:
    """Adam on one tensor of latents [R, d], with per-row moments a search can reset or subset.

    torch.optim.Adam's own update (Kingma & Ba, bias-corrected, eps outside the square root) on a
    single tensor. Not torch.optim: the first torch optimizer a process builds imports torch._dynamo,
    1.9 s of a 10 s `studio inspire` run on 2 cores (`python -X importtime`).
    """

    def __init__(self, z: torch.Tensor, *, lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.lr, (self.beta1, self.beta2), self.eps = float(lr), betas, eps
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(z), torch.zeros_like(z)
        self.steps = 0

    @torch.no_grad()
    def step(self, z: torch.Tensor, grad: torch.Tensor) -> None:
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        correction1 = 1 - self.beta1 ** self.steps
        correction2 = 1 - self.beta2 ** self.steps
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(correction2)).add_(self.eps)
        z.addcdiv_(self.exp_avg, denom, value=-self.lr / correction1)

    def reset_rows(self, rows: torch.Tensor) -> None:
        """Forget the moments of some rows (a mask or indices)."""
        self.exp_avg[rows] = 0.0
        self.exp_avg_sq[rows] = 0.0

    def keep_rows(self, keep: torch.Tensor) -> None:
        """Keep only these rows' moments (indices), in that order."""
        self.exp_avg, self.exp_avg_sq = self.exp_avg[keep].clone(), self.exp_avg_sq[keep].clone()


class GradientSearch(Search):
    """`budget` counts gradient steps; each step evaluates all live restarts."""

    name = "gradient"
    unit = "steps"

    def __init__(self, objective: Objective, *, budget: int, seed: int = 0, batch: int = 16, lr: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.99), schedule: str = "cosine", final_lr: float = 0.01,
                 patience: int | None = None, min_delta: float = 1e-4, prune_at: tuple[float, ...] = (0.1, 0.25),
                 start: torch.Tensor | None = None, start_sigma: float = 0.5, realism_every: int = 1):
        super().__init__(objective, budget=budget, seed=seed, batch=batch)
        # D's realism term refreshed every `realism_every` steps and linearized in between (1: every step)
        self._realism = LinearizedRealism(realism_every) if realism_every != 1 else None
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if any(not 0 < f < 1 for f in prune_at):
            raise ValueError(f"prune_at fractions must lie in (0, 1), got {prune_at}")
        self.lr, self.betas, self.schedule, self.final_lr = float(lr), tuple(betas), schedule, float(final_lr)
        self.patience = patience if patience is not None else max(50, budget // 4)
        self.min_delta = float(min_delta)
        self._prune_steps = sorted({max(1, int(f * budget)) for f in prune_at})
        device = objective.device
        z0 = self._initial(as_starts(start, self.latent_dim), float(start_sigma)).to(device)
        self.z = torch.nn.Parameter(z0)  # [R, d], the live restarts
        self.restart_best_loss = torch.full((len(z0),), math.inf, device=device)  # [R]
        self.restart_best_z = z0.clone()  # [R, d]
        self._make_optimizer()
        self._ref_loss, self._last_improved = math.inf, 0

    def _initial(self, starts: torch.Tensor | None, sigma: float) -> torch.Tensor:
        """[R, d]: the starts, then half of the other restarts jittered around them (their basin),
        and the rest fresh from the prior (in case the guess sits in the wrong basin)."""
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(self.batch, self.latent_dim, generator=gen)
        if starts is None:
            return noise
        starts = starts[: self.batch]
        extra = self.batch - len(starts)
        jittered = (extra + 1) // 2 if sigma > 0 else 0
        base = starts[torch.arange(jittered) % len(starts)]
        return torch.cat([starts, base + sigma * noise[:jittered], noise[jittered:extra]])

    def _lr_factor(self, step: int) -> float:
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            return 0.1 ** min(2, step // max(1, self.budget // 3))
        t = min(1.0, step / self.budget)
        return self.final_lr + (1.0 - self.final_lr) * 0.5 * (1.0 + math.cos(math.pi * t))

    def _make_optimizer(self) -> None:
        self.optimizer = Adam(self.z, lr=self.lr * self._lr_factor(self.steps), betas=self.betas)

    @property
    def current_lr(self) -> float:
        return self.optimizer.lr

    def ask(self) -> torch.Tensor:
        """The live restarts' current latents, [R, d]."""
        return self.z.detach().cpu().clone()

    def _update(self, latents: torch.Tensor, losses: torch.Tensor) -> None:
        """Losses told from outside only feed the best-so-far; steps need `step()` (gradients)."""

    def step(self) -> ProgressEvent:
        start = time.perf_counter()
        self.z.grad = None
        loss, terms = self.objective(self.z, realism=self._realism)
        finite = torch.isfinite(loss)
        # only exact losses compete for the best: a linearized realism term can be far below D's own
        exact = self._realism is None or self._realism.exact
        if exact:
            self._record(self.z.detach().cpu(), loss.detach().cpu(), terms)
        with torch.no_grad():
            better = finite & (loss < self.restart_best_loss) & exact
            self.restart_best_loss = torch.where(better, loss.detach(), self.restart_best_loss)
            self.restart_best_z = torch.where(better[:, None], self.z.detach(), self.restart_best_z)
        total = torch.where(finite, loss, torch.zeros_like(loss)).sum()
        if total.requires_grad:
            total.backward()
        with torch.no_grad():
            if self.z.grad is not None:
                self.z.grad[~finite] = 0.0
                torch.nan_to_num_(self.z.grad, nan=0.0, posinf=0.0, neginf=0.0)
                self.optimizer.step(self.z, self.z.grad)
            bad = ~torch.isfinite(self.z).all(dim=1)
            if bad.any():
                self._reset_rows(bad)
        self.steps += 1
        self._after_step()
        return self._event(start)

    def _reset_rows(self, rows: torch.Tensor) -> None:
        """Put restarts back to their best latent and forget their Adam moments."""
        self.z.data[rows] = self.restart_best_z[rows]
        self.optimizer.reset_rows(rows)

    def _after_step(self) -> None:
        factor = self._lr_factor(self.steps)
        if self.schedule == "step" and factor != self._lr_factor(self.steps - 1):
            # The reference's intent: restart every run from its best at each decay.
            self.z.data.copy_(self.restart_best_z)
            self._make_optimizer()
        self.optimizer.lr = self.lr * factor
        if self.steps in self._prune_steps and len(self.z) > 1:
            self._prune()
        if self.best_loss < self._ref_loss - self.min_delta * max(1.0, abs(self._ref_loss)) or \
                not math.isfinite(self._ref_loss):
            self._ref_loss, self._last_improved = self.best_loss, self.steps

    def _prune(self) -> None:
        """Keep the better half of the restarts (by their best loss), with their Adam moments."""
        keep = torch.argsort(self.restart_best_loss)[: max(1, len(self.z) // 2)]
        self.z = torch.nn.Parameter(self.z.detach()[keep].clone())
        self.restart_best_loss = self.restart_best_loss[keep]
        self.restart_best_z = self.restart_best_z[keep]
        self.optimizer.keep_rows(keep)

    def finished(self) -> str | None:
        why = super().finished()
        if why is None and self.steps - self._last_improved >= self.patience:
            return "plateau"
        return why


__all__ = ["GradientSearch", "SCHEDULES"]
