"""A comparison-only driver that learns from every round: a Bayesian choice model ("bayes").

The person is modelled as choosing by a softmax over the candidates' squared distances to an
unknown target t (Luce's choice rule; a ranking is Plackett-Luce, a product of softmaxes over the
candidates not yet placed), measured in features f = M^(1/2) u of the search coordinates u:

    P(pick i | t) = softmax_i( -||f_i - t||^2 / tau_r )

M is a metric on u: identity, or the generator's pull-back of pixel distance
(`optimizers.metric`), so that directions that barely change the image barely count. The
||t||^2 term is the same for every candidate and cancels, so the logits are linear in t: a
multinomial logistic regression, concave in t, with the Gaussian prior t ~ N(f(prior mean), S)
that u ~ N(0, I) implies (S the metric's eigenvalues: f is taken in its eigenbasis). A person
errs now and then, so each choice is the softmax's with probability 1 - error_rate and uniform
otherwise (a lapse); the posterior mode t_hat is found by EM (weigh each choice by how likely it
is a real one) around damped Newton steps over all rounds so far, and the Hessian there is a
Laplace approximation of the posterior. tau_r is `temperature` times the mean squared distance
between that round's candidates, so every round's choice weighs about the same whatever the
spread, and a wrong pick only moves t_hat as far as the other rounds allow.

Each round shows t_hat (the best guess) and k-1 Thompson samples from the Laplace posterior,
their spread scaled by `strength` (round 0: k samples of the prior).

Measured and dropped (see the README's compose section): predicting pixel principal components
of the candidates' images with a small MLP on z instead of the latent metric (no better, and the
true components of the rendered images were no better either, with proposals still made in the
latent space); projecting the candidates onto the latent shell |z| = sqrt(d) (much worse). What did
help is `optimizers.preference_image` ("bayes-image"): the posterior on the target image itself,
with proposals made by inverting posterior draws; its fit is this module's `ChoiceModel`.

Deterministic given the seed and the rounds told (the fit is warm-started from the previous
round's mode, which replay reproduces), so `PreferenceSearch` can undo and rebuild it by replay.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np


def one_blas_thread() -> bool:
    """Run numpy's BLAS (OpenBLAS) on one thread, for the whole process; False when it cannot be set.

    The choice models' algebra is small (128x128 Hessians, [9, 4096] x [4096, 128] features), and
    OpenBLAS's idle threads spin after each call, taking the cores from torch's OpenMP threads: a
    faces64 render of 8 images that took 13-16 ms in a loop took 27-131 ms right after a numpy matmul
    (2 cores), and replaying a 20-round composite spent 1.2 s in renders that need 0.3 s."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(1, user_api="blas")
    return True


one_blas_thread()

from .preference_base import Driver

NEWTON_STEPS = 30
TOLERANCE = 1e-7
EM_ROUNDS = 3


@dataclass(frozen=True)
class ChoiceOptions:
    """How the person is modelled (the knobs of `ChoiceModel`); saved in a preference search's state.

    Chosen on fashion32 (docs/benchmarks/compose.md, `benchmarks/compose_bayes_sweep.py`): the top 3
    places of a ranking, temperature 0.3, a 10% lapse rate."""

    temperature: float = 0.3  # times each round's mean squared candidate distance
    error_rate: float = 0.1  # lapse rate: a choice is uniform with this probability
    rank_depth: int = 3  # places of a ranking used: the top few of k are chosen with care, the tail less so
    window: int = 100  # rounds the fit looks back on

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"choice temperature must be a positive number, got {self.temperature!r}")
        if not (isinstance(self.error_rate, (int, float)) and 0 <= self.error_rate < 1):
            raise ValueError(f"choice error_rate must be in [0, 1), got {self.error_rate!r}")
        for name in ("rank_depth", "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"choice {name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "ChoiceOptions":
        return cls(**_strict_keys(cls, d, "choice options"))


def _strict_keys(cls: Any, d: Any, what: str) -> dict[str, Any]:
    """d as keyword arguments of the dataclass `cls`; a ValueError names unknown keys."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be an object, got {type(d).__name__}")
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what}: {unknown}")
    return dict(d)


class Features(Protocol):
    dim: int  # m, the feature size
    prior_variance: np.ndarray  # [m] of a target's features (prior mean 0)

    def __call__(self, u: np.ndarray) -> np.ndarray: ...  # [n, m_u] -> [n, m]

    def preimage(self, f: np.ndarray) -> np.ndarray: ...  # [n, m] -> [n, m_u]


class LatentFeatures:
    """f(u) = S^(1/2) V^T u for the metric M = V S V^T on u (identity by default): linear, so the
    preimage of a feature vector is exact, and u ~ N(0, I) gives f ~ N(0, diag(S))."""

    def __init__(self, dim: int, metric: np.ndarray | None = None):
        self.dim = dim
        if metric is None:
            self.prior_variance, self.vectors = np.ones(dim), np.eye(dim)
        else:
            metric = np.asarray(metric, dtype=np.float64)
            if metric.shape != (dim, dim):
                raise ValueError(f"metric must be [{dim}, {dim}], got {list(metric.shape)}")
            values, self.vectors = np.linalg.eigh(0.5 * (metric + metric.T))
            self.prior_variance = np.clip(values, 1e-8 * max(values.max(), 1e-30), None)
        self._scale = np.sqrt(self.prior_variance)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return (np.asarray(u, dtype=np.float64) @ self.vectors) * self._scale

    def preimage(self, f: np.ndarray) -> np.ndarray:
        return (np.asarray(f, dtype=np.float64) / self._scale) @ self.vectors.T


class ChoiceModel(Driver):
    """The posterior over a target t in some feature space from every choice so far (shared by the
    latent and the image drivers). Each shown round is recorded as the candidates' features f [k, m],
    their squared norms sq [k] (||f||^2, or the full norm when f is a projection), the mean squared
    distance between them (`spread`, which sets that round's temperature) and the order given."""

    def _init_model(self, prior_mean: np.ndarray, prior_variance: np.ndarray, options: ChoiceOptions) -> None:
        self.dim, self.choice = len(prior_mean), options
        self.window, self.temperature = options.window, float(options.temperature)
        self.error_rate, self.rank_depth = float(options.error_rate), options.rank_depth
        self.prior_mean = np.asarray(prior_mean, dtype=np.float64).copy()
        self.prior_precision = 1.0 / np.asarray(prior_variance, dtype=np.float64)
        self.mode = self.prior_mean.copy()
        self.hessian = np.diag(self.prior_precision)  # of the negative log-posterior at the mode
        self.events: list[tuple[np.ndarray, np.ndarray, float, tuple[int, ...]]] = []  # (f, sq, spread, order)

    def set_strength(self, strength: float) -> None:
        """Spread of the proposals around the mode (1 = the posterior's own spread); the round's
        random draws are kept and rescaled, so changing it any number of times replays the same.
        (A driver keeps `strength` and its round's proposals in `pending`, made again on `ask`.)"""
        self.strength = float(strength)
        self.pending = None

    def _posterior_draws(self, eps: np.ndarray, strength: float, with_mode: bool) -> np.ndarray:
        """[k, m] targets: the mode plus `strength` times posterior-shaped draws (row 0 the mode itself)."""
        chol = np.linalg.cholesky(np.linalg.inv(self.hessian))  # posterior covariance factor
        targets = self.mode[None] + strength * eps @ chol.T
        if with_mode:
            targets[0] = self.mode
        return targets

    def _record(self, f: np.ndarray, sq: np.ndarray, spread: float, order: tuple[int, ...]) -> None:
        self.events.append((f, sq, float(spread), tuple(order)))
        self._fit()

    def _terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rounds as choice events: logit gradients g [n, m] and offsets c [n] of every shown
        candidate (logit(t) = g . t + c), and per event the candidates it chose among, idx [E, k]
        with the chosen one in column 0, and mask [E, k] (False: already placed in a ranking)."""
        gs, cs, idx, mask = [], [], [], []
        base = 0
        for f, sq, spread, order in self.events[-self.window:]:
            n = len(f)
            tau = self.temperature * max(spread, 1e-12)
            gs.append(2 * f / tau)
            cs.append(-sq / tau)
            placed: list[int] = []
            for chosen in order[:min(n - 1, self.rank_depth)]:
                rest = [i for i in range(n) if i != chosen]
                idx.append([base + chosen] + [base + i for i in rest])
                mask.append([True] + [i not in placed for i in rest])
                placed.append(chosen)
            base += n
        return np.concatenate(gs), np.concatenate(cs), np.array(idx), np.array(mask)

    def _fit(self) -> None:
        """MAP of t under the choice model with lapses: each choice is the softmax's with probability
        1 - error_rate, else uniform. EM: weigh each choice by how likely it is a real one at the
        current t, then damped Newton on the weighted negative log-posterior (convex)."""
        g, c, idx, mask = self._terms()
        t = self.mode.copy()
        weights = np.ones(len(idx))
        for _ in range(EM_ROUNDS if self.error_rate > 0 else 1):
            t, hess = self._newton(t, g, c, idx, mask, weights)
            a = np.where(mask, (g @ t + c)[idx], -np.inf)
            p_chosen = np.exp(a[:, 0] - np.logaddexp.reduce(a, axis=1))
            lapse = self.error_rate / mask.sum(1)
            weights = (1 - self.error_rate) * p_chosen / ((1 - self.error_rate) * p_chosen + lapse)
        self.mode, self.hessian = t, hess

    def _newton(self, t: np.ndarray, g: np.ndarray, c: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Damped Newton on the weighted negative log-posterior, from t; returns (mode, Hessian)."""
        ge = g[idx]  # [E, k, m]
        flat = idx.reshape(-1)
        prec = self.prior_precision

        def evaluate(t: np.ndarray, hessian: bool = True):
            a = np.where(mask, (g @ t + c)[idx], -np.inf)  # [E, k]
            amax = a.max(axis=1, keepdims=True)
            p = np.exp(a - amax)
            z = p.sum(axis=1, keepdims=True)
            p /= z
            d = t - self.prior_mean
            f = 0.5 * float(d @ (prec * d)) + float(weights @ (amax[:, 0] + np.log(z[:, 0]) - a[:, 0]))
            if not hessian:
                return f, None, None
            mean = np.einsum("ek,ekm->em", p, ge)  # [E, m]
            grad = prec * d + weights @ (mean - ge[:, 0])
            w = np.bincount(flat, weights=(p * weights[:, None]).reshape(-1), minlength=len(g))
            hess = np.diag(prec) + (g * w[:, None]).T @ g - (mean * weights[:, None]).T @ mean
            return f, grad, hess

        f, grad, hess = evaluate(t)
        for _ in range(NEWTON_STEPS):
            step = np.linalg.solve(hess, grad)
            decrement = float(grad @ step)
            if decrement < TOLERANCE:
                break
            scale = 1.0
            while scale > 1e-6 and evaluate(t - scale * step, hessian=False)[0] > f - 0.25 * scale * decrement:
                scale *= 0.5
            t = t - scale * step
            f, grad, hess = evaluate(t)
        return t, hess


def mean_pairwise_sq(x: np.ndarray) -> float:
    """Mean squared distance between the rows of x [n, m] over all ordered pairs i != j."""
    n = len(x)
    sq = (x ** 2).sum(1)
    return float(2 * (n * sq.sum() - (x.sum(0) ** 2).sum()) / max(1, n * (n - 1)))


class BayesDriver(ChoiceModel):
    """Posterior over the target from all rounds; proposes its mode plus Thompson samples."""

    plans_first_round = True  # it proposes round 0 itself (prior samples), so no round is wasted

    def __init__(self, u0: np.ndarray | None, k: int, seed: int, *, dim: int | None = None,
                 metric: np.ndarray | None = None, strength: float = 1.0, options: ChoiceOptions = ChoiceOptions()):
        if u0 is None and dim is None:
            raise ValueError("BayesDriver needs a start u0 or a dimension")
        self.space = len(u0) if u0 is not None else int(dim)  # m_u, the search coordinates
        self.features: Features = LatentFeatures(self.space, metric)
        self.rng = np.random.RandomState(seed)
        self.k = k
        self.start = None if u0 is None else np.asarray(u0, dtype=np.float64).copy()
        prior_mean = np.zeros(self.features.dim) if u0 is None else self.features(self.start[None])[0]
        self._init_model(prior_mean, self.features.prior_variance, options)
        self.strength = float(strength)
        self.incumbent = np.zeros(self.space) if u0 is None else self.start.copy()
        self.pending: np.ndarray | None = None
        self._eps: np.ndarray | None = None  # [k, m] this round's N(0, I) draws

    # -- proposals -------------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        """[k, m_u] candidates of the current round (drawn once, then cached until told)."""
        if self._eps is None:
            self._eps = self.rng.randn(self.k, self.dim)
        if self.pending is None:  # round 0 is all prior samples; later rounds lead with the best guess
            self.pending = self.features.preimage(self._posterior_draws(self._eps, self.strength, bool(self.events)))
        return self.pending

    # -- learning --------------------------------------------------------------------------------
    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        self._no_shown(shown)
        candidates = self.ask()
        f = self.features(candidates)
        self.incumbent = candidates[order[0]].copy()
        self._record(f, (f ** 2).sum(1), mean_pairwise_sq(f), order)
        self.pending, self._eps = None, None


__all__ = ["ChoiceOptions", "ChoiceModel", "BayesDriver", "LatentFeatures", "Features", "mean_pairwise_sq"]
