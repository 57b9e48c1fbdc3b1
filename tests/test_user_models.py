"""`python app.py --model PATH`: a user's zoo checkpoint joins the picker with a generated card; bad
files are one-line errors and the studio starts on the rest; dependent files made from the CLI
beside the model are picked up."""
from __future__ import annotations

import json

import pytest
import torch

import app
import assetpaths
from generators import PGAN, PGANConfig
from generators.ganzoo import export_zoo
from optimizers.inversion import InversionConfig, InversionTrainConfig, save_inversion, train_inversion
from optimizers.subspace import image_directions, save_subspace
from studio.app.render import card_markdown, model_choices
from studio.catalog import Catalog
from studio.cli import main as cli
from studio.shipped import shipped_encoder, shipped_subspace
from studio.testing import randomize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def zoo_file(tmp_path):
    """A small zoo checkpoint written here: 3 scales (16 px), RGB, latent 8."""
    model = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 16, 8), channels=3), seed=3), seed=3)
    path = export_zoo(model, tmp_path / "my-gan.pth")
    yield path, model
    assetpaths.unregister("my-gan")


def test_a_zoo_checkpoint_joins_the_picker_with_its_card(tiny_catalog, zoo_file, tmp_path, capsys):
    path, original = zoo_file
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint at all")
    catalog = Catalog(tiny_catalog, device="cpu")
    added = app.add_models(catalog, [str(bad), str(path), str(tmp_path / "absent.pth")])
    assert added == ["my-gan"]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 2 and "broken.pth" in err[0] and "absent.pth" in err[1]
    assert all("starting on the rest" in line for line in err)
    assert catalog.default_generator() == "my-gan" and ("my-gan" in dict(model_choices(catalog)).values())
    card = card_markdown(catalog, "my-gan")
    for text in ("16 px", "latent size**: 8", "RGB", "3 scales", "channels 16/16/8", str(path),
                 "pytorch_GAN_zoo checkpoint", "**no inversion encoder**: Inspire starts from random latents",
                 f"`python -m studio.inversion --model {path}` trains one", "no search directions",
                 "no preference metric"):
        assert text in card, text
    z = original.sample_latents(4, seed=1)
    assert torch.allclose(catalog.generator("my-gan").generate(z), original.generate(z), atol=1e-6)
    assert catalog.generator("my-gan") is catalog.generator("my-gan")  # loaded once, at start


def test_a_catalog_id_collision_gets_a_fresh_id(tiny_catalog, tmp_path):
    model = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8), channels=1)))
    path = export_zoo(model, tmp_path / "tiny.pth")
    catalog = Catalog(tiny_catalog)
    assert catalog.add_model(str(path)) == "tiny-2" and catalog.add_model("tiny") == "tiny"
    assetpaths.unregister("tiny-2")


def test_app_main_starts_on_the_good_models(monkeypatch, tiny_catalog, zoo_file, tmp_path, capsys):
    path, _ = zoo_file
    served = {}
    monkeypatch.setattr(app, "serve", lambda demo, port: served.update(ctx=demo.studio_ctx))
    assert app.main(["--catalog", str(tiny_catalog), "--device", "cpu", "--model", str(tmp_path / "x.pth"),
                     "--model", str(path)]) == 0
    ctx = served["ctx"]
    assert "my-gan" in ctx.latent_dims() and ctx.catalog.default_generator() == "my-gan"
    assert ctx.render("my-gan", torch.zeros(2, 8)).shape == (2, 3, 16, 16)
    assert "x.pth: no such model file" in capsys.readouterr().err


def test_dependent_files_made_beside_the_model_are_picked_up(tiny_catalog, zoo_file, capsys):
    path, original = zoo_file
    config = InversionConfig(original.latent_dim, original.resolution, original.channels, width=4)
    encoder, _ = train_inversion(original, config=config, train=InversionTrainConfig(steps=3, batch=4))
    inv = assetpaths.output("inversion", str(path))
    assert inv == path.parent / "my-gan.studio" / "inversion" / "my-gan.safetensors"
    save_inversion(encoder, inv)
    save_subspace(image_directions(original, 3, n=64), assetpaths.output("directions", str(path)))
    catalog = Catalog(tiny_catalog)
    model_id = catalog.add_model(str(path))
    card = card_markdown(catalog, model_id)
    assert "inversion encoder: found" in card and "search directions: found" in card
    assert "no preference metric" in card
    assert shipped_encoder(model_id) is not None and shipped_subspace(model_id).dim == 3
    from studio.app.inspire import start_guess
    target = original.generate(original.sample_latents(1, seed=0))
    assert start_guess(model_id, catalog.generator(model_id), target).shape == (8,)


def test_assets_command_makes_and_lists_them(catalog_env, zoo_file, capsys):
    path, _ = zoo_file
    assert cli(["assets", "--model", str(path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["files"] == {"inversion": None, "directions": None, "metric": None}
    assert cli(["assets", "--model", str(path), "--make", "directions", "metric", "--samples", "4",
                "--directions", "2", "--device", "cpu", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["files"]["directions"].endswith("my-gan.studio/inversion/my-gan-directions.safetensors")
    assert made["files"]["metric"].endswith("my-gan.studio/preference/my-gan-metric.safetensors")
    catalog = Catalog(catalog_env)
    model_id = catalog.add_model(str(path))
    from studio.shipped import optimizer_assets, shipped_metric
    assert shipped_metric(model_id).shape == (8, 8) and shipped_subspace(model_id).dim == 2
    assert optimizer_assets(f"bayes:{model_id}").metric.shape == (8, 8)  # what Compose's bayes driver is handed
