"""What every tab's callbacks share: the catalog, a scratch folder, and turning errors into messages."""
from __future__ import annotations

import contextlib
import functools
import html
import inspect
import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import torch

from generators.errors import CheckpointError
from studio.catalog import Catalog, UnknownModelError
from studio.display import PAGE_BUDGET_S, DisplayPlan, plan_display
from studio.imageio import ImageError
from studio.app.state import UserState
from studio.session import Node, SessionError

log = logging.getLogger("studio.app")
USER_ERRORS = (ImageError, SessionError, CheckpointError, UnknownModelError, ValueError, IndexError, KeyError)


@dataclass
class Limits:
    """Bounds that keep one user from starving the others on a small machine."""

    max_budget: int = 2000  # evaluations / gradient steps per search
    max_seconds: float = 120.0  # wall clock per search
    searches_at_once: int = 1  # heavy searches running at the same time (the rest wait in the queue)
    heavy_rounds_at_once: int = 1  # compose rounds that cost seconds (bayes-image) computing at the same time
    page_seconds: float = PAGE_BUDGET_S  # a large model whose full-size page takes longer shows previews
    queue_size: int = 64  # queued jobs beyond this are refused with a message (API clients queue
    # even the cheap events: gradio_client sends everything through the queue)


# Cheap events: through the queue, as every event: Gradio shows gr.Info/gr.Warning/gr.Error only for
# queued events (an unqueued one answers an error with a bare HTTP 500 and prints gr.Info in the
# server log), so a click off the queue could fail or succeed without a word on screen. No
# concurrency limit: they never wait behind a search or each other (gradio_client queues them anyway).
FAST = {"queue": True, "concurrency_limit": None, "show_progress": "hidden"}


@dataclass
class Ctx:
    catalog: Catalog
    limits: Limits = field(default_factory=Limits)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gan-studio-")))
    _cache: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _making: dict = field(default_factory=dict)  # key -> the lock of the one call making it
    _heavy: threading.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._heavy = threading.BoundedSemaphore(self.limits.heavy_rounds_at_once)

    @contextlib.contextmanager
    def heavy_round(self, heavy: bool):
        """Around work that is seconds of CPU when `heavy` (a bayes-image compose round): such work
        runs `limits.heavy_rounds_at_once` at a time, the rest waits. Compose events have no
        concurrency limit because most rounds take milliseconds; several inversion-backed rounds at
        once would only share the cores, each finishing later, and crowd out everyone's cheap clicks."""
        if not heavy:
            yield
            return
        with self._heavy:
            yield

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """Shared, lazily made objects (encoders, a large model's display plan); thread-safe, made
        once per key, and a slow `make` (a plan fits its preview head for seconds) holds up only the
        callers of that key."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            value = make()
            with self._lock:
                self._cache[key] = value
                self._making.pop(key, None)
            return value

    def model(self, model_id: str):
        """The generator (loaded on first use, then cached by the catalog)."""
        return self.catalog.generator(model_id)

    def latent_dim(self, model_id: str) -> int:
        e = self.catalog.get(model_id)
        return int(e.latent_dim) if e.latent_dim else self.model(model_id).latent_dim

    def latent_dims(self) -> dict[str, int]:
        return {i: self.latent_dim(i) for i in self.catalog.ids("generator")}

    def render(self, model_id: str, z: torch.Tensor) -> torch.Tensor:
        """[N, d] latents -> [N, C, H, W] images in [-1, 1]."""
        return self.model(model_id).generate(z).cpu()

    def display(self, model_id: str) -> DisplayPlan:
        """How this model's pages are drawn here (measured once: full size, or previews)."""
        return self.cached(("display", model_id), lambda: plan_display(
            self.model(model_id), budget_s=self.limits.page_seconds, model_file=self.model_file(model_id)))

    def model_file(self, model_id: str) -> Path | None:
        """The model's file (where what is measured of it is kept beside it)."""
        return self.catalog.resolve(model_id) if self.catalog.get(model_id).files else None

    def render_page(self, model_id: str, z: torch.Tensor) -> torch.Tensor:
        """A page of images (a grid, variations, a strip, a round, thumbnails): full size, or the
        model's previews where `display` chose them. Never for what is selected, kept or exported."""
        plan = self.display(model_id)
        model = self.model(model_id)
        return (model.preview(z, plan.page) if plan.previews else model.generate(z)).cpu()

    def render_node(self, model_id: str, node: Node) -> torch.Tensor:
        return self.render(model_id, node.latent()[None])

    def scratch(self, name: str) -> Path:
        """A fresh file path under the scratch folder (one sub-folder per file, names stay readable)."""
        folder = Path(tempfile.mkdtemp(dir=self.workdir))
        return folder / name


def friendly(fn: Callable) -> Callable:
    """Turn the errors users can cause into a one-line gr.Error; log anything unexpected.

    The app keeps serving either way. Works for plain callbacks and for streaming (generator) ones.
    A plain callback whose first argument is the tab's `UserState` runs under that state's lock;
    streaming ones do not (Stop must get through while a search runs).
    """
    def convert(e: BaseException) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        if isinstance(e, USER_ERRORS):
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return gr.Error(html.escape(str(msg), quote=False), print_exception=False)  # messages render as HTML
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(html.escape(f"Something went wrong ({type(e).__name__}: {str(e)[:200]}); "
                                    "the studio keeps running."),
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - every failure becomes a message
                raise convert(e) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            if args and isinstance(args[0], UserState):
                with args[0].lock():
                    return fn(*args, **kwargs)
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise convert(e) from None
    return wrapper
