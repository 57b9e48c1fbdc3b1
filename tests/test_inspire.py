"""`optimizers.inspire`: prepare() once, search with any method; used by the CLI and the app; D's
spread cached per generator; every Nevergrad method the app offers improves on its start."""
from __future__ import annotations

import math

import pytest
import torch

import optimizers.inspire as inspire_api
from generators import PGAN, PGANConfig
from optimizers import Weights, default_realism, realism_spread
from optimizers.inspire import GRADIENT, NEVERGRAD, defaults, inspire, prepare, search
from optimizers.inversion import InversionConfig, InversionEncoder
from tests.conftest import randomize

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model():
    return randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8)), seed=0), seed=3)  # 8x8 grayscale


@pytest.fixture(scope="module")
def target(model):
    return model.generate(model.sample_latents(1, seed=123))


def off_start(model, shift: float = 0.8) -> torch.Tensor:
    """The target's own latent moved away: a start with room to improve, [8]."""
    z = model.sample_latents(1, seed=123)[0]
    return z + shift * torch.randn(8, generator=torch.Generator().manual_seed(5))


def count_spreads(monkeypatch) -> list:
    calls = []
    real = inspire_api.realism_spread
    monkeypatch.setattr(inspire_api, "realism_spread", lambda g: calls.append(g) or real(g))
    return calls


def test_prepare_builds_the_studio_objective_and_caches_ds_spread(monkeypatch, target):
    fresh = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8)), seed=1), seed=4)
    calls = count_spreads(monkeypatch)
    first = prepare(fresh, target)
    assert first.weights == Weights(realism=default_realism(fresh)) and first.start is None
    assert first.realism_unit == pytest.approx(realism_spread(fresh)) and first.objective.realism_unit == first.realism_unit
    second = prepare(fresh, target, start=torch.zeros(8))
    assert len(calls) == 1 and second.realism_unit == first.realism_unit  # measured once per generator
    assert second.start_kind == "latent" and second.start.shape == (1, 8)
    prepare(fresh, target, weights=Weights(realism=0.0))
    assert len(calls) == 1  # no realism term: D's spread is not needed
    assert prepare(fresh, target, weights=Weights(realism=0.0)).realism_unit == 1.0
    inspire_api.forget_realism_unit(fresh)
    prepare(fresh, target)
    assert len(calls) == 2


def test_prepare_starts_from_an_inversion_encoder_it_is_handed(model, target):
    encoder = InversionEncoder(InversionConfig(latent_dim=8, resolution=8, channels=1)).eval()
    prepared = prepare(model, target, start=encoder)
    with torch.no_grad():
        assert prepared.start_kind == "inversion"
        torch.testing.assert_close(prepared.start, encoder(target))
    assert math.isfinite(prepared.start_loss())
    result = inspire(prepared, budget=3)
    assert result.steps == 3 and result.loss <= prepared.start_loss() + 1e-6
    other = InversionEncoder(InversionConfig(latent_dim=4, resolution=8, channels=1))
    with pytest.raises(ValueError, match="another generator shape"):
        prepare(model, target, start=other)


def test_method_defaults_are_the_fast_path():
    assert defaults("gradient") == GRADIENT and GRADIENT.batch == 1
    for name in ("CMA", "NGOpt", "PSO"):
        assert defaults(name).budget == NEVERGRAD.budget and defaults(name).batch == NEVERGRAD.batch
    assert search(prepare_tiny(), method="CMA").sigma == defaults("CMA").options["sigma"]


def prepare_tiny():
    model = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8)), seed=2), seed=2)
    return prepare(model, model.generate(model.sample_latents(1, seed=0)), weights=Weights(realism=0.0))


def app_methods() -> list[str]:
    from studio.app.inspire import SEARCH_METHODS
    return [m for m in SEARCH_METHODS if m != "gradient"]


@pytest.mark.parametrize("method", app_methods())
def test_every_nevergrad_method_offered_improves_on_its_start(model, target, method):
    prepared = prepare(model, target, start=off_start(model), weights=Weights(realism=0.0))
    start = prepared.start_loss()
    result = inspire(prepared, method=method, budget=64, seed=0)
    assert result.loss < start, f"{method} ended at its start's loss {start:.5f}"


def test_a_nevergrad_search_is_centred_on_its_start(model, target):
    prepared = prepare(model, target, start=off_start(model), weights=Weights(realism=0.0))
    run = search(prepared, method="RandomSearch", budget=64, restarts=32, seed=1)
    asked = torch.cat([run.ask()])
    assert (asked - prepared.start).norm(dim=1).median() < 0.5 * (asked - 0).norm(dim=1).median()


def test_cli_and_app_searches_go_through_prepare(monkeypatch, tmp_path):
    import argparse

    from studio.commands import inspire as cli
    from studio.app import inspire as tab

    seen = []
    real = inspire_api.prepare

    def spy(*a, **kw):
        seen.append(kw.get("start"))
        return real(*a, **kw)

    monkeypatch.setattr(cli, "prepare", spy)
    monkeypatch.setattr(tab, "prepare", spy)
    tiny = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8)), seed=0), seed=3)
    image = tmp_path / "t.png"
    from studio.imageio import save_png, to_pil
    save_png(to_pil(tiny.generate(tiny.sample_latents(1, seed=1))), image)
    args = argparse.Namespace(image=str(image), weights="", realism_unit="auto", start="none", distance=None,
                              device="cpu")
    prepared, note = cli.prepare_target(args, "tiny", tiny)
    assert note == "none" and len(seen) == 1 and prepared.objective.generator is tiny

    from studio.app.context import Ctx
    from studio.app.state import UserState
    from studio.testing import write_tiny_catalog
    from studio.catalog import Catalog
    from studio.session import Session
    ctx = Ctx(Catalog(write_tiny_catalog(tmp_path / "assets", encoder=False, examples=False)))
    st = UserState(session=Session(model="tiny"))
    tab.load_target(ctx, st, str(image))
    stream = list(tab.search(ctx, st, method="gradient", budget=4, restarts=1, seed=0, weights={"pixel": 1.0}))
    result, done = stream[-1]
    assert done and result.steps == 4 and len(seen) == 2
    assert st.session.node(st.inspired).info["start"] == "random"  # no inversion encoder: the closest of 16
    first, _ = stream[0]
    assert first.step == 0 and first.best_latent.shape == (1, 8)  # an image at once all the same


def test_a_refused_target_clears_the_old_one_and_thin_images_are_refused(tmp_path):
    from PIL import Image

    from studio.app import inspire as tab
    from studio.app.context import Ctx
    from studio.app.state import UserState
    from studio.testing import write_tiny_catalog
    from studio.catalog import Catalog
    from studio.imageio import ImageError
    from studio.session import Session
    ctx = Ctx(Catalog(write_tiny_catalog(tmp_path / "assets", encoder=False, examples=False)))
    st = UserState(session=Session(model="tiny"))
    good, dot, strip, wide = (tmp_path / f"{n}.png" for n in ("good", "dot", "strip", "wide"))
    Image.radial_gradient("L").save(good)
    Image.new("L", (1, 1), 200).save(dot)
    Image.new("L", (4000, 3), 200).save(strip)
    Image.radial_gradient("L").resize((400, 40)).save(wide)
    assert tab.load_target_noted(ctx, st, str(good))[1] == "" and st.target is not None
    for bad, size in ((dot, "1x1"), (strip, "4000x3")):
        with pytest.raises(ImageError, match=f"{bad.name}: {size} is too small"):
            tab.load_target(ctx, st, str(bad))
        assert st.target is None and st.target_path is None  # Search cannot run on the previous target
    _target, note = tab.load_target_noted(ctx, st, str(wide))
    assert "centre 40x40 square" in note


def test_distance_presets_follow_the_measurements():
    from studio.app import inspire as tab
    from studio.app.context import Ctx
    from studio.catalog import Catalog
    ctx = Ctx(Catalog())
    assert tab.preset_weights(ctx, "faces64", "pixels") == {"pixel": 1.0}
    assert tab.preset_weights(ctx, "faces64", "likeness") == {"pixel": 1.0, "faces64-dclw": 1.0}
    assert tab.preset_weights(ctx, "faces64", "style") == {"faces64-dclw": 1.0}
    assert tab.preset_weights(ctx, "fashion32", "likeness") == {"pixel": 1.0, "fashion32-vicreg": 1.0}
    assert "faces64-dclw" in tab.encoder_ids(ctx, "faces64")  # its slider is offered under Advanced
    with pytest.raises(ValueError, match="unknown preset"):
        tab.preset_weights(ctx, "faces64", "fancy")
    assert not ctx.catalog._cache  # no model loaded to name them


@pytest.mark.parametrize("model_id", ["fashion32", "faces64"])
def test_a_shipped_models_stored_spread_is_what_d_measures(model_id):
    from studio.catalog import Catalog
    model = Catalog().generator(model_id)
    stored = inspire_api.stored_spread(model.info)
    assert stored is not None and stored == pytest.approx(realism_spread(model), rel=1e-4)
    assert inspire_api.realism_unit(model) == stored
