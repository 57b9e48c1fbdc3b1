"""The protocol every comparison-only driver behind `PreferenceSearch` implements.

A driver proposes k coordinate vectors u per round and learns only from the order the person gives
(a pick is an order of length 1). `PreferenceSearch` calls exactly the methods below, and reads the
two capabilities as plain class attributes: a driver says what it can do, nothing is guessed.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np


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


__all__ = ["Driver"]
