"""The inspirational-generation loss (Bontrager/Riviere et al., pytorch_GAN_zoo's
`gradientDescentOnInput`): weighted distance(G(z), target) + latent prior + realism penalty.

    loss(z) = w_distance * distance(G(z), target)     # feature or pixel distance, [N]
            + w_prior    * ((z ** 2).mean(1) - 1) ** 2  # keeps z on the Gaussian's shell
            + w_realism  * -D(G(z)) / realism_unit      # discriminator score, higher = more real

Every term is returned separately (unweighted) next to the weighted total, so the UI can show them
and each weight can be changed. `realism_unit` is 1 in the reference; discriminators differ in
scale (the shipped textures64 D spreads ~10x wider than faces64's), so the studio passes
`realism_spread(generator)` to make a realism weight mean the same for every model (see there).
`distance` is any callable (images [N,C,H,W], target [1,C,H,W]) ->
[N]; this package never imports `encoders` (the studio layer passes an encoders.Distance in).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn as nn

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class GeneratorLike(Protocol):
    latent_dim: int
    resolution: int
    channels: int

    def generate(self, z: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Weights:
    """Weight of each loss term; the reference's defaults (distance 1, prior 1, realism 0.03)."""

    distance: float = 1.0
    prior: float = 1.0
    realism: float = 0.03

    def __post_init__(self) -> None:
        for name in ("distance", "prior", "realism"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"weight {name!r} must be a finite number >= 0, got {value!r}")


def pixel_distance(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel difference per image: [N, C, H, W] vs [1, C, H, W] -> [N]."""
    if images.dim() != 4 or target.dim() != 4 or target.shape[0] != 1 or images.shape[1:] != target.shape[1:]:
        raise ValueError(f"pixel distance needs images [N, C, H, W] and a target [1, C, H, W] of the same "
                         f"size, got {list(images.shape)} and {list(target.shape)}")
    return (images - target).pow(2).flatten(1).mean(dim=1)


def latent_prior(z: torch.Tensor) -> torch.Tensor:
    """The reference's prior ((mean z^2) - 1)^2 per latent: [N, d] -> [N]."""
    return (z.pow(2).mean(dim=1) - 1.0).pow(2)


def independent_realism(generator: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The discriminator's score of each image on its own, [N, C, H, W] -> [N], or None.

    PGAN's discriminator has a minibatch-stddev layer, so scoring a batch couples its images: a
    restart's loss would depend on the other restarts. The reference optimises one image per
    target (stddev channel = 0); we score each image alone to keep exactly that loss, with vmap
    when the discriminator module is reachable and a loop over `realism` otherwise.
    """
    disc = getattr(generator, "discriminator", "absent")
    if isinstance(disc, nn.Module):
        def score_one(image: torch.Tensor) -> torch.Tensor:
            return disc(image[None])[0, 0]
        def scores(images: torch.Tensor) -> torch.Tensor:
            if len(images) == 1:  # alone in its batch already; vmap would run D's convs on a slow path
                return disc(images)[:, 0]
            return torch.func.vmap(score_one)(images) if len(images) else images.new_zeros(0)
        return scores
    if disc is None or not callable(getattr(generator, "realism", None)):
        return None
    return lambda images: torch.stack([generator.realism(im[None])[0] for im in images])


STUDIO_REALISM = 0.02  # the studio's realism weight, on D in units of realism_spread (see there)


def default_realism(generator: Any) -> float:
    """The realism weight Inspire starts from for this generator (in units of `realism_spread`).

    A model's sidecar may set it (`"inspire": {"realism": w}` in its .json: how hard its D should
    pull is a property of that GAN, measured with `benchmarks/realism_judge.py`); any other model,
    an imported zoo checkpoint included, gets `STUDIO_REALISM`. 0 without a discriminator.
    """
    if independent_realism(generator) is None:
        return 0.0
    value = realism_setting(getattr(generator, "info", None))
    return STUDIO_REALISM if value is None else value


def realism_setting(info: Any) -> float | None:
    """A sidecar's own Inspire realism weight (`info["inspire"]["realism"]`, a number >= 0), or None."""
    value = (info.get("inspire") or {}).get("realism") if isinstance(info, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def spread_unit(generator: Any, *, needed: bool = True) -> float:
    """The studio's unit of D's score: `realism_spread` when a realism term needs it (about 1 s), else
    (or without a discriminator) 1."""
    return (realism_spread(generator) or 1.0) if needed else 1.0


def spread_samples(resolution: int | None) -> int:
    """Samples `realism_spread` scores by default: 128 up to 64 px, fewer for larger images (16 from
    256 px: D on 128 images of the celebAHQ-256 architecture took minutes on 2 CPU cores), a
    standard error of about 1/sqrt(2n) on the unit (18% at 16; the weight is a soft regulariser)."""
    r = int(resolution or 64)
    return max(16, min(128, 128 * 64 * 64 // (r * r)))


def realism_spread(generator: Any, *, samples: int | None = None, seed: int = 0) -> float | None:
    """Standard deviation of the discriminator's scores of the generator's own images (fixed latents),
    or None without a discriminator: the unit of the studio's realism weight.

    The reference's realism weight 0.03 assumes some scale of D's output, and each GAN's D has its
    own: this spread is 0.76 for faces64, 1.46 for fashion32 and 7.03 for textures64 (over 256
    held-out real images 0.82, 1.48 and 8.57, so the model's samples stand in for data that need
    not ship). In raw units the reference's 0.03 outweighed the pixel distance on textures64, where
    Inspire ended on colour fields that D scores far above any real texture. The studio's weight
    `STUDIO_REALISM` = 0.02 in these units is 0.026 in raw units on faces64 (on faces64 v3, raw 0.03
    lifted results above every real face's D score, and 0.03 in units cost ~20% pixel MSE with no
    visible gain), 0.014 on fashion32 and 0.003 on textures64 (`benchmarks/realism_unit.py`).
    """
    score = independent_realism(generator)
    if score is None:
        return None
    own = getattr(generator, "realism", None)
    if callable(own):  # one image per call, without gradient: independent scores, and PGAN's bfloat16
        # copy of D where it has one (the same values as vmap's in float32, within 1e-5)
        def score(images: torch.Tensor) -> torch.Tensor:
            return torch.cat([own(im[None]) for im in images]) if len(images) else images.new_zeros(0)
    samples = spread_samples(getattr(generator, "resolution", None)) if samples is None else samples
    z = torch.randn(samples, int(generator.latent_dim), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        scores = torch.cat([score(generator.generate(part.to(getattr(generator, "device", "cpu"))))
                            for part in z.split(32)])
    spread = float(scores.float().std())
    return spread if math.isfinite(spread) and spread > 0 else None


class LinearizedRealism:
    """The realism term evaluated every `every`-th call and linearized in between, for gradient search.

    D's forward and backward are ~40% of an Inspire step on faces64 (docs/benchmarks/realtime_inspire.md)
    for a term weighted 0.01. On a refresh call this runs D on the images and keeps its score r0 and
    its gradient g = dr/dx at those images x0 (the term and its gradient are then exact); on the
    calls in between the term is r0 + <g, x - x0>, whose gradient is g: G's backward carries it at no
    extra cost. A new batch shape (restarts pruned) refreshes; `exact` says whether the last call ran D.
    """

    def __init__(self, every: int):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"realism_every must be an integer >= 1, got {every!r}")
        self.every, self.calls = every, 0
        self.exact = True  # whether the last call ran D (its term exact) or linearized it
        self._x: torch.Tensor | None = None
        self._r = self._g = None

    def __call__(self, score: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """`score(images)` [N] (exactly on a refresh, else its linearization), differentiable in images."""
        self.exact = self._x is None or self._x.shape != images.shape or self.calls % self.every == 0
        if self.exact:
            x = images.detach().requires_grad_(True)
            with torch.enable_grad():
                r = score(x)
            (self._g,) = torch.autograd.grad(r.sum(), x)
            self._x, self._r = x.detach(), r.detach()
        self.calls += 1
        return self._r + ((images - self._x) * self._g).flatten(1).sum(dim=1)


class Objective:
    """`objective(z [N, d]) -> (loss [N], terms)`, differentiable when z requires grad.

    `terms` maps "distance", "prior" and (when its weight is > 0 and the generator has a
    discriminator) "realism" to unweighted [N] tensors; the loss is their weighted sum. The realism
    term is -D(G(z)) / realism_unit (1: the reference's raw score).
    """

    def __init__(self, generator: GeneratorLike, target: torch.Tensor, *, distance: DistanceFn | None = None,
                 weights: Weights = Weights(), realism_unit: float = 1.0):
        if not isinstance(weights, Weights):
            raise TypeError(f"weights must be optimizers.Weights, got {type(weights).__name__}")
        if isinstance(realism_unit, bool) or not isinstance(realism_unit, (int, float)) or \
                not (math.isfinite(realism_unit) and realism_unit > 0):
            raise ValueError(f"realism_unit must be a positive number, got {realism_unit!r}")
        self.realism_unit = float(realism_unit)
        target = torch.as_tensor(target, dtype=torch.float32)
        if target.dim() == 3:
            target = target[None]
        if target.dim() != 4 or target.shape[0] != 1:
            raise ValueError(f"target must be one image [1, C, H, W], got {list(target.shape)}")
        if not torch.isfinite(target).all():
            raise ValueError("target image contains NaN or inf")
        self.generator = generator
        self.device = getattr(generator, "device", torch.device("cpu"))
        self.target = target.to(self.device)
        self.weights = weights
        self.distance = distance or pixel_distance
        expected = (generator.channels, generator.resolution, generator.resolution)
        if distance is None and tuple(target.shape[1:]) != expected:
            raise ValueError(f"the pixel distance needs a target of shape [1, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}] (the generator's images), got {list(target.shape)}")
        self._realism = independent_realism(generator) if weights.realism > 0 else None

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    def with_weights(self, weights: Weights) -> "Objective":
        """The same generator, target and distance under other weights."""
        return Objective(self.generator, self.target, distance=self.distance, weights=weights,
                         realism_unit=self.realism_unit)

    def __call__(self, z: torch.Tensor, *, realism: LinearizedRealism | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`realism`: a `LinearizedRealism` that stands in for D on the calls it does not refresh
        (only where the images carry gradients; otherwise D scores them exactly)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents [N, {self.latent_dim}], got {list(z.shape)}")
        z = z.to(self.device, torch.float32)
        images = self.generator.generate(z)  # [N, C, H, W] in about [-1, 1]
        terms = {"distance": self.distance(images, self.target), "prior": latent_prior(z)}
        if self._realism is not None:
            def score(x: torch.Tensor) -> torch.Tensor:
                return -self._realism(x) / self.realism_unit
            lazy = realism is not None and images.requires_grad
            terms["realism"] = realism(score, images) if lazy else score(images)
        w = self.weights
        loss = w.distance * terms["distance"] + w.prior * terms["prior"]
        if "realism" in terms:
            loss = loss + w.realism * terms["realism"]
        return loss, terms

    def breakdown(self, z: torch.Tensor) -> dict[str, float]:
        """Loss and every term of one latent [d] or [1, d] as floats, with the distance's own named
        terms ("distance/pixel", ...) when the distance has a `.terms(images, target)` method."""
        z = z.reshape(1, -1).detach()
        with torch.no_grad():
            loss, terms = self(z)
            out = {"loss": float(loss[0]), **{k: float(v[0]) for k, v in terms.items()}}
            parts = getattr(self.distance, "terms", None)
            if callable(parts):
                images = self.generator.generate(z.to(self.device))
                out.update({f"distance/{k}": float(torch.as_tensor(v).reshape(-1)[0])
                            for k, v in parts(images, self.target).items()})
        return out


__all__ = ["Weights", "Objective", "LinearizedRealism", "pixel_distance", "latent_prior", "independent_realism",
           "realism_spread", "spread_unit", "default_realism", "realism_setting", "STUDIO_REALISM", "DistanceFn"]
