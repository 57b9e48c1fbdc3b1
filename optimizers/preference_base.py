"""The protocol every comparison-only driver behind `PreferenceSearch` implements, and what a
search is handed besides the generator.

A driver proposes k coordinate vectors u per round and learns only from the order the person gives
(a pick is an order of length 1). `PreferenceSearch` calls exactly the methods below, and reads the
two capabilities as plain class attributes: a driver says what it can do, nothing is guessed.

`SearchAssets` holds a model's data that its searches can use (inversion encoder, latent metric,
pixel prior). The optimizer layer never looks a file up by model id: the studio loads them
(`studio.shipped.search_assets`) and passes them in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch

    from .preference_image import PixelPrior


@dataclass(frozen=True, eq=False)  # tensors inside: compared by identity
class SearchAssets:
    """What a model's preference searches can use besides the generator; each None when absent.

    Only a driver named with a model id uses them ("bayes:<id>" the metric, "bayes-image:<id>" the
    encoder and the prior); plain "bayes" / "bayes-image" use none, so a saved state replays the same
    whatever a model ships since.
    """

    encoder: Any = None  # inversion encoder: images [N, C, R, R] -> latents [N, d] (bayes-image's guesses)
    metric: "torch.Tensor | None" = None  # latent metric [d, d] of "bayes:<id>"
    prior: "PixelPrior | None" = None  # pixel prior of "bayes-image:<id>" (computed when None or too small)


class Driver:
    """Base of every preference driver (`optimizers.preference_drivers.DRIVERS` and nevergrad's)."""

    # the driver proposes round 0 itself and spreads its proposals by `strength` (set_strength);
    # otherwise the search shows k random latents first and scales the driver's steps itself
    plans_first_round: ClassVar[bool] = False
    # proposals are slow to make (bayes-image inverts them): the search saves the shown candidates,
    # and replay (undo, loading) passes them back with tell(order, shown=...) and offer(...)
    replays_shown: ClassVar[bool] = False

    incumbent: np.ndarray  # [m] u of the latest choice

    def ask(self) -> np.ndarray:
        """[k, m] candidates of the current round; the same until told."""
        raise NotImplementedError

    def tell(self, order: tuple[int, ...], shown: np.ndarray | None = None) -> None:
        """Learn from the order given (candidate indices, best first). `shown` [k, m]: the round's
        candidates as they were shown (replay); only a driver that `replays_shown` takes it."""
        raise NotImplementedError

    def set_strength(self, strength: float) -> None:
        """The spread of the next proposals; only called on a driver that `plans_first_round`
        (the search re-anchors the others at the current choice and scales their steps)."""
        raise NotImplementedError(f"{type(self).__name__} does not set its own strength")

    def offer(self, candidates: np.ndarray) -> None:
        """Take [k, m] as this round's candidates (an undo gives back the ones it proposed before);
        only called on a driver that `replays_shown`."""
        raise NotImplementedError(f"{type(self).__name__} does not take offered candidates")

    def _no_shown(self, shown: np.ndarray | None) -> None:
        if shown is not None:
            raise ValueError(f"{type(self).__name__} replays by proposing again; it takes no shown candidates")


__all__ = ["Driver", "SearchAssets"]
