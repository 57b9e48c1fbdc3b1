"""How a model's pages of images (a Browse grid, variations, a strip, a Compose round, the kept
gallery) are drawn on this machine: at full size, or as progressive previews when a full-size page
would keep a person waiting.

`plan_display` decides once per model, by measuring: models under `LARGE` px always draw pages at
full size in float32 (9 faces64 images take milliseconds). A larger model on a CPU with bfloat16
units renders without gradient from a bfloat16 channels-last copy (`PGAN.use_bfloat16`; searches
still differentiate the float32 generator); then a page of `PAGE` images is timed, and when it would
take longer than the budget, pages show the largest lower scale that fits (not below
`MIN_PREVIEW`): the generator stopped at that scale and drawn by a colour head fitted to its own
full renders (`generators.model.fit_preview_head`). The head is fitted once and kept beside the
model's file (`assetpaths` kind "measured", with D's spread once Inspire measured it), tied to
that file's size and time stamp. The image a
person selects, keeps or exports is always rendered at full size.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import assetpaths
from generators.model import PGAN, fit_preview_head
from studio.devices import cpu_has_fast_bfloat16
from weightfile import load_weights, save_weights

log = logging.getLogger("studio.display")

PAGE = 9  # images on a default page (Browse grid, Compose round)
PAGE_BUDGET_S = 1.0  # a full-size page slower than this on this machine: previews
LARGE = 128  # below this resolution pages are always full size, in float32
MIN_PREVIEW = 64  # previews no smaller than this
FIT_SAMPLES = 32  # full renders the preview head is fitted to (32 is within 1% of 256's correlation on
# the shipped models, docs/benchmarks/large_models.md)
FORMAT = "studio-measured/1"
TIMED = 3  # images timed per measurement (a page's cost is extrapolated from them)


@dataclass(frozen=True)
class DisplayPlan:
    resolution: int  # the model's own
    page: int  # the size pages are drawn at
    bfloat16: bool  # renders without gradient use the bfloat16 copy
    full_page_s: float | None = None  # measured estimate of a PAGE-image page at full size (None: small model)
    page_s: float | None = None  # the same at `page`

    @property
    def previews(self) -> bool:
        return self.page < self.resolution

    def note(self) -> str:
        """One line for the UI and the start-up log (empty for a model drawn as it is)."""
        if not self.previews:
            if self.bfloat16:
                return (f"Pages of this {self.resolution} px model render in bfloat16 on this CPU "
                        f"(~{self.full_page_s:.1f} s for {PAGE}); close to float32, not bit-identical.")
            return ""
        return (f"Pages show **{self.page} px previews** of this {self.resolution} px model "
                f"(~{self.page_s:.1f} s for {PAGE} here, against ~{self.full_page_s:.1f} s at full size); "
                f"they approximate the full images. The image you select, keep or export is full size.")


def _time_page(render, z: torch.Tensor) -> float:
    render(z[:1]).cpu()  # first-call allocations outside the timing
    start = time.perf_counter()
    render(z).cpu()  # .cpu(): waits for a GPU, and the app copies pages to the CPU anyway
    return (time.perf_counter() - start) * PAGE / len(z)


def plan_display(model: PGAN, *, budget_s: float = PAGE_BUDGET_S, large: int | None = None,
                 min_preview: int | None = None, model_file: str | Path | None = None) -> DisplayPlan:
    """Decide (and set up: the bfloat16 copy, the preview head) how `model` draws its pages
    (`large`, `min_preview`: LARGE and MIN_PREVIEW unless given)."""
    large = LARGE if large is None else large
    min_preview = MIN_PREVIEW if min_preview is None else min_preview
    if model.resolution < large:
        return DisplayPlan(model.resolution, model.resolution, bfloat16=False)
    bf16 = model.device.type == "cpu" and cpu_has_fast_bfloat16()
    model.use_bfloat16(bf16)
    # measured once per model file and machine setting, then kept: the same pages at every start
    # (a page time near the budget would otherwise flip between previews and full size)
    key = f"plan:{model.device.type}:{torch.get_num_threads()}t:bf16={int(bf16)}:{budget_s:g}s:{min_preview}px"
    measured, meta = read_measured(model_file)
    kept = meta.get(key)
    try:
        page, full_s, page_s = json.loads(kept) if kept else (None, None, None)
    except (ValueError, TypeError):
        page = None
    if page not in model.preview_resolutions():
        page, full_s, page_s = _measure_page(model, budget_s, min_preview)
        keep_measured(model_file, metadata={key: json.dumps([page, round(full_s, 3), round(page_s, 3)])})
    plan = DisplayPlan(model.resolution, page, bf16, round(full_s, 3), round(page_s, 3))
    if plan.previews and page not in model.preview_heads:
        model.preview_heads[page] = preview_head(model, page, model_file, measured)
    return plan


def _measure_page(model: PGAN, budget_s: float, min_preview: int) -> tuple[int, float, float]:
    """(page size, seconds of a full-size page, seconds of a page at that size), timed now."""
    z = model.sample_latents(TIMED, seed=0)
    full_s = _time_page(model.generate, z)
    page, page_s = model.resolution, full_s
    if full_s > budget_s:
        sizes = [r for r in model.preview_resolutions() if min(min_preview, model.resolution) <= r < model.resolution]
        for r in reversed(sizes):
            page, page_s = r, _time_page(lambda b: model.preview(b, r), z)
            if page_s <= budget_s:
                break
    return page, full_s, page_s


def preview_head(model: PGAN, resolution: int, model_file: str | Path | None,
                 measured: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The fitted colour head of `resolution`: read from beside the model file when it was fitted
    for this very file (`measured`: its tensors, when already read), else fitted now (seconds:
    FIT_SAMPLES full renders) and kept there."""
    name = f"head{resolution}"
    tensors = read_measured(model_file)[0] if measured is None else measured
    if f"{name}.weight" in tensors and f"{name}.bias" in tensors:
        return tensors[f"{name}.weight"], tensors[f"{name}.bias"]
    start = time.perf_counter()
    head = fit_preview_head(model, resolution, n=FIT_SAMPLES)
    log.info("fitted the %d px preview head in %.1f s", resolution, time.perf_counter() - start)
    keep_measured(model_file, tensors={f"{name}.weight": head[0], f"{name}.bias": head[1]})
    return head


def kept_spread(model_file: str | Path | None) -> float | None:
    """D's spread (`optimizers.objective.realism_spread`) measured earlier for this very file."""
    value = read_measured(model_file)[1].get("realism_spread")
    try:
        return float(value) if value is not None and float(value) > 0 else None
    except ValueError:
        return None


# -- what was measured of a model file, kept beside it (assetpaths kind "measured") ---------------

def _measured_file(model_file: str | Path | None) -> Path | None:
    if model_file is None:
        return None
    where, model_id = assetpaths.home(model_file)
    return where.path("measured", model_id)


def _stamp(model_file: str | Path) -> str:
    st = Path(model_file).stat()
    return f"{Path(model_file).name}:{st.st_size}:{st.st_mtime_ns}"


def read_measured(model_file: str | Path | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) kept for this model file, or empty when none were, or for another
    version of the file (its size or time stamp changed), or the file is damaged."""
    where = _measured_file(model_file)
    if where is None or not where.is_file() or not Path(model_file).is_file():
        return {}, {}
    try:
        saved = load_weights(where, format=FORMAT, kind="measurements", require_config=False)
    except ValueError as e:  # a damaged file is measured again, never fatal
        log.warning("ignoring %s: %s", where, e)
        return {}, {}
    if saved.metadata.get("source") != _stamp(model_file):
        return {}, {}
    return saved.tensors, {k: v for k, v in saved.metadata.items() if k not in ("format", "source")}


def keep_measured(model_file: str | Path | None, *, tensors: dict[str, torch.Tensor] | None = None,
                  metadata: dict[str, str] | None = None) -> None:
    """Add to what is kept for this model file (a read-only folder only costs a re-measurement)."""
    where = _measured_file(model_file)
    if where is None or not Path(model_file).is_file():
        return
    old_tensors, old_meta = read_measured(model_file)
    try:
        save_weights(where, {**old_tensors, **(tensors or {})}, format=FORMAT, sidecar=False,
                     metadata={**old_meta, **(metadata or {}), "source": _stamp(model_file)})
    except (OSError, ValueError) as e:
        log.warning("could not keep measurements beside the model (%s); they are redone next start", e)


__all__ = ["DisplayPlan", "plan_display", "preview_head", "kept_spread", "read_measured", "keep_measured", "PAGE", "PAGE_BUDGET_S", "LARGE", "MIN_PREVIEW"]
