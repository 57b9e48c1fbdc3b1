"""Checkpoints a user brings (`--model`, the CLI): size, tensor count and shapes checked before
memory is spent on them, each refusal one line."""
from __future__ import annotations

import zipfile

import pytest
import torch

import generators.ganzoo as ganzoo
import generators.model as model_module
from generators import PGAN, PGANConfig
from generators.errors import CheckpointError
from generators.ganzoo import ZooConfig, export_zoo, load_zoo, read_checkpoint, save_zoo_state, zoo_state
from studio.cli import main as cli
from weightfile import FileLimits, WeightFileError, load_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def _no_networks(monkeypatch):
    """Building a network with memory now fails the test (on the meta device, shapes only, is
    allowed): a refusal must come before any allocation."""
    def guard(cls):
        def build(*args, **kwargs):
            if torch.get_default_device().type != "meta":
                raise AssertionError("a network was built for a file that should have been refused")
            return cls(*args, **kwargs)
        return build
    for mod in (ganzoo, model_module):
        monkeypatch.setattr(mod, "Generator", guard(mod.Generator))
        monkeypatch.setattr(mod, "Discriminator", guard(mod.Discriminator))
    # shapes of small configs are found on the CPU (milliseconds); here every config counts as large
    monkeypatch.setattr(model_module, "SMALL_ENOUGH_TO_BUILD", 0)


def test_shapes_found_on_the_cpu_are_those_of_the_meta_device(monkeypatch):
    config = PGANConfig(latent_dim=8, depths=(8, 4), channels=3)
    assert model_module.parameter_bound(config) <= model_module.SMALL_ENOUGH_TO_BUILD
    small = model_module.expected_shapes(config)
    monkeypatch.setattr(model_module, "SMALL_ENOUGH_TO_BUILD", 0)
    assert model_module.expected_shapes(config) == small
    sizes = [sum(torch.Size(s).numel() for s in net.values()) for net in small.values()]
    assert max(sizes) <= model_module.parameter_bound(config)


def _zoo_with(tmp_path, tiny_model, name="x.pth", **config):
    state = zoo_state(tiny_model)
    state["config"].__dict__.update(config)
    return save_zoo_state(state, tmp_path / name)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, tiny_model, monkeypatch):
    path = export_zoo(tiny_model, tmp_path / "x.pth")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("read a file over the limit"))
    with pytest.raises(CheckpointError, match=r"x.pth: 0.0 GB, larger than the limit of 0.0 GB") as err:
        read_checkpoint(path, limits=FileLimits(bytes=1000))
    assert "\n" not in str(err.value)
    safet = tiny_model.save(tmp_path / "ours.safetensors")
    with pytest.raises(WeightFileError, match="larger than the limit"):
        load_weights(safet, format="studio-pgan/1", kind="PGAN generator", limits=FileLimits(bytes=1000))


def test_too_many_tensors_or_a_huge_pickle_are_refused_before_unpickling(tmp_path, tiny_model, monkeypatch):
    path = export_zoo(tiny_model, tmp_path / "x.pth")
    with zipfile.ZipFile(path) as z:
        storages = sum("/data/" in n for n in z.namelist())
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("unpickled a file over the limits"))
    with pytest.raises(CheckpointError, match=f"holds {storages} tensors, more than the limit of 10"):
        read_checkpoint(path, limits=FileLimits(tensors=10))
    with pytest.raises(CheckpointError, match="its pickle is 0 MB, more than the limit"):
        read_checkpoint(path, limits=FileLimits(header=100))


@pytest.mark.parametrize("config, message", [
    ({"depthOtherScales": [8] * 12}, "13 scales .*limit of 10"),
    ({"depthScale0": 100_000}, "100000 channels"),
    ({"latentVectorDim": 1_000_000}, "1000000-d latent"),
    ({"depthScale0": 4096, "depthOtherScales": [4096] * 3}, "parameters, more than the limit"),
    ({"depthOtherScales": list(range(100))}, "not a short list"),
])
def test_zoo_configs_too_large_to_build_are_refused(tmp_path, tiny_model, monkeypatch, config, message):
    path = _zoo_with(tmp_path, tiny_model, **config)
    _no_networks(monkeypatch)
    with pytest.raises(CheckpointError, match=message) as err:
        load_zoo(path)
    assert "\n" not in str(err.value)


def test_zoo_shapes_are_checked_before_the_networks_are_built(tmp_path, tiny_model, monkeypatch):
    path = export_zoo(tiny_model, tmp_path / "x.pth")
    state = read_checkpoint(path)
    state["avgG"]["formatLayer.module.weight"] = torch.zeros(3, 3)
    state["netD"]["extra.module.weight"] = torch.zeros(2)
    save_zoo_state(state, tmp_path / "bad.pth")
    _no_networks(monkeypatch)
    with pytest.raises(CheckpointError, match=r"generator 'avgG' tensor format_layer.weight has shape \[3, 3\]"):
        load_zoo(tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="unexpected extra"):
        load_zoo(tmp_path / "bad.pth", generator="netG")


def test_zoo_non_tensor_entries_are_refused(tmp_path, tiny_model):
    state = zoo_state(tiny_model)
    state["avgG"]["formatLayer.module.bias"] = [1.0, 2.0]
    save_zoo_state(state, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="is a list, not a tensor"):
        load_zoo(tmp_path / "x.pth")


def test_a_good_zoo_file_still_loads_and_its_tensors_are_copies(tmp_path, tiny_model):
    path = export_zoo(tiny_model, tmp_path / "x.pth")
    loaded = load_zoo(path)
    z = tiny_model.sample_latents(3, seed=0)
    path.unlink()  # the storages were memory-mapped while loading: the networks hold their own copies
    assert torch.allclose(loaded.generate(z), tiny_model.generate(z), atol=1e-6)


def test_our_format_checks_config_and_shapes_from_the_header(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    big = PGANConfig(latent_dim=8, depths=(8,) * 12, channels=1)
    path = tmp_path / "big.safetensors"
    save_file({"G.x": torch.zeros(1)}, str(path), metadata={"format": "studio-pgan/1",
                                                           "config": __import__("json").dumps(big.to_dict())})
    _no_networks(monkeypatch)
    with pytest.raises(CheckpointError, match="12 scales .*limit of 10"):
        PGAN.load(path)
    monkeypatch.undo()
    small = PGAN.random(PGANConfig(latent_dim=8, depths=(8, 8), channels=1))
    tensors = {f"G.{k}": v for k, v in small.generator.state_dict().items()}
    tensors["G.format_layer.weight"] = torch.zeros(5, 5)
    save_file(tensors, str(path), metadata={"format": "studio-pgan/1",
                                           "config": __import__("json").dumps(small.config.to_dict())})
    _no_networks(monkeypatch)
    with pytest.raises(CheckpointError, match=r"G.format_layer.weight has shape \[5, 5\], config expects"):
        PGAN.load(path)


def test_the_cli_refuses_in_one_line(tmp_path, tiny_model, capsys):
    path = _zoo_with(tmp_path, tiny_model, name="huge.pth", depthScale0=100_000)
    assert cli(["sample", "--model", str(path), "--seeds", "0", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "huge.pth" in err and "100000 channels" in err and "\n" not in err
