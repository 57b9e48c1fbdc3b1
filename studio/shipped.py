"""A model's dependent files, looked up by model id and loaded: what the studio hands the optimizers.

The optimizer layer never looks a file up itself; it is given objects. This module is where the
studio turns a model id (a catalog id, an id the catalog gave a user's model file, or a model file
path; see `assetpaths.find`: assets/ for the shipped models, PATH's folder/<stem>.studio/ for a
user's) into them, with the optimizer layer's format loaders, each loaded once per process:

    search_assets(model_id, generator)   # -> optimizers.SearchAssets for PreferenceSearch(assets=...)
    optimizer_assets("bayes:faces64", G) # what that driver uses of the model it names (none: empty)
    shipped_encoder(model_id, device=)   # the inversion encoder (Inspire's start, bayes-image's guesses)
    shipped_metric(model_id)             # the latent metric [d, d] of "bayes:<id>"
    shipped_pixel_prior(model_id, G)     # the pixel prior of "bayes-image:<id>", if it is G's
    shipped_subspace(model_id)           # the image directions (Compose's subspace)
    shipped_inversion(model_id)          # the inversion encoder's file
"""
from __future__ import annotations

import functools
import logging
import threading
import weakref
from pathlib import Path
from typing import Any

import torch

import assetpaths
from optimizers.inversion import InversionEncoder, load_inversion
from optimizers.metric import load_metric
from optimizers.preference_base import SearchAssets
from optimizers.preference_drivers import DriverOptions
from optimizers.preference_image import PixelPrior, load_pixel_prior
from optimizers.subspace import Subspace, load_subspace
from weightfile import WeightFileError

log = logging.getLogger(__name__)


def shipped_inversion(model: str | Path) -> Path | None:
    """The model's inversion encoder file (assets/inversion/<model id>.safetensors, or the one
    trained for a user's model beside it), else None."""
    return assetpaths.find("inversion", model)


def shipped_encoder(model: str | Path, *, device: str | torch.device | None = None) -> InversionEncoder | None:
    """The model's inversion encoder (eval mode, frozen), loaded once per process and device (again
    when its file changes), or None without one."""
    path = shipped_inversion(model)
    return None if path is None else _load_encoder(path, path.stat().st_mtime_ns, str(device or "cpu"))


@functools.lru_cache(maxsize=8)
def _load_encoder(path: Path, _mtime: int, device: str) -> InversionEncoder:
    return load_inversion(path, device=device)


def shipped_metric(model_id: str) -> torch.Tensor | None:
    """The model's latent metric [d, d] (assets/preference/<model id>-metric.safetensors, or the one
    made for a user's model beside it; loaded once per process, a copy each call), or None without
    one. Only a model id is looked up, never a path."""
    if not assetpaths.MODEL_ID.fullmatch(model_id):
        return None
    path = assetpaths.find("metric", model_id)
    return None if path is None else _load_metric(path).clone()


@functools.lru_cache(maxsize=16)
def _load_metric(path: Path) -> torch.Tensor:
    return load_metric(path)


_PRIORS: "weakref.WeakKeyDictionary[Any, dict[Path, PixelPrior | None]]" = weakref.WeakKeyDictionary()
_PRIOR_LOCK = threading.Lock()


def shipped_pixel_prior(model_id: str, generator: Any) -> PixelPrior | None:
    """The model's pixel prior (assets/preference/<model id>-pixels.safetensors, or the one made for
    a user's model beside it) if it is this very generator's (loaded once per generator object); a
    stale or broken file is logged and ignored (None: the search computes the prior instead)."""
    if not assetpaths.MODEL_ID.fullmatch(model_id):
        return None
    path = assetpaths.find("pixels", model_id)
    if path is None:
        return None
    with _PRIOR_LOCK:
        try:
            cache = _PRIORS.setdefault(generator, {})
        except TypeError:  # not weak-referenceable: not cached
            cache = {}
        if path not in cache:
            try:
                cache[path] = load_pixel_prior(path, generator)
            except WeightFileError as e:
                log.warning("ignoring the shipped pixel prior: %s", e)
                cache[path] = None
        return cache[path]


def shipped_subspace(model: str | Path) -> Subspace | None:
    """The model's image directions (assets/inversion/<model id>-directions.safetensors, or those
    made for a user's model beside it), or None without them."""
    path = assetpaths.find("directions", model)
    return None if path is None else load_subspace(path)


def search_assets(model_id: str, generator: Any = None) -> SearchAssets:
    """What the model's preference searches can use: its inversion encoder (CPU), latent metric and,
    given its generator, pixel prior; each None where the model has none."""
    prior = None if generator is None else shipped_pixel_prior(model_id, generator)
    return SearchAssets(encoder=shipped_encoder(model_id), metric=shipped_metric(model_id), prior=prior)


def optimizer_assets(optimizer: str | DriverOptions | None, generator: Any = None) -> SearchAssets:
    """What a preference optimizer uses of the model it names, for `PreferenceSearch(optimizer=...,
    assets=...)`: "bayes:<id>" its latent metric, "bayes-image:<id>" its inversion encoder and (given
    the generator) pixel prior; empty for a name without a model, so nothing else is loaded."""
    if optimizer is None:
        return SearchAssets()
    options = optimizer if isinstance(optimizer, DriverOptions) else DriverOptions.parse(optimizer)
    if options.model is None:
        return SearchAssets()
    if options.driver == "bayes":
        return SearchAssets(metric=shipped_metric(options.model))
    prior = None if generator is None else shipped_pixel_prior(options.model, generator)
    return SearchAssets(encoder=shipped_encoder(options.model), prior=prior)


__all__ = ["search_assets", "optimizer_assets", "shipped_inversion", "shipped_encoder", "shipped_metric",
           "shipped_pixel_prior", "shipped_subspace"]
