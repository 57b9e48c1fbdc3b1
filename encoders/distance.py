"""`Distance`: a weighted sum of normalised terms (`pixel` and any encoders) between a batch of
images and one target image, differentiable with respect to the images.

Each term is divided by its median over random pairs of real images, so a term of 1.0 means "as
far apart as two random real images" whatever the term, and weights mean the same across terms.
Encoders carry that median (measured on their training data by `calibrate`); `reference_images`
re-measures every term on images the caller gives (e.g. the generator's training data).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .backbone import Encoder, adapt_images
from .io import load_encoder

PIXEL = "pixel"
# Median pixel MSE between random pairs when nothing better is known (faces and Fashion-MNIST
# both measure about 0.5 in [-1, 1] space); replaced by encoders' or reference images' medians.
DEFAULT_PIXEL_MEDIAN = 0.5


def pixel_term(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[N] mean squared error in [-1, 1] space; target [1, C, H, W] already matches the images."""
    return (images - target).pow(2).flatten(1).mean(1)


def feature_term(encoder: Encoder, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[N] mean squared difference of features, each dimension divided by its std on real data."""
    f = encoder(images) / encoder.feature_std
    t = encoder(target) / encoder.feature_std
    return (f - t).pow(2).mean(1)


def random_pairs(n: int, pairs: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`pairs` random index pairs (i, j), i != j, from a seeded generator."""
    if n < 2:
        raise ValueError(f"need at least 2 reference images to measure a median, got {n}")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (pairs,), generator=g)
    j = (i + torch.randint(1, n, (pairs,), generator=g)) % n
    return i, j


@torch.no_grad()
def pair_median(term, images: torch.Tensor, *, pairs: int = 512, seed: int = 0) -> float:
    """Median of `term(a, b)` over random pairs of distinct images (the normaliser)."""
    i, j = random_pairs(len(images), pairs, seed=seed)
    values = torch.cat([term(images[a:a + 1], images[b:b + 1]) for a, b in zip(i.tolist(), j.tolist())])
    return float(values.median().clamp_min(1e-12))


@torch.no_grad()
def calibrate(encoder: Encoder, images: torch.Tensor, *, pairs: int = 512, seed: int = 0,
              batch_size: int = 256) -> dict[str, float]:
    """Set `feature_std` and `pair_median` from real images [N, C, H, W]; returns the medians."""
    was_training = encoder.training
    encoder.eval()
    feats = torch.cat([encoder(b) for b in images.split(batch_size)])
    encoder.feature_std.copy_(feats.std(0).clamp_min(1e-6))
    f = feats / encoder.feature_std
    i, j = random_pairs(len(images), pairs, seed=seed)
    encoder.pair_median.fill_(float((f[i] - f[j]).pow(2).mean(1).median().clamp_min(1e-12)))
    pixel = float(pixel_term(images[i], images[j]).median())
    encoder.info["pixel_pair_median"] = pixel
    encoder.train(was_training)
    return {"pair_median": float(encoder.pair_median), "pixel_pair_median": pixel}


class Distance(nn.Module):
    """`distance(images [N, C, H, W], target [1, C', H', W']) -> [N]`, a weighted sum of terms.

    `weights` maps term names to weights: `pixel`, and encoder names, found in `encoders` or else
    loaded as shipped encoder ids or weight files (`{"faces64-vicreg": 0.5}`). The target is
    converted to the images' channels and resolution, so any generator's images can be scored
    against any uploaded image.
    """

    def __init__(self, weights: Mapping[str, float], *, encoders: Mapping[str, Encoder] | None = None,
                 reference_images: torch.Tensor | None = None, pairs: int = 512, seed: int = 0):
        super().__init__()
        if not weights:
            raise ValueError("a distance needs at least one term, e.g. {'pixel': 1.0}")
        bad = {k: v for k, v in weights.items() if not float(v) >= 0}
        if bad:
            raise ValueError(f"distance weights must be >= 0, got {bad}")
        self.weights = {k: float(v) for k, v in weights.items()}
        given = dict(encoders or {})
        self.encoders = nn.ModuleDict()
        for name in self.weights:
            if name != PIXEL:
                self.encoders[name] = given[name] if name in given else load_encoder(name)
        for e in self.encoders.values():
            e.eval().requires_grad_(False)
        self.medians: dict[str, float] = {name: float(e.pair_median) for name, e in self.encoders.items()}
        known = [e.info["pixel_pair_median"] for e in self.encoders.values() if "pixel_pair_median" in e.info]
        self.medians[PIXEL] = sum(known) / len(known) if known else DEFAULT_PIXEL_MEDIAN
        if reference_images is not None:
            self.medians.update(self.measure_medians(reference_images, pairs=pairs, seed=seed))

    def measure_medians(self, images: torch.Tensor, *, pairs: int = 512, seed: int = 0) -> dict[str, float]:
        """Raw (unnormalised) median of every term over random pairs of `images`."""
        return {name: pair_median(lambda a, b, n=name: self._raw(n, a, b), images, pairs=pairs, seed=seed)
                for name in self.weights}

    def _raw(self, name: str, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if name == PIXEL:
            return pixel_term(images, target)
        return feature_term(self.encoders[name], images, target)

    def terms(self, images: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each normalised term [N] (unweighted), by name."""
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got {list(images.shape)}")
        if target.dim() == 3:
            target = target[None]
        if target.dim() != 4 or len(target) != 1:
            raise ValueError(f"target must be one image [1, C, H, W], got {list(target.shape)}")
        target = adapt_images(target.to(images.device, images.dtype), channels=images.shape[1],
                              resolution=images.shape[-1]).detach()
        return {name: self._raw(name, images, target) / self.medians[name] for name in self.weights}

    def forward(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = self.terms(images, target)
        return sum(self.weights[name] * t for name, t in terms.items())
