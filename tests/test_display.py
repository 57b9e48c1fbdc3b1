"""How pages are drawn (`studio.display`): small models at full size in float32; a large one whose
full-size page is over the budget as previews from a fitted head kept beside its file; the app's
pages follow the plan while the selected image stays full size."""
from __future__ import annotations

import os

import pytest
import torch

import assetpaths
import studio.display as display
from generators import PGAN, PGANConfig
from generators.ganzoo import export_zoo
from studio.app import browse, compose
from studio.app.context import Ctx, Limits
from studio.app.factory import refresh_values
from studio.app.state import UserState
from studio.catalog import Catalog
from studio.display import plan_display
from studio.testing import randomize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def big_file(tmp_path):
    """A 32 px RGB zoo checkpoint, "large" for these tests (LARGE is lowered to 32)."""
    model = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 16, 8, 8), channels=3), seed=4), seed=4)
    path = export_zoo(model, tmp_path / "big.pth")
    yield path
    assetpaths.unregister("big")


def test_a_small_model_draws_its_pages_as_they_are(tiny_model):
    plan = plan_display(tiny_model)
    assert not plan.previews and not plan.bfloat16 and plan.note() == ""
    assert tiny_model.display is None  # no bfloat16 copy: pages are exactly `generate`


def test_a_slow_large_model_gets_previews_from_a_kept_head(big_file, monkeypatch):
    monkeypatch.setattr(display, "cpu_has_fast_bfloat16", lambda: False)
    catalog = Catalog()
    model = catalog.generator(str(big_file))
    plan = plan_display(model, budget_s=0.0, large=32, min_preview=8, model_file=big_file)
    assert plan.previews and plan.page == 8 and plan.resolution == 32  # nothing fits 0 s: the smallest
    assert plan.full_page_s > 0 and plan.page_s > 0
    assert "8 px previews" in plan.note() and "full size" in plan.note()
    head_file = assetpaths.beside(big_file).path("measured", "big")
    assert head_file.is_file() and 8 in model.preview_heads
    z = model.sample_latents(4, seed=3)
    assert model.preview(z, 8).shape == (4, 3, 8, 8)

    fresh = Catalog().generator(str(big_file))  # the next start reads the head instead of fitting it
    monkeypatch.setattr(display, "fit_preview_head", lambda *a, **k: pytest.fail("refitted a kept head"))
    real_measure = display._measure_page
    monkeypatch.setattr(display, "_measure_page", lambda *a: pytest.fail("timed the pages again"))
    assert plan_display(fresh, budget_s=0.0, large=32, min_preview=8, model_file=big_file) == plan
    monkeypatch.setattr(display, "_measure_page", real_measure)
    assert torch.equal(fresh.preview_heads[8][0], model.preview_heads[8][0])

    fitted = []
    monkeypatch.setattr(display, "fit_preview_head", lambda m, r, n: fitted.append(r) or model.preview_heads[8])
    st = big_file.stat()
    os.utime(big_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: its head is refitted
    plan_display(Catalog().generator(str(big_file)), budget_s=0.0, large=32, min_preview=8, model_file=big_file)
    assert fitted == [8]


def test_within_the_budget_pages_are_full_size(big_file, monkeypatch):
    monkeypatch.setattr(display, "cpu_has_fast_bfloat16", lambda: True)
    model = Catalog().generator(str(big_file))
    plan = plan_display(model, budget_s=1e9, large=32, model_file=big_file)
    assert not plan.previews and plan.bfloat16 and model.display is not None
    assert "bfloat16" in plan.note()
    z = model.sample_latents(2, seed=0)
    with torch.no_grad():
        exact = model.generator(z)
    assert (model.generate(z) - exact).abs().max() < 0.1 * exact.abs().max() + 0.05  # close, for display
    assert model.generate(z.requires_grad_()).dtype == torch.float32  # searches stay float32


def test_the_app_draws_pages_as_previews_and_the_selection_full_size(big_file, tiny_catalog, monkeypatch):
    monkeypatch.setattr(display, "LARGE", 32)
    monkeypatch.setattr(display, "MIN_PREVIEW", 16)
    monkeypatch.setattr(display, "cpu_has_fast_bfloat16", lambda: False)
    catalog = Catalog(tiny_catalog)
    model_id = catalog.add_model(str(big_file), prefer=True)
    ctx = Ctx(catalog, limits=Limits(page_seconds=0.0))
    st = UserState.new(model_id)
    values = refresh_values(ctx, st)
    assert "16 px previews" in values[3]  # the header's note (factory.refresh_outputs order)
    page = browse.generate(ctx, st, 0, 0, 9, 0)
    assert len(page) == 9 and page[0][0].size == (16, 16)
    browse.select(ctx, st, "grid", 4)
    image, _, export = browse.selected_panel(ctx, st)
    assert image.size == (32, 32)
    assert [im.size for im, _ in browse.vary(ctx, st, 0.3)] == [(16, 16)] * browse.N_VARIATIONS
    compose.start(ctx, st, k=4, method="pick", strength=0.5, source="random", seed=0, optimizer="elitist")
    candidates, _, best, _ = compose.round_view(ctx, st)
    assert candidates.constructor_args["value"][0][0].size == (16, 16)
    compose.choose(ctx, st, [2])
    _, _, best, _ = compose.round_view(ctx, st)
    assert best.size == (32, 32)  # the composite so far: full size, not its preview thumbnail


def test_inspire_on_a_large_model_starts_at_once_and_keeps_d_spread(big_file, tiny_catalog, monkeypatch):
    from studio.app import inspire

    monkeypatch.setattr(display, "LARGE", 32)
    monkeypatch.setattr(display, "MIN_PREVIEW", 16)
    catalog = Catalog(tiny_catalog)
    model_id = catalog.add_model(str(big_file))
    ctx = Ctx(catalog, limits=Limits(page_seconds=0.0))
    st = UserState.new(model_id)
    model = ctx.model(model_id)
    st.target, st.target_name = model.generate(model.sample_latents(1, seed=9)), "seed 9"
    stream = inspire.search(ctx, st, method="gradient", budget=2, restarts=1, seed=0, weights={"pixel": 1.0})
    first, done = next(stream)
    assert not done and first.step == 0 and "closest of 16 random" in inspire.progress_text(ctx, st, first, False)
    *_, (result, done) = stream
    assert done and result.steps == 2
    spread = display.kept_spread(big_file)  # measured once, kept beside the file for the next start
    assert spread is not None and spread == model.info["inspire"]["realism_spread"]
    again = Catalog(tiny_catalog)
    fresh = again.generator(again.add_model(str(big_file)))
    monkeypatch.setattr(inspire, "realism_unit", lambda m: pytest.fail("measured D's spread again"))
    inspire.keep_realism_unit(Ctx(again), "big", fresh, 0.02)
    assert fresh.info["inspire"]["realism_spread"] == spread
