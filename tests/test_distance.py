"""Distance: normalised terms, weights, differentiability, mismatched targets."""
import pytest
import torch

from encoders import Distance, Encoder, EncoderConfig, UnknownEncoderError, calibrate
from encoders.distance import pair_median, pixel_term

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


CFG = EncoderConfig(method="vicreg", resolution=16, width=8, dim=16, projector_dim=32, directclr_dims=8)


def real_images(n=40, channels=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    enc = Encoder(CFG).eval()
    calibrate(enc, real_images(), pairs=200)
    return enc


def test_pixel_term_is_normalised_mse():
    ref = real_images()
    d = Distance({"pixel": 1.0}, reference_images=ref, pairs=200)
    x, t = ref[:5], ref[5:6]
    expected = (x - t).pow(2).flatten(1).mean(1) / d.medians["pixel"]
    assert torch.allclose(d(x, t), expected)
    assert d(t, t).item() == 0
    # by construction, the median over the same random pairs of real images is 1
    assert pair_median(lambda a, b: d(a, b[0]), ref, pairs=200) == pytest.approx(1.0)


def test_calibrated_encoder_term_has_unit_median(encoder):
    ref = real_images()
    d = Distance({"enc": 1.0}, encoders={"enc": encoder})
    assert d.medians["enc"] == pytest.approx(float(encoder.pair_median))
    assert pair_median(lambda a, b: d(a, b[0]), ref, pairs=200) == pytest.approx(1.0, rel=1e-4)
    assert encoder.info["pixel_pair_median"] == pytest.approx(
        pair_median(pixel_term, ref, pairs=200), rel=1e-5)


def test_weighted_sum_of_terms(encoder):
    d = Distance({"pixel": 1.0, "enc": 0.5}, encoders={"enc": encoder})
    x, t = real_images(4, seed=1), real_images(1, seed=2)
    terms = d.terms(x, t)
    assert set(terms) == {"pixel", "enc"} and all(v.shape == (4,) for v in terms.values())
    assert torch.allclose(d(x, t), terms["pixel"] + 0.5 * terms["enc"])
    # without reference images the pixel median comes from the encoder's calibration
    assert d.medians["pixel"] == pytest.approx(encoder.info["pixel_pair_median"])


def test_differentiable_with_respect_to_images(encoder):
    d = Distance({"pixel": 1.0, "enc": 1.0}, encoders={"enc": encoder})
    x = real_images(3, seed=1).requires_grad_(True)
    d(x, real_images(1, seed=2)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())  # the encoder stays frozen


def test_target_of_another_size_and_channel_count(encoder):
    d = Distance({"pixel": 1.0, "enc": 1.0}, encoders={"enc": encoder})
    images = real_images(2, channels=1, size=32)
    upload = torch.rand(3, 50, 70) * 2 - 1  # an RGB upload, not square, no batch dimension
    out = d(images, upload)
    assert out.shape == (2,) and torch.isfinite(out).all()
    gray_images = real_images(2, channels=3, size=16)
    assert d(gray_images, real_images(1, channels=1, size=64)).shape == (2,)


def test_errors():
    with pytest.raises(ValueError, match="at least one term"):
        Distance({})
    with pytest.raises(ValueError, match=">= 0"):
        Distance({"pixel": -1.0})
    with pytest.raises(UnknownEncoderError, match="unknown encoder 'nope'"):
        Distance({"nope": 1.0})
    d = Distance({"pixel": 1.0})
    with pytest.raises(ValueError, match="one image"):
        d(real_images(2), real_images(2))
