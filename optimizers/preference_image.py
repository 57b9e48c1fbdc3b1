"""The choice model on the candidates' images ("bayes-image"): what the person compares is pictures.

The person is modelled as in `optimizers.preference_model` (Luce's choice rule over squared
distances to an unknown target, Plackett-Luce for rankings, lapses fit by EM), but the distance is
taken between the rendered candidates x_i = G(z_i) and a target image t, not between latents:

    P(pick i | t) = softmax_i( -||x_i - t||^2 / tau_r )

With t = mean + B a (B the top r principal directions of the generator's images, a ~ N(0, diag of
their variances)) the logits are 2 (B^T (x_i - mean)) . a - ||x_i - mean||^2, linear in a, so the
posterior over a is the same concave multinomial logistic regression, exact in the candidates'
full pixel norms; only the target is limited to r directions. Each round shows the generation
closest to the posterior mode and to k-1 Thompson samples of it (`strength` scales their spread):
the target images are turned into latents by the model's learned inversion encoder and a few
Adam steps on the pixel distance (`invert`), which the caller supplies with the generator.

Measured against the latent-metric driver (README, compose section; 20 rounds of 9, rankings by a
20%-wrong user): 79% of the random -> full-inversion gap on faces64 (bayes 66%), 66% on fashion32
(bayes 54%): nothing is lost between latent and pixel distance. The price is the inversion, about
3 s a round on fashion32 and 5 s on faces64 on 2 CPU threads, instead of milliseconds.

Deterministic given the seed; `tell(order, shown=...)` replays a round from the candidates that
were shown (no inversion), so undo and loading a session stay fast.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .preference_model import ChoiceModel, mean_pairwise_sq

# Chosen on fashion32 (results/compose_image_prototype_fashion32.txt, 12 targets apart from the README's,
# 20%-wrong rankings, share of the gap closed): 64 directions 62%, 128 70%, 256 69% (30 inversion steps);
# 10 steps 54%, 20 steps at lr 0.1 66%, 30 steps 70%, 60 steps 75% (128 directions). Proposals that are
# not really the images the posterior asked for cost more than a slower round.
DEFAULT_COMPONENTS = 128  # principal directions of the target image
PRIOR_SAMPLES = 2048  # generated images they are estimated from (once per generator and process)
INVERT_STEPS = 60
INVERT_LR = 0.05


@dataclass(frozen=True)
class PixelPrior:
    """The generator's images as a Gaussian: mean [P], top principal directions basis [P, r] and
    their variances [r] (float64)."""

    mean: np.ndarray
    basis: np.ndarray
    variance: np.ndarray

    @property
    def components(self) -> int:
        return self.basis.shape[1]


_PRIORS: "weakref.WeakKeyDictionary[Any, dict[int, PixelPrior]]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def pixel_prior(generator: Any, components: int = DEFAULT_COMPONENTS, *, n: int = PRIOR_SAMPLES, seed: int = 0,
                batch: int = 128) -> PixelPrior:
    """Principal directions of n generated images (cached per generator object and r)."""
    cache = _PRIORS.setdefault(generator, {}) if _weakrefable(generator) else {}
    if components not in cache:
        z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
        x = torch.cat([generator.generate(zb).flatten(1) for zb in z.split(batch)]).double()
        mean = x.mean(0)
        centered = x - mean
        r = min(components, n - 1, x.shape[1])
        # eigen-decomposition of the smaller Gram side: [n, n] or [P, P]
        if x.shape[1] <= n:
            values, vectors = torch.linalg.eigh(centered.T @ centered)
            values, basis = values.flip(0)[:r], vectors.flip(1)[:, :r]
        else:
            values, vectors = torch.linalg.eigh(centered @ centered.T)
            values, vectors = values.flip(0)[:r], vectors.flip(1)[:, :r]
            basis = centered.T @ vectors / values.clamp_min(1e-12).sqrt()
        variance = (values / (n - 1)).clamp_min(1e-12)
        cache[components] = PixelPrior(mean.numpy(), basis.numpy(), variance.numpy())
    return cache[components]


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


class ImageBayesDriver(ChoiceModel):
    """Posterior over the target image from all rounds; shows the generations nearest its mode and
    Thompson samples. `render(u [n, m]) -> images [n, P]` and `invert(images [n, P], u_init [n, m])
    -> u [n, m]` connect it to the generator (numpy float64 in and out)."""

    plans_first_round = True
    replays_shown = True  # proposals cost inversions: replay (undo, loading) learns from the saved shown ones

    def __init__(self, u0: np.ndarray | None, k: int, seed: int, *, dim: int, prior: PixelPrior,
                 render: Callable[[np.ndarray], np.ndarray], invert: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 strength: float = 1.0, temperature: float | None = None, error_rate: float | None = None,
                 window: int = 100, rank_depth: int | None = None):
        self.space, self.k, self.prior = int(dim), k, prior
        self.render, self.invert = render, invert
        self.rng = np.random.RandomState(seed)
        self.start = None if u0 is None else np.asarray(u0, dtype=np.float64).copy()
        prior_mean = np.zeros(prior.components) if u0 is None else self._features(render(self.start[None]))[0][0]
        self._init_model(prior_mean, prior.variance, temperature=temperature, error_rate=error_rate,
                         rank_depth=rank_depth, window=window)
        self.strength = float(strength)
        self.incumbent = np.zeros(self.space) if u0 is None else self.start.copy()
        self.pending: np.ndarray | None = None
        self._eps: np.ndarray | None = None  # this round's draws: [k, r] targets, or [k, m] prior latents in round 0

    def _features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centered = np.asarray(images, dtype=np.float64) - self.prior.mean
        return centered @ self.prior.basis, (centered ** 2).sum(1)

    def set_strength(self, strength: float) -> None:
        self.strength = float(strength)
        self.pending = None

    def _draw(self) -> np.ndarray:
        if self._eps is None:
            first_random = not self.events and self.start is None
            self._eps = self.rng.randn(self.k, self.space if first_random else self.dim)
        return self._eps

    def ask(self) -> np.ndarray:
        """[k, m] candidates of the current round (computed once, then cached until told)."""
        eps = self._draw()
        if self.pending is None:
            if not self.events and self.start is None:  # round 0: k latents of the prior
                self.pending = eps.copy()
            else:
                targets = self.prior.mean + self._posterior_draws(eps, self.strength, True) @ self.prior.basis.T
                init = np.repeat(self.incumbent[None], self.k, axis=0)
                self.pending = self.invert(targets, init)
                if not self.events:  # the warm start itself leads round 0
                    self.pending[0] = self.start
        return self.pending

    def offer(self, candidates: np.ndarray) -> None:
        """Take [k, m] as this round's candidates: the ones it proposed before, for an undo (its
        random draws for the round are made as usual, so later rounds replay the same)."""
        self._draw()
        self.pending = np.asarray(candidates, dtype=np.float64).copy()

    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        """Learn from the order given; `shown` [k, m] replays a round from its candidates."""
        self._draw()
        candidates = self.ask() if shown is None else np.asarray(shown, dtype=np.float64)
        images = self.render(candidates)
        f, sq = self._features(images)
        self.incumbent = candidates[order[0]].copy()
        self._record(f, sq, mean_pairwise_sq(images), order)
        self.pending, self._eps = None, None


def generator_bridge(generator: Any, *, offset: torch.Tensor, basis: torch.Tensor | None, encoder: Any = None,
                     steps: int = INVERT_STEPS, lr: float = INVERT_LR, prior_weight: float = 1.0):
    """`render` and `invert` for `ImageBayesDriver` on coordinates u (z = offset + u @ basis): invert
    starts from the inversion encoder's guess (else from u_init) and takes `steps` Adam steps on the
    pixel MSE plus the latent prior ((mean z^2) - 1)^2."""
    pinv = None if basis is None else torch.linalg.pinv(basis.double()).float()

    def to_z(u: torch.Tensor) -> torch.Tensor:
        return offset + (u if basis is None else u @ basis)

    @torch.no_grad()
    def render(u: np.ndarray) -> np.ndarray:
        return generator.generate(to_z(torch.as_tensor(u, dtype=torch.float32))).flatten(1).double().numpy()

    def invert(images: np.ndarray, u_init: np.ndarray) -> np.ndarray:
        target = torch.as_tensor(images, dtype=torch.float32)
        with torch.no_grad():
            if encoder is not None:
                shape = (len(target), generator.channels, generator.resolution, generator.resolution)
                z0 = encoder(target.view(shape).clamp(-1, 1))
                u = z0 - offset if pinv is None else (z0 - offset) @ pinv
            else:
                u = torch.as_tensor(u_init, dtype=torch.float32)
        u = u.clone().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=lr, betas=(0.9, 0.99))
        for _ in range(steps):
            z = to_z(u)
            loss = (generator.generate(z).flatten(1) - target).pow(2).mean(1) \
                + prior_weight * (z.pow(2).mean(1) - 1).pow(2)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        return u.detach().double().numpy()

    return render, invert


__all__ = ["ImageBayesDriver", "PixelPrior", "pixel_prior", "generator_bridge", "DEFAULT_COMPONENTS"]
