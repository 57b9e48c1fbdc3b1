"""`python -m studio inspire` and `compose-sim` on tiny models; inversion encoder save/load."""
from __future__ import annotations

import json

import pytest
import torch

from optimizers import STUDIO_REALISM, realism_spread
from optimizers.inversion import (InversionConfig, InversionEncoder, InversionTrainConfig, load_inversion,
                                  save_inversion, train_inversion)
from optimizers.simulate import SimulatedUser, compose, random_search
from studio.catalog import CATALOG_ENV
from studio.cli import main
from studio.imageio import read_png_meta, save_png, to_pil
from studio.testing import write_catalog

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture
def target_png(tmp_path, tiny_model):
    path = tmp_path / "target.png"
    save_png(to_pil(tiny_model.generate(tiny_model.sample_latents(1, seed=9))), path)
    return path


def test_inspire_gradient_writes_png_and_report(catalog_env, target_png, tmp_path, capsys, tiny_model):
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    assert main(["inspire", "--model", "tiny", "--image", str(target_png), "--budget", "6", "--batch", "2",
                 "--out", str(out), "--json", str(report), "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["steps"] == 6 and data["method"] == "gradient" and len(data["latent"]) == 8
    assert set(data["terms"]) == {"distance", "prior", "realism"} and data["seconds"] > 0
    assert data["weights"]["realism"] == STUDIO_REALISM  # the studio's weight, on D per its spread
    assert data["loss"] == pytest.approx(data["terms"]["distance"] + data["terms"]["prior"]
                                         + STUDIO_REALISM * data["terms"]["realism"], rel=1e-4, abs=1e-6)
    assert read_png_meta(out)["latent"] == data["latent"]
    assert "wrote" in capsys.readouterr().out
    assert data["realism_unit"] == pytest.approx(realism_spread(tiny_model))  # "auto": D's spread over samples


def test_inspire_starts_from_the_models_own_realism_weight(tmp_path, monkeypatch, tiny_model, target_png):
    tiny_model.info["inspire"] = {"realism": 0.005}
    monkeypatch.setenv(CATALOG_ENV, str(write_catalog(tmp_path / "assets", {"tiny": tiny_model})))
    del tiny_model.info["inspire"]  # the session-wide fixture stays as it was
    for extra, expected in (([], 0.005), (["--weights", "realism=0.1"], 0.1)):
        report = tmp_path / "r.json"
        assert main(["inspire", "--model", "tiny", "--image", str(target_png), "--budget", "2", "--batch", "2",
                     *extra, "--out", str(tmp_path / "o.png"), "--json", str(report), "--quiet"]) == 0
        assert json.loads(report.read_text())["weights"]["realism"] == expected


def test_inspire_realism_unit_one_is_the_references_raw_score(catalog_env, target_png, tmp_path, tiny_model):
    report = tmp_path / "r.json"
    assert main(["inspire", "--model", "tiny", "--image", str(target_png), "--budget", "2", "--batch", "2",
                 "--realism-unit", "1", "--out", str(tmp_path / "o.png"), "--json", str(report), "--quiet"]) == 0
    data = json.loads(report.read_text())
    z = torch.tensor([data["latent"]])
    assert data["realism_unit"] == 1.0 and data["weights"]["realism"] == 0.03  # the reference's loss
    assert data["terms"]["realism"] == pytest.approx(-float(tiny_model.realism(tiny_model.generate(z))[0]), abs=1e-5)


def test_inspire_nevergrad_and_weights(catalog_env, target_png, tmp_path):
    report = tmp_path / "r.json"
    assert main(["inspire", "--model", "tiny", "--image", str(target_png), "--method", "CMA", "--budget", "8",
                 "--weights", "realism=0", "--out", str(tmp_path / "o.png"), "--json", str(report), "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["steps"] == 8 and "realism" not in data["terms"] and data["weights"]["realism"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--method", "cmaa"], "did you mean CMA"),
    (["--budget", "0"], "budget"),
    (["--weights", "prior=x"], "--weights"),
    (["--weights", "beauty=1"], "unknown --weights"),
    (["--start", "/no/such.safetensors"], "no such inversion"),
    (["--realism-unit", "big"], "--realism-unit"),
    (["--realism-unit", "0"], "--realism-unit"),
])
def test_inspire_errors_are_one_line(catalog_env, target_png, tmp_path, capsys, argv, message):
    code = main(["inspire", "--model", "tiny", "--image", str(target_png), "--out", str(tmp_path / "o.png")] + argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_inspire_starts_from_an_inversion_encoder(catalog_env, target_png, tmp_path, tiny_model):
    encoder, metrics = train_inversion(tiny_model, config=InversionConfig(8, 16, 1, width=8),
                                       train=InversionTrainConfig(steps=2, batch=4))
    path = save_inversion(encoder, tmp_path / "inv.safetensors", info={"metrics": metrics})
    report = tmp_path / "r.json"
    assert main(["inspire", "--model", "tiny", "--image", str(target_png), "--budget", "3", "--batch", "2",
                 "--start", str(path), "--out", str(tmp_path / "o.png"), "--json", str(report), "--quiet"]) == 0
    assert json.loads(report.read_text())["start"] == "inversion:inv.safetensors"


def test_inversion_roundtrip_and_strict_load(tmp_path, tiny_model):
    encoder, metrics = train_inversion(tiny_model, config=InversionConfig(8, 16, 1, width=8),
                                       train=InversionTrainConfig(steps=10, batch=8, lr=3e-3))
    assert set(metrics) >= {"cosine", "recon_mse", "random_mse", "latent_loss"}
    path = save_inversion(encoder, tmp_path / "inv")
    again = load_inversion(path)
    x = tiny_model.generate(tiny_model.sample_latents(3, seed=1))
    torch.testing.assert_close(again(x), encoder(x))
    assert torch.allclose(again(x).pow(2).mean(dim=1), torch.ones(3), atol=1e-4)  # on the prior's shell
    other = save_inversion(train_inversion(tiny_model, config=InversionConfig(8, 16, 1, width=8),
                                           train=InversionTrainConfig(steps=1, batch=2))[0], tmp_path / "small")
    other.with_suffix(".json").unlink()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(other.read_bytes()[:50])
    with pytest.raises(ValueError, match="readable"):
        load_inversion(bad)
    # continuing from a trained encoder starts from its weights (zero steps: the same function)
    cont, _ = train_inversion(tiny_model, train=InversionTrainConfig(steps=1, batch=2, lr=0.0), init=again)
    torch.testing.assert_close(cont(x), again(x))
    with pytest.raises(ValueError, match="does not fit"):
        train_inversion(tiny_model, train=InversionTrainConfig(steps=1, batch=2),
                        init=InversionEncoder(InversionConfig(4, 16, 1)))


def test_simulated_user_and_references(tiny_model):
    user = SimulatedUser("flip", error=1.0)
    d = torch.tensor([0.3, 0.1, 0.2, 0.9])
    g = torch.Generator().manual_seed(0)
    assert user.rank(d, g)[0] != 1 and SimulatedUser().rank(d, g) == [1, 2, 0, 3]
    assert SimulatedUser("bt", temperature=1e-6).rank(d, g) == [1, 2, 0, 3]
    with pytest.raises(ValueError, match="user"):
        SimulatedUser("oracle")
    from optimizers import pixel_distance
    target = tiny_model.generate(tiny_model.sample_latents(1, seed=4))
    curve = compose(tiny_model, target, pixel_distance, k=4, rounds=6, seed=0)
    assert len(curve) == 6
    rand = random_search(tiny_model, target, pixel_distance, n=24)
    assert rand == sorted(rand, reverse=True)


def test_compose_sim_cli(catalog_env, target_png, tmp_path, capsys):
    report = tmp_path / "c.json"
    assert main(["compose-sim", "--model", "tiny", "--images", str(target_png), "--k", "4", "--rounds", "2,4",
                 "--users", "perfect,bt", "--methods", "pick", "--inversion-budget", "5", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| pick, perfect user | 4 |" in out and "full inversion" in out
    table = json.loads(report.read_text())
    assert len(table["rows"]) == 4 and all("gap_closed" in r for r in table["rows"])
    assert main(["compose-sim", "--model", "tiny", "--images", str(target_png), "--k", "x"]) == 2
