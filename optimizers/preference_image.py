"""The choice model on the candidates' images ("bayes-image"): what the person compares is pictures.

The person is modelled as in `optimizers.preference_model` (Luce's choice rule over squared
distances to an unknown target, Plackett-Luce for rankings, lapses fit by EM), but the distance is
taken between the rendered candidates x_i = G(z_i) and a target image t, not between latents:

    P(pick i | t) = softmax_i( -||x_i - t||^2 / tau_r )

With t = mean + B a (B the top r principal directions of the generator's images, a ~ N(0, diag of
their variances)) the logits are 2 (B^T (x_i - mean)) . a - ||x_i - mean||^2, linear in a, so the
posterior over a is the same concave multinomial logistic regression, exact in the candidates'
full pixel norms; only the target is limited to r directions. `ImageOptions` say how a round is
made. By default (the fast path, docs/benchmarks/compose_realtime.md) candidate 0 is the current
choice (a wrong pick is cheap to undo), candidates 1-2 are Gaussian steps around it sized as
elitist's, and the others are the generations nearest the posterior mode and Thompson samples of
it (`strength` scales their spread): the inversion encoder's guess of each target image, refined
by 4 Adam steps on the pixel distance in the prior's principal directions, then put back on the
typical shell |z|^2 = d, so they stay sharp faces. `ImageOptions.inverting()` is the driver as it
was (60 Adam steps on the full pixel distance from the better of the encoder's guess and the
nearest shown candidate, seconds a round; 79% of the gap on faces64 with rankings).

Deterministic given the seed; `tell(order, shown=...)` replays a round from the candidates that
were shown (no inversion), so undo and loading a session stay fast. A model's saved pixel prior and
inversion encoder are found by the studio (`studio.shipped`) and handed in (`SearchAssets`); without
a prior, it is computed from the generator's samples.
"""
from __future__ import annotations

import json
import math
import threading
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from weightfile import WeightFileError, load_weights, save_weights

from .gradient import Adam
from .preference_model import ChoiceModel, ChoiceOptions, _strict_keys, mean_pairwise_sq

DEFAULT_COMPONENTS = 128  # principal directions of the target image (shipped priors hold this many)
PRIOR_SAMPLES = 2048  # generated images they are estimated from (once per generator and process)


@dataclass(frozen=True)
class ImageOptions:
    """How "bayes-image" turns posterior draws into candidates; saved in a preference search's state.

    The defaults are the fast path (docs/benchmarks/compose_realtime.md); `ImageOptions.inverting()`
    is the driver as it was until then (60 Adam steps per proposal, seconds a round), which a saved
    state without options replays with. The inverting settings were chosen on fashion32
    (results/compose_image_prototype_fashion32.txt, compose_bayes_sweep_fashion32_image.txt): 64
    directions 62%, 128 70%, 256 69% (30 steps); with warm starts 30 steps 84%, 60 steps 93%, 100 90%.
    """

    components: int = DEFAULT_COMPONENTS  # principal directions of the target image
    steps: int = 4  # Adam steps per proposal on the distance to its posterior draw
    lr: float = 0.05
    warm_from_shown: bool = False  # start from the better of the encoder's guess and the nearest shown candidate
    prior_weight: float = 1.0  # of the latent prior ((mean z^2) - 1)^2 in the inversion loss
    projected: bool = True  # fit the draw in the prior's principal directions only (not its blurry rest)
    typical: bool = True  # rescale each proposal onto the prior's shell |z|^2 = d (where G's images are sharp)
    keep_current: bool = True  # show the current choice as candidate 0 (instead of the mode's inversion)
    # > 0: each draw is shown as its nearest image among `pool` generations (the draws' inversions and
    # Gaussian steps around the current choice and the mode's inversion, up to `pool_step` x strength
    # in latent units), so every candidate is a generation of a typical latent; 0: the inversions
    pool: int = 0
    pool_step: float = 1.0
    # candidates 1..local (with keep_current) are Gaussian steps around the current choice, their size
    # (x strength, latent units) grown x1.25 when a new candidate is picked and shrunk x0.7 when the
    # current one is kept, as elitist's: moves that do not trust the choice model's picture of the person
    local: int = 2
    # instead of a fixed `local`, share rows 1..k-2 between local steps and the model's proposals by
    # how often each was picked so far (Laplace's rule): a person the choice model describes well gets
    # its proposals, one it does not (another notion of "close") gets elitist's steps
    adaptive: bool = False

    def __post_init__(self) -> None:
        for name in ("components", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "components" else 0):
                raise ValueError(f"image option {name} must be a {'positive' if name == 'components' else 'non-negative'}"
                                 f" integer, got {value!r}")
        for name in ("pool", "local"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"image option {name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.adaptive, bool):
            raise ValueError(f"image option adaptive must be true or false, got {self.adaptive!r}")
        if (self.local or self.adaptive) and not self.keep_current:
            raise ValueError("image option local needs keep_current (its steps are sized by keeping the choice)")
        for name in ("lr", "prior_weight", "pool_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"image option {name} must be a non-negative number, got {value!r}")
        for name in ("warm_from_shown", "projected", "typical", "keep_current"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"image option {name} must be true or false, got {getattr(self, name)!r}")

    @classmethod
    def inverting(cls) -> "ImageOptions":
        """The driver before the fast path: full 60-step inversions of the posterior draws."""
        return cls(components=DEFAULT_COMPONENTS, steps=60, lr=0.05, warm_from_shown=True, prior_weight=1.0,
                   projected=False, typical=False, keep_current=False, pool=0, pool_step=1.0, local=0, adaptive=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "ImageOptions":
        return cls(**_strict_keys(cls, d, "image options"))


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

    def top(self, components: int) -> "PixelPrior | None":
        """The prior of the top `components` directions, or None when it holds fewer."""
        if self.components < components:
            return None
        return PixelPrior(self.mean, self.basis[:, :components].copy(), self.variance[:components].copy())


_PRIORS: "weakref.WeakKeyDictionary[Any, dict[int, PixelPrior]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # two first rounds at once compute (or load) a model's prior once
FORMAT = "studio-pixel-prior/1"
PROBES = 4  # latents whose images a saved prior keeps, to check it belongs to the generator at hand


def pixel_prior(generator: Any, components: int | None = None, *, n: int = PRIOR_SAMPLES, seed: int = 0,
                batch: int = 128, shipped: PixelPrior | None = None) -> PixelPrior:
    """Principal directions of n generated images (cached per generator object and r). `shipped`, a
    prior loaded for this generator (`load_pixel_prior`; the studio finds the file), is used instead
    when it holds >= r directions (else the prior is computed)."""
    components = DEFAULT_COMPONENTS if components is None else int(components)
    with _LOCK:
        cache = _PRIORS.setdefault(generator, {}) if _weakrefable(generator) else {}
        if components not in cache:
            top = None if shipped is None else shipped.top(components)
            cache[components] = top or fit_pixel_prior(generator, components, n=n, seed=seed, batch=batch)[0]
        return cache[components]


@torch.no_grad()
def fit_pixel_prior(generator: Any, components: int = DEFAULT_COMPONENTS, *, n: int = PRIOR_SAMPLES, seed: int = 0,
                    batch: int = 128) -> tuple[PixelPrior, torch.Tensor]:
    """The prior of n generated images, and the first `PROBES` of their latents [PROBES, d]."""
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
    return PixelPrior(mean.numpy(), basis.numpy(), variance.numpy()), z[:PROBES].clone()


def save_pixel_prior(prior: PixelPrior, generator: Any, probes: torch.Tensor, path: str | Path, *,
                     info: dict[str, Any] | None = None) -> Path:
    """PATH.safetensors: mean and variance (float32), basis (float16: half the size, and the prior
    needs no more) and the generator's images of `probes`, which `load_pixel_prior` checks."""
    with torch.no_grad():
        images = generator.generate(probes).flatten(1).float()
    tensors = {"mean": torch.from_numpy(prior.mean).float(), "basis": torch.from_numpy(prior.basis).half(),
               "variance": torch.from_numpy(prior.variance).float(), "probe_latents": probes.float(),
               "probe_images": images}
    return save_weights(path, tensors, format=FORMAT, metadata={"info": json.dumps(info or {})}, sidecar=False)


def load_pixel_prior(path: str | Path, generator: Any) -> PixelPrior:
    """Strict load of `save_pixel_prior` output for `generator`: WeightFileError if the shapes do not
    fit it or its images of the probe latents differ (another or a retrained generator)."""
    t = load_weights(path, format=FORMAT, kind="pixel prior", require_config=False).tensors
    names = {"mean", "basis", "variance", "probe_latents", "probe_images"}
    if set(t) != names:
        raise WeightFileError(f"{path}: a pixel prior file needs tensors {sorted(names)}, has {sorted(t)}")
    mean, basis, variance = t["mean"].double(), t["basis"].double(), t["variance"].double()
    pixels = generator.channels * generator.resolution ** 2
    if mean.shape != (pixels,) or basis.dim() != 2 or basis.shape[0] != pixels or variance.shape != basis.shape[1:] \
            or t["probe_latents"].shape[1:] != (generator.latent_dim,) \
            or t["probe_images"].shape != (len(t["probe_latents"]), pixels):
        raise WeightFileError(f"{path}: shapes do not fit a generator of {pixels} pixels and latent size "
                              f"{generator.latent_dim}")
    if not all(torch.isfinite(v).all() for v in t.values()) or (variance <= 0).any():
        raise WeightFileError(f"{path}: non-finite values or non-positive variances")
    with torch.no_grad():
        images = generator.generate(t["probe_latents"].float()).flatten(1).float()
    if (images - t["probe_images"]).abs().max() > 1e-3:
        raise WeightFileError(f"{path}: made for another generator (its probe images differ)")
    return PixelPrior(mean.numpy(), basis.numpy(), variance.numpy())


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
                 strength: float = 1.0, options: ChoiceOptions = ChoiceOptions(),
                 image: ImageOptions = ImageOptions()):
        self.space, self.k, self.prior, self.image = int(dim), k, prior, image
        self.render, self.invert = render, invert
        self.rng = np.random.RandomState(seed)
        self.start = None if u0 is None else np.asarray(u0, dtype=np.float64).copy()
        prior_mean = np.zeros(prior.components) if u0 is None else self._features(render(self.start[None]))[0][0]
        self._init_model(prior_mean, prior.variance, options)
        self.strength = float(strength)
        self.incumbent = np.zeros(self.space) if u0 is None else self.start.copy()
        self.pending: np.ndarray | None = None
        self._pending_images: np.ndarray | None = None  # [k, P] renders of `pending` when the pool made them
        self.seed = int(seed)
        self.sigma = 0.5  # of the `local` steps around the current choice (latent units, x strength)
        self._wins = (0, 0)  # picks of (local steps, model proposals) so far
        self._eps: np.ndarray | None = None  # this round's draws: [k, r] targets, or [k, m] prior latents in round 0
        self._shown: list[np.ndarray] = []  # the latents shown in each told round (aligned with self.events)

    def _features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centered = np.asarray(images, dtype=np.float64) - self.prior.mean
        return centered @ self.prior.basis, (centered ** 2).sum(1)

    def _draw(self) -> np.ndarray:
        if self._eps is None:
            first_random = not self.events and self.start is None
            self._eps = self.rng.randn(self.k, self.space if first_random else self.dim)
        return self._eps

    def ask(self) -> np.ndarray:
        """[k, m] candidates of the current round (computed once, then cached until told)."""
        eps = self._draw()
        if self.pending is None:
            self._pending_images = None
            if not self.events and self.start is None:  # round 0: k latents of the prior
                self.pending = eps.copy()
            else:
                a = self._posterior_draws(eps, self.strength, True)
                keep = self.image.keep_current and bool(self.events) and not self.image.pool
                local = self._local_rows() if keep else 0
                # with keep_current, row 0 is the current choice and rows 1..local steps around it:
                # only the other draws are inverted
                drawn = a[1 + local:] if keep else a
                proposals = self.invert(self.prior.mean + drawn @ self.prior.basis.T, self._nearest_shown(drawn))
                if keep:
                    rng = np.random.RandomState([self.seed, len(self.events)])
                    steps = self.strength * self.sigma * rng.randn(local, self.space)
                    proposals = np.concatenate([self.incumbent[None], self.incumbent[None] + steps, proposals])
                self.pending = proposals
                if self.image.pool and self.events:
                    self.pending, self._pending_images = self._from_pool(a, self.pending)
                if not self.events:  # the warm start itself leads round 0
                    self.pending[0] = self.start
                elif self.image.keep_current:  # the current choice stays on screen: a wrong pick is cheap to undo
                    self.pending[0] = self.incumbent
        return self.pending

    def _local_rows(self) -> int:
        """How many of this round's rows (after the current choice) are local steps."""
        if not self.image.adaptive:
            return min(self.image.local, self.k - 2)
        local_wins, model_wins = self._wins
        share = (local_wins + 1) / (local_wins + model_wins + 2)
        return int(min(self.k - 2, max(1, round((self.k - 2) * share))))

    def set_strength(self, strength: float) -> None:
        super().set_strength(strength)
        self._pending_images = None

    def _from_pool(self, a: np.ndarray, guesses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([k, m] latents, [k, P] their images): for each target mean + B a (row 0 the mode), the
        nearest image not taken yet among the pool: the guesses, then Gaussian steps around the
        current choice and around the mode's guess (this round's own seed: replay draws the same)."""
        rng = np.random.RandomState([self.seed, len(self.events)])
        extra = max(0, self.image.pool - len(guesses))
        centers = np.where((np.arange(extra) % 2 == 0)[:, None], self.incumbent[None], guesses[:1])
        steps = self.strength * self.image.pool_step * np.exp(rng.uniform(np.log(0.1), 0, size=(extra, 1)))
        pool = np.concatenate([guesses, centers + steps * rng.randn(extra, self.space)])
        images = self.render(pool)
        f, sq = self._features(images)
        cost = sq[None] - 2 * a @ f.T  # [k, pool]: ||x - t||^2 up to a constant per target
        chosen: list[int] = []
        if self.image.keep_current:  # candidate 0 is the current choice (set by the caller); not in the pool
            chosen.append(-1)
        for row in cost[len(chosen):]:
            row = row.copy()
            row[[c for c in chosen if c >= 0]] = np.inf
            chosen.append(int(np.argmin(row)))
        latents = np.stack([self.incumbent if c < 0 else pool[c] for c in chosen])
        shown = np.stack([self.render(self.incumbent[None])[0] if c < 0 else images[c] for c in chosen])
        return latents, shown

    def _nearest_shown(self, a: np.ndarray) -> np.ndarray:
        """[k, m]: for each target mean + B a, the latent of the shown candidate whose image is nearest
        to it (||x - t||^2 = ||x - mean||^2 - 2 f.a + ||a||^2, from the recorded features; no rendering)."""
        if not self.image.warm_from_shown or not self._shown:
            return np.repeat(self.incumbent[None], len(a), axis=0)
        f = np.concatenate([event[0] for event in self.events])
        sq = np.concatenate([event[1] for event in self.events])
        return np.concatenate(self._shown)[np.argmin(sq[None] - 2 * a @ f.T, axis=1)]

    def offer(self, candidates: np.ndarray) -> None:
        """Take [k, m] as this round's candidates: the ones it proposed before, for an undo (its
        random draws for the round are made as usual, so later rounds replay the same)."""
        self._draw()
        self.pending, self._pending_images = np.asarray(candidates, dtype=np.float64).copy(), None

    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        """Learn from the order given; `shown` [k, m] replays a round from its candidates."""
        self._draw()
        candidates = self.ask() if shown is None else np.asarray(shown, dtype=np.float64)
        cached = self._pending_images if shown is None else None  # the pool's renders of them
        images = self.render(candidates) if cached is None else cached
        f, sq = self._features(images)
        if self.events and self.image.keep_current:  # the step size of the `local` candidates
            self.sigma = min(2.0, self.sigma * 1.25) if order[0] != 0 else max(0.02, self.sigma * 0.7)
            if order[0] != 0 and not self.image.pool:  # which kind of proposal was picked
                local = order[0] <= self._local_rows()
                self._wins = (self._wins[0] + local, self._wins[1] + (not local))
        self.incumbent = candidates[order[0]].copy()
        self._record(f, sq, mean_pairwise_sq(images), order)
        self._shown.append(candidates.copy())
        self.pending, self._eps, self._pending_images = None, None, None


class RenderCache:
    """The latest renders by latent (its float32 bytes), shared by every bridge of one search: undo
    and branching replay the rounds' shown candidates, whose renders were most of a replay's time
    (19 rounds of 9 on faces64: 0.47 of 0.56 s). Bounded to `size` latents, oldest out first."""

    def __init__(self, size: int = 512):
        self.size, self._rows = size, {}

    def render(self, z: torch.Tensor, generate: Callable[[torch.Tensor], np.ndarray]) -> np.ndarray:
        if not len(z):
            return generate(z)
        keys = [row.numpy().tobytes() for row in z]
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            fresh = generate(z[missing])
            for i, row in zip(missing, fresh):
                self._rows[keys[i]] = row
            while len(self._rows) > self.size:
                self._rows.pop(next(iter(self._rows)))
        return np.stack([self._rows[key] for key in keys])


def generator_bridge(generator: Any, *, offset: torch.Tensor, basis: torch.Tensor | None, encoder: Any = None,
                     options: ImageOptions = ImageOptions(), prior: PixelPrior | None = None,
                     cache: RenderCache | None = None):
    """`render` and `invert` for `ImageBayesDriver` on coordinates u (z = offset + u @ basis): invert
    starts each target from the inversion encoder's guess, or (`options.warm_from_shown`) from
    whichever of it and u_init (the driver's nearest shown candidate) has the lower loss, and takes
    `options.steps` Adam steps on that loss: the pixel MSE (in `prior`'s principal directions only
    when `options.projected`) plus the latent prior ((mean z^2) - 1)^2; `options.typical` rescales
    the results onto the shell |z|^2 = d."""
    pinv = None if basis is None else torch.linalg.pinv(basis.double()).float()
    steps, lr, prior_weight = options.steps, options.lr, options.prior_weight
    if options.projected and prior is None:
        raise ValueError("a projected inversion needs the pixel prior")
    proj = torch.from_numpy(prior.basis).float() if options.projected else None  # [P, r]
    proj_mean = torch.from_numpy(prior.mean).float() if options.projected else None

    def to_z(u: torch.Tensor) -> torch.Tensor:
        return offset + (u if basis is None else u @ basis)

    def generate(z: torch.Tensor) -> np.ndarray:
        return generator.generate(z).flatten(1).double().numpy()

    @torch.no_grad()
    def render(u: np.ndarray) -> np.ndarray:
        z = to_z(torch.as_tensor(u, dtype=torch.float32))
        return generate(z) if cache is None else cache.render(z.cpu(), generate)

    def invert(images: np.ndarray, u_init: np.ndarray) -> np.ndarray:
        target = torch.as_tensor(images, dtype=torch.float32)

        target_c = None if proj is None else (target - proj_mean) @ proj  # [n, r]

        def loss_of(u: torch.Tensor) -> torch.Tensor:
            z = to_z(u)
            x = generator.generate(z).flatten(1)
            fit = (x - target).pow(2).mean(1) if proj is None else \
                ((x - proj_mean) @ proj - target_c).pow(2).sum(1) / x.shape[1]
            return fit + prior_weight * (z.pow(2).mean(1) - 1).pow(2)

        u = torch.as_tensor(u_init, dtype=torch.float32)
        if encoder is not None:
            with torch.no_grad():
                shape = (len(target), generator.channels, generator.resolution, generator.resolution)
                z0 = encoder(target.view(shape).clamp(-1, 1))
                guess = z0 - offset if pinv is None else (z0 - offset) @ pinv
                if options.warm_from_shown:  # per target, the better start of the two
                    u = torch.where((loss_of(guess) <= loss_of(u))[:, None], guess, u)
                else:
                    u = guess
        u = u.clone().requires_grad_(True)
        opt = Adam(u, lr=lr, betas=(0.9, 0.99))  # torch.optim's update without its torch._dynamo import
        for _ in range(steps):
            (grad,) = torch.autograd.grad(loss_of(u).sum(), u)
            opt.step(u, grad)
        u = u.detach()
        if options.typical:  # onto the shell |z|^2 = d, in the search's coordinates
            z = to_z(u)
            z = z * (z.shape[1] ** 0.5 / z.norm(dim=1, keepdim=True).clamp_min(1e-12))
            u = z - offset if pinv is None else (z - offset) @ pinv
        return u.double().numpy()

    return render, invert


__all__ = ["ImageOptions", "ImageBayesDriver", "PixelPrior", "pixel_prior", "fit_pixel_prior", "save_pixel_prior",
           "load_pixel_prior", "generator_bridge", "RenderCache", "DEFAULT_COMPONENTS"]
