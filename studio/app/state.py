"""What one browser tab holds between callbacks: its session plus what each gallery is showing.

One `UserState` per Gradio session (a `gr.State` made by a factory), so two browsers never share
anything. The `Session` is the plain, saveable part; the rest is runtime only (the latents behind
each visible grid, a running search to stop, the live preference search).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch

from studio.session import Session


@dataclass
class View:
    """The latents [n, d] behind a gallery and what each tile is, so a click maps back to a latent."""

    z: torch.Tensor | None = None
    kind: str = "seed"
    infos: list[dict[str, Any]] = field(default_factory=list)
    parent: int | None = None  # the node the tiles were made around (variations)

    def pick(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.z is None or not 0 <= index < len(self.z):
            raise IndexError(f"no image {index} on screen")
        return self.z[index], self.infos[index] if index < len(self.infos) else {}


@dataclass
class UserState:
    session: Session
    grid: View = field(default_factory=View)
    variations: View = field(default_factory=View)
    strip: View = field(default_factory=lambda: View(kind="interpolation"))
    variation_seed: int = 0
    ends: list[int | None] = field(default_factory=lambda: [None, None])  # node ids of A and B
    target: torch.Tensor | None = None  # the inspire target [1, C, R, R]
    target_path: str | None = None
    target_name: str = ""
    search: Any = None  # the running inspire search (has .cancel())
    search_timed_out: bool = False
    search_start: str = "inversion"  # where the running search began: "inversion" or "random" (closest of a few)
    inspired: int | None = None  # node id of the last inspiration result
    search_frames: list[torch.Tensor] = field(default_factory=list)  # best latent [d] per shown step
    compose: Any = None  # the live PreferenceSearch
    compose_round: int | None = None  # session round id of the latest finished round on this branch
    compose_parent: int | None = None  # node id of the latest choice (or the start point)
    compose_view: View = field(default_factory=lambda: View(kind="compose"))  # the candidates on screen
    compose_images: Any = None  # their images [k, C, H, W], reused for the ranking captions
    lineage_thumbs: dict[int, Any] = field(default_factory=dict)  # node id -> PIL thumbnail
    ranking: list[int] = field(default_factory=list)  # tile indices clicked so far in rank mode
    compose_pending: str | None = None  # start-only settings changed mid-composite (said in the status)
    kept_index: int | None = None  # selected tile in the gallery of kept images
    _lock: Any = None  # made on first use: a Lock cannot be deep-copied from gr.State's default

    def lock(self) -> threading.RLock:
        """Serialises one tab's callbacks (two quick clicks must not tell the same round twice)."""
        with _LOCKS_LOCK:
            if self._lock is None:
                self._lock = threading.RLock()  # re-entrant: callbacks call each other
            return self._lock

    def compose_best(self) -> int | None:
        """Node id of the composite so far: the latest choice, or the start point."""
        return self.compose_parent if self.compose is not None else None

    @classmethod
    def new(cls, model: str) -> "UserState":
        return cls(session=Session(model=model))

    def reset_model(self, model: str) -> None:
        """A new session on another model; the kept gallery (self-contained) stays."""
        kept = self.session.kept
        fresh = UserState.new(model)
        fresh.session.kept = kept
        fresh._lock = self._lock
        self.__dict__.update(fresh.__dict__)


_LOCKS_LOCK = threading.Lock()
