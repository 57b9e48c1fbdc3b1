"""`--device auto|cpu|cuda|mps`: one resolver for the app, the CLI and training; the CPU path runs
here, an absent device is refused in one line."""
from __future__ import annotations

import pytest
import torch

import app
import studio.devices as devices
from studio.cli import build_parser, main
from studio.devices import DeviceError, resolve_device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, no_gpu):
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name, message", [
    ("cuda", "--device cuda: .*use --device cpu"),
    ("cuda:1", "--device cuda:1: "),
    ("mps", "--device mps: Apple's MPS is not available"),
    ("tpu", "unknown device 'tpu'; expected one of auto, cpu, cuda, mps"),
    ("cpu:0", "the CPU takes no index"),
    ("auto:0", "'auto' takes no index"),
])
def test_absent_or_unknown_devices_are_refused_in_one_line(no_gpu, name, message):
    with pytest.raises(DeviceError, match=message) as err:
        resolve_device(name)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("argv", [
    ["sample", "--seeds", "0", "--out", "x.png"],
    ["inspire", "--image", "x.png", "--out", "y.png"],
    ["embed", "--encoder", "e", "--images", "d", "--out", "f.npy"],
    ["train", "gan", "--data", "faces", "--out", "run"],
    ["train", "encoder", "--method", "vicreg", "--data", "faces", "--out", "run"],
])
def test_every_command_with_a_device_defaults_to_auto(argv):
    assert build_parser().parse_args(argv).device == "auto"


def test_cli_runs_on_the_cpu_and_refuses_an_absent_gpu(catalog_env, tmp_path, capsys, no_gpu):
    out = tmp_path / "x.png"
    assert main(["sample", "--seeds", "0-1", "--out", str(out), "--device", "auto"]) == 0 and out.is_file()
    assert main(["sample", "--seeds", "0", "--out", str(out), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda:") and "\n" not in err


def test_training_takes_the_same_flag(monkeypatch, tmp_path, capsys, no_gpu):
    assert main(["train", "gan", "--device", "mps", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "error: --device mps: Apple's MPS is not available" in capsys.readouterr().err


def test_app_refuses_an_absent_gpu_and_loads_on_the_chosen_device(monkeypatch, tiny_catalog, capsys, no_gpu):
    monkeypatch.setattr(app, "serve", lambda *a, **k: pytest.fail("served with an absent device"))
    assert app.main(["--catalog", str(tiny_catalog), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda:") and "\n" not in err
    served = {}
    monkeypatch.setattr(app, "serve", lambda demo, port: served.update(ctx=demo.studio_ctx))
    assert app.main(["--catalog", str(tiny_catalog), "--device", "auto"]) == 0
    ctx = served["ctx"]
    assert ctx.catalog.device == "cpu" and ctx.model("tiny").device == torch.device("cpu")
