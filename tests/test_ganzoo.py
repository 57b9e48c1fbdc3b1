"""pytorch_GAN_zoo checkpoints: parity with the fixture, unseen configs, refusal of unsafe files."""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from generators import PGAN, PGANConfig
from generators.errors import CheckpointError
from generators.ganzoo import ZooConfig, export_zoo, load_zoo, read_checkpoint, save_zoo_state
from studio.testing import randomize

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ganzoo"  # ../shared beside the clone
CKPT, EXPECTED = FIXTURE / "pgan_rgb32.pth", FIXTURE / "pgan_rgb32_expected.pt"


def _fixture_file(path: Path) -> Path:
    """`path`, or a one-line failure naming the missing file and where it comes from (not a skip:
    these compatibility tests must run in CI)."""
    if not path.is_file():
        pytest.fail(f"missing {path}: the pytorch_GAN_zoo fixture is not in the clone, it comes from the "
                    f"project's shared folder (../shared/fixtures/ganzoo/ beside the clone; see README.md, Tests)",
                    pytrace=False)
    return path


# -- an independent reference: the zoo's arithmetic written from its key names, no renaming ------

def _eq(w: torch.Tensor) -> float:
    return math.sqrt(2.0 / math.prod(w.shape[1:]))


def _layer(s: dict, prefix: str, x: torch.Tensor, equalized: bool = True) -> torch.Tensor:
    w, b = s[prefix + ".module.weight"], s[prefix + ".module.bias"]
    y = F.conv2d(x, w, b, padding=w.shape[-1] // 2) if w.dim() == 4 else F.linear(x, w, b)
    return y * _eq(w) if equalized else y


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x * ((x ** 2).mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def ref_generator(s: dict, n_scales: int, z: torch.Tensor) -> torch.Tensor:
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = lrelu(_layer(s, "formatLayer", _norm(z))).view(len(z), -1, 4, 4)
    x = _norm(lrelu(_layer(s, "groupScale0.0", _norm(x))))
    for i in range(n_scales - 1):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        for j in range(2):
            x = _norm(lrelu(_layer(s, f"scaleLayers.{i}.{j}", x)))
    return _layer(s, f"toRGBLayers.{n_scales - 1}", x)


def ref_discriminator(s: dict, n_scales: int, x: torch.Tensor, mbstd: bool) -> torch.Tensor:
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = lrelu(_layer(s, f"fromRGBLayers.{n_scales - 1}", x))
    for i in reversed(range(n_scales - 1)):
        for j in range(2):
            x = lrelu(_layer(s, f"scaleLayers.{i}.{j}", x))
        x = F.avg_pool2d(x, 2)
    if mbstd:
        n, g = len(x), min(len(x), 4) if len(x) % min(len(x), 4) == 0 else len(x)
        std = x.view(n // g, g, *x.shape[1:]).var(1).add(1e-8).sqrt().flatten(1).mean(1)
        x = torch.cat([x, std.repeat_interleave(g).view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])], 1)
    x = lrelu(_layer(s, "groupScaleZero.0", x))
    x = lrelu(_layer(s, "groupScaleZero.1", x.flatten(1)))
    return _layer(s, "decisionLayer", x)


# -- the fixture saved by pytorch_GAN_zoo's own code ------------------------------------------

@pytest.fixture(scope="module")
def expected() -> dict:
    _fixture_file(CKPT)
    return torch.load(_fixture_file(EXPECTED), weights_only=True)


@pytest.mark.parametrize("which,key", [("avgG", "images_avgG"), ("netG", "images_netG")])
def test_fixture_generators_reproduced(expected, which, key):
    model = load_zoo(CKPT, generator=which)
    out = model.generate(expected["z"])
    assert out.shape == expected[key].shape
    assert (out - expected[key]).abs().max() < 5e-5  # outputs reach |4|: ~1e-5 relative


def test_fixture_discriminator_reproduced(expected):
    model = load_zoo(CKPT)
    assert torch.allclose(model.realism(expected["images_avgG"]), expected["netD_on_images_avgG"][:, 0], atol=1e-5)


def test_fixture_config_read(expected):
    c = load_zoo(CKPT).config
    assert (c.latent_dim, c.depths, c.channels, c.minibatch_stddev) == (32, (32, 32, 16, 16), 3, True)
    assert load_zoo(CKPT).generate(expected["z"][:1]).abs().sum() != load_zoo(CKPT, generator="netG").generate(
        expected["z"][:1]).abs().sum()


# -- zoo checkpoints this code has never seen -------------------------------------------------

CONFIGS = [
    PGANConfig(latent_dim=16, depths=(24, 16, 16, 8, 8), channels=1, minibatch_stddev=True),   # gray 64
    PGANConfig(latent_dim=40, depths=(32, 16), channels=3, minibatch_stddev=True),            # RGB 8
    PGANConfig(latent_dim=12, depths=(16, 16, 8), channels=3, minibatch_stddev=False),        # no mbstd
]


@pytest.mark.parametrize("config", CONFIGS, ids=["gray64", "rgb8", "rgb16-nombstd"])
def test_unseen_zoo_checkpoints_match_reference(tmp_path, config):
    model = randomize(PGAN.random(config, seed=3), seed=4)
    path = export_zoo(model, tmp_path / "zoo.pth")
    raw = read_checkpoint(path)
    z = torch.randn(5, config.latent_dim, generator=torch.Generator().manual_seed(0))
    ref_images = ref_generator(raw["avgG"], len(config.depths), z)
    loaded = load_zoo(path)
    assert loaded.config == config
    assert (loaded.generate(z) - ref_images).abs().max() < 1e-4
    ref_scores = ref_discriminator(raw["netD"], len(config.depths), ref_images, config.minibatch_stddev)
    assert torch.allclose(loaded.realism(ref_images), ref_scores[:, 0], atol=1e-4)


def test_sample_cli_reproduces_unseen_zoo_checkpoint(tmp_path):
    from studio.cli import main
    config = CONFIGS[0]
    path = export_zoo(randomize(PGAN.random(config, seed=5), seed=6), tmp_path / "gray64.pth")
    z = torch.randn(3, config.latent_dim, generator=torch.Generator().manual_seed(1))
    torch.save(z, tmp_path / "z.pt")
    assert main(["sample", "--model", str(path), "--latents", str(tmp_path / "z.pt"), "--out", str(tmp_path / "o.pt")]) == 0
    out = torch.load(tmp_path / "o.pt", weights_only=True)
    ref = ref_generator(read_checkpoint(path)["avgG"], len(config.depths), z)
    assert out.shape == (3, 1, 64, 64) and (out - ref).abs().max() < 1e-4


def test_every_network_field_is_read(tmp_path):
    config = PGANConfig(latent_dim=10, depths=(8, 8), channels=3, leaky_relu=0.1, pixel_norm=False,
                        minibatch_stddev=True, equalized_lr=False, output_activation="tanh", alpha=0.25)
    model = randomize(PGAN.random(config, seed=0))
    loaded = load_zoo(export_zoo(model, tmp_path / "x.pth"))
    assert loaded.config == config
    z = torch.randn(4, 10)
    assert torch.allclose(loaded.generate(z), model.generate(z), atol=1e-6)
    assert loaded.generate(z).abs().max() <= 1.0  # tanh output (DCGAN/MSE losses)


def test_export_round_trip_keeps_raw_and_average_generators(tmp_path, tiny_model):
    raw = randomize(PGAN.random(tiny_model.config, seed=9), seed=9).generator
    path = export_zoo(tiny_model, tmp_path / "rt.pth", net_g=raw)
    z = tiny_model.sample_latents(4, seed=0)
    assert torch.allclose(load_zoo(path).generate(z), tiny_model.generate(z), atol=1e-6)
    assert torch.allclose(load_zoo(path, generator="netG").generator(z), raw(z), atol=1e-6)
    state = read_checkpoint(path)
    assert isinstance(state["config"], ZooConfig) and state["config"].lossCriterion == "WGANGP"
    with zipfile.ZipFile(path) as zf:  # the zoo's class name, so its own torch.load finds it
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    assert b"models.utils.config" in pkl and b"BaseConfig" in pkl


# -- files that must be refused, clearly ------------------------------------------------------

class _Payload:
    def __init__(self, trace: Path):
        self.trace = trace

    def __reduce__(self):
        return (os.system, (f"touch {self.trace}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_malicious_pickle_refused_and_never_run(tmp_path, legacy):
    trace = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    state = {"config": _Payload(trace), "netG": {}, "netD": {}}
    if legacy:
        path.write_bytes(pickle.dumps(state, protocol=2))
    else:
        torch.save(state, path)
    with pytest.raises(CheckpointError, match="refused.*system"):
        load_zoo(path)
    assert not trace.exists()
    # the same payload really does run under a plain unpickler: the test's trap is armed
    pickle.loads(pickle.dumps(_Payload(trace)))
    assert trace.exists()


def test_truncated_checkpoint(tmp_path):
    data = _fixture_file(CKPT).read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_zoo(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not|empty"):
        load_zoo(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_zoo(tmp_path / "nope.pth")


def test_plain_tensor_file_is_not_a_zoo_checkpoint(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="not a pytorch_GAN_zoo checkpoint"):
        load_zoo(tmp_path / "t.pt")


@pytest.mark.parametrize("arch,config,keys", [
    ("DCGAN", {"dimG": 64, "dimD": 64, "depth": 3, "latentVectorDim": 100}, ["main.0.weight", "formatLayer.weight"]),
    ("StyleGAN", {"nMappings": 8, "phiTruncation": 0.5, "depthScale0": 512}, ["mapping.FC.0.module.weight"]),
])
def test_other_zoo_architectures_refused(tmp_path, arch, config, keys):
    state = {"config": ZooConfig(**config), "netG": {k: torch.zeros(2, 2) for k in keys}, "netD": {}}
    path = save_zoo_state(state, tmp_path / f"{arch}.pth")
    with pytest.raises(CheckpointError, match=f"another architecture \\({arch}\\)"):
        load_zoo(path)


def test_wrong_shapes_are_reported(tmp_path, tiny_model):
    path = export_zoo(tiny_model, tmp_path / "x.pth")
    state = read_checkpoint(path)
    state["avgG"]["formatLayer.module.weight"] = torch.zeros(3, 3)
    save_zoo_state(state, path)
    with pytest.raises(CheckpointError, match="formatLayer|format_layer"):
        load_zoo(path)
