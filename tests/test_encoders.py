"""Encoders: backbone on any input, IRMAE, augmentations, weight format, diagnostics, training."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from encoders import IRMAE, Encoder, EncoderConfig, UnknownEncoderError, adapt_images, load_encoder, save_encoder
from encoders.augment import Augment, preset
from encoders.config import pooled_dim
from encoders.diagnostics import effective_rank, embed, knn_accuracy, linear_probe, singular_spectrum, tuned_linear_probe
from encoders.train import EncoderTrainConfig, train_encoder
from studio.data import TensorStream

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


TINY = dict(resolution=16, width=8, dim=16, projector_dim=32, directclr_dims=8)


def tiny(method: str = "vicreg", **kw) -> EncoderConfig:
    return EncoderConfig(method=method, **{**TINY, **kw})


def test_adapt_images_converts_channels_and_size():
    rgb = torch.zeros(2, 3, 20, 30)
    rgb[:, 0] = 1.0  # pure red, in [-1, 1] terms: R = 1, G = B = 0
    gray = adapt_images(rgb, channels=1, resolution=8)
    assert gray.shape == (2, 1, 8, 8)
    assert torch.allclose(gray, torch.full_like(gray, 0.299))
    back = adapt_images(gray, channels=3, resolution=16)
    assert back.shape == (2, 3, 16, 16) and torch.allclose(back[:, 0], back[:, 2])
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        adapt_images(torch.zeros(3, 8, 8), channels=1, resolution=8)


@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (3, 3, 64, 64), (1, 4, 25, 40), (2, 1, 8, 8)])
def test_encoder_takes_any_size_and_channels(shape):
    enc = Encoder(tiny()).eval()
    x = (torch.rand(shape) * 2 - 1).requires_grad_(True)
    f = enc(x)
    assert f.shape == (shape[0], 16)
    f.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradient search can flow through it


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_pooled_head_dim_and_round_trip(tmp_path, resolution):
    cfg = tiny(resolution=resolution, head="pooled", dim=pooled_dim(8))  # 4 * (32 + 16) = 192
    enc = Encoder(cfg).eval()
    assert not any(k.startswith("backbone.fc") for k in enc.state_dict())  # the head has no weights
    x = torch.rand(3, 3, 40, 40) * 2 - 1
    assert enc(x).shape == (3, 192)
    assert torch.allclose(load_encoder(save_encoder(enc, tmp_path / "p"))(x), enc(x))
    with pytest.raises(ValueError, match="pooled head of width 8 gives dim 192"):
        tiny(head="pooled", dim=16)
    with pytest.raises(ValueError, match="unknown head"):
        tiny(head="gap")
    assert EncoderConfig.from_dict({k: v for k, v in tiny().to_dict().items() if k != "head"}).head == "linear"


def test_multiscale_head_reads_the_means_of_both_maps():
    cfg = tiny(resolution=32, head="multiscale", dim=pooled_dim(8, "multiscale"))
    assert cfg.dim == 32 * (1 + 4) + 16 * (4 + 16) == 480
    enc = Encoder(cfg).eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    f = enc(x)
    upper = enc.backbone.features[:-2](x)
    last = enc.backbone.features[-2:](upper)
    assert torch.allclose(f[:, :32], last.mean((2, 3)), atol=1e-6)  # the last map's global mean first
    assert torch.allclose(f[:, -256:], F.avg_pool2d(upper, 2).flatten(1), atol=1e-6)  # 4 x 4 pools of 8 x 8
    with pytest.raises(ValueError, match="multiscale head of width 8 gives dim 480"):
        tiny(head="multiscale", dim=192)


def test_irmae_linear_layers_and_plain_autoencoder():
    model = IRMAE(tiny("irmae", irmae_layers=3))
    linears = list(model.encoder.linear)
    assert len(linears) == 3 and all(m.bias is None for m in linears)
    assert len(IRMAE(tiny("irmae", irmae_layers=0)).encoder.linear) == 0
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    assert model.reconstruct(x).shape == (4, 1, 16, 16)
    with pytest.raises(ValueError, match="irmae"):
        IRMAE(tiny("vicreg"))


def test_irmae_learns_to_reconstruct():
    torch.manual_seed(0)
    model = IRMAE(tiny("irmae", irmae_layers=2))
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = model.loss(x).item()
    for _ in range(30):
        opt.zero_grad()
        loss = model.loss(x)
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_augment_is_seeded_and_keeps_shape_and_range():
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    a = Augment(preset("faces"), seed=3)(x)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, Augment(preset("faces"), seed=3)(x))
    assert not torch.equal(a, Augment(preset("faces"), seed=4)(x))
    rgb = Augment(preset("textures"), seed=0)(torch.rand(4, 3, 16, 16) * 2 - 1)
    assert rgb.shape == (4, 3, 16, 16)
    assert preset("my-folder") == preset("generic")


def test_save_load_round_trip(tmp_path):
    enc = Encoder(tiny("irmae", irmae_layers=2)).eval()
    enc.feature_std.fill_(2.0)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    path = save_encoder(enc, tmp_path / "e", info={"data": "test"})
    loaded = load_encoder(path)
    assert loaded.config == enc.config and loaded.info["data"] == "test"
    assert torch.allclose(loaded(x), enc(x)) and float(loaded.feature_std[0]) == 2.0
    half = load_encoder(save_encoder(enc, tmp_path / "h", half=True))
    with torch.no_grad():
        assert torch.allclose(half(x), enc(x), atol=0.05 * float(enc(x).abs().max()))
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * path.stat().st_size


def test_load_refuses_bad_files(tmp_path):
    with pytest.raises(UnknownEncoderError, match="unknown encoder 'no-such-id'"):
        load_encoder("no-such-id")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a studio encoder"):
        load_encoder(tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match="unknown keys"):
        EncoderConfig.from_dict({**tiny().to_dict(), "surprise": 1})
    with pytest.raises(ValueError, match="unknown method"):
        EncoderConfig(method="moco")


def test_effective_rank_and_spectrum():
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(2000, 8, generator=g)
    assert effective_rank(iso) > 7.5
    line = torch.randn(500, 1, generator=g) * torch.ones(1, 8)
    assert effective_rank(line) < 1.1
    s = singular_spectrum(iso)
    assert s.shape == (8,) and abs(float(s.sum()) - 1) < 1e-5 and bool((s[:-1] >= s[1:]).all())


def test_probe_and_knn_on_separable_data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 5, generator=g) + 4 * y[:, None].float()
    assert linear_probe(x[:100], y[:100], x[100:], y[100:]) == 1.0
    assert knn_accuracy(x[:100], y[:100], x[100:], y[100:], k=5) == 1.0
    assert embed(Encoder(tiny()), torch.zeros(3, 1, 16, 16, dtype=torch.uint8)).shape == (3, 16)


def test_tuned_probe_prefers_the_penalty_that_generalises():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    x = torch.randn(400, 60, generator=g)
    x[:, 0] += 1.5 * (2 * y.float() - 1)  # one weak informative direction among 59 noise ones
    acc, wd = tuned_linear_probe(x[:100], y[:100], x[100:], y[100:], weight_decays=(1e-6, 1.0), val_fraction=0.3)
    # few rows, many noise dimensions: the strong penalty wins on held-out training rows, and on the test rows
    assert wd == 1.0 and acc > linear_probe(x[:100], y[:100], x[100:], y[100:], weight_decay=1e-6)
    with pytest.raises(ValueError, match="val_fraction"):
        tuned_linear_probe(x, y, x, y, val_fraction=1.0)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["vicreg", "irmae"])
def test_training_resumes_exactly(tmp_path, method):
    images = torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8)
    cfg, train = tiny(method), EncoderTrainConfig(steps=4, batch_size=8, checkpoint_every=2, warmup=1, augment="faces")
    straight = train_encoder(cfg, TensorStream(images, seed=1), train=train, out_dir=tmp_path / "a", progress=False)

    def stop(step, loss):
        if step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_encoder(cfg, TensorStream(images, seed=1), train=train, out_dir=tmp_path / "b", progress=False,
                      on_step=stop)
    resumed = train_encoder(cfg, TensorStream(images, seed=1), train=train, out_dir=tmp_path / "b", progress=False,
                            calibration_images=images[:10].float() / 127.5 - 1)
    assert resumed.losses == straight.losses
    calibrated = ("feature_std", "pair_median")  # set from calibration images, given to one run only
    for (k, a), b in zip(straight.encoder.state_dict().items(), resumed.encoder.state_dict().values()):
        assert k in calibrated or torch.equal(a, b), k
    meta = json.loads((tmp_path / "b" / "encoder.json").read_text())
    assert meta["train"]["steps"] == 4 and meta["calibration"]["pair_median"] > 0
    if method == "irmae":
        assert meta["reconstruction_mse"] > 0


def test_resume_refuses_another_config(tmp_path):
    images = torch.randint(0, 256, (16, 1, 16, 16), dtype=torch.uint8)
    train = EncoderTrainConfig(steps=2, batch_size=4, checkpoint_every=1, warmup=1)
    train_encoder(tiny(), TensorStream(images), train=train, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another encoder config"):
        train_encoder(tiny(dim=24), TensorStream(images), train=train, out_dir=tmp_path, progress=False)
