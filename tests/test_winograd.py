"""Winograd F(4x4, 3x3) convolutions (generators.winograd): F.conv2d's results, gradients and
second derivatives up to float32 rounding, and the switch the trainer uses."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generators import winograd, winograd_c
from generators.pgan import Discriminator, Generator, PGANConfig, use_winograd

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(params=["c", "matmul"])
def transforms(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with Winograd's transforms as generated C (`winograd_c`) and as matmuls."""
    if request.param == "c":
        if not winograd_c.available():
            pytest.skip("no C compiler here: conv3x3 uses its matmul transforms (tested with the other param)")
    else:
        monkeypatch.setattr(winograd, "C_SIZES", ())
    return request.param


def _close(got: torch.Tensor, want: torch.Tensor, rel: float = 2e-5) -> None:
    """`got` (float32) within `rel` of `want`'s largest magnitude (float64 direct convolution)."""
    err = (got.double() - want).abs().max() / want.abs().max()
    assert err < rel, f"relative error {err:.2e}"


@pytest.mark.parametrize("size", winograd.SIZES)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_forward_matches_the_direct_convolution(size: int, layout: torch.memory_format, transforms: str) -> None:
    gen = torch.Generator().manual_seed(size)
    x = torch.randn(5, 33, size, size, generator=gen).contiguous(memory_format=layout)
    w, b = torch.randn(7, 33, 3, 3, generator=gen) * 0.1, torch.randn(7, generator=gen)
    want = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    y = winograd.conv3x3(x, w, b)
    assert y.shape == want.shape and y.dtype == torch.float32 and y.is_contiguous()
    _close(y, want)
    _close(winograd.conv3x3(x, w), F.conv2d(x.double(), w.double(), padding=1))  # no bias
    _close(winograd.conv3x3(x, w, b, weight_scale=0.3), F.conv2d(x.double(), 0.3 * w.double(), b.double(), padding=1))


@pytest.mark.parametrize("size", winograd.SIZES)
def test_first_and_second_derivatives_match(size: int, transforms: str) -> None:
    """The gradient penalty differentiates the input gradient again, with respect to the weights."""
    gen = torch.Generator().manual_seed(10 + size)
    x0 = torch.randn(4, 16, size, size, generator=gen)
    w0, b0 = torch.randn(12, 16, 3, 3, generator=gen) * 0.1, torch.randn(12, generator=gen)
    out_grad = torch.randn(4, 12, size, size, generator=gen)

    def derivatives(conv, dtype):
        x, w, b = (t.to(dtype).requires_grad_(True) for t in (x0, w0, b0))
        y = conv(torch.tanh(x), w, b)  # tanh: the second derivative also reaches x
        gx, gw, gb = torch.autograd.grad(y, (x, w, b), out_grad.to(dtype), create_graph=True)
        penalty = gx.square().sum()
        ggx, ggw = torch.autograd.grad(penalty, (x, w))
        return y, gx, gw, gb, ggx, ggw

    direct = derivatives(lambda x, w, b: F.conv2d(x, w, b, padding=1), torch.float64)
    ours = derivatives(winograd.conv3x3, torch.float32)
    for name, got, want in zip(("y", "dx", "dw", "db", "d2x", "d2w"), ours, direct):
        assert got.shape == want.shape, name
        _close(got.detach(), want.detach(), rel=5e-5)


def test_supported_inputs_and_clear_errors() -> None:
    w = torch.randn(4, 3, 3, 3)
    assert winograd.supports(torch.randn(2, 3, 8, 8), w)
    assert not winograd.supports(torch.randn(2, 3, 16, 16), w)  # costs more than it saves there
    assert not winograd.supports(torch.randn(2, 3, 8, 4), w)
    assert not winograd.supports(torch.randn(2, 3, 8, 8), torch.randn(4, 3, 1, 1))
    assert not winograd.supports(torch.randn(2, 3, 8, 8, dtype=torch.bfloat16), w.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not winograd.supports(torch.randn(2, 3, 8, 8), w)
    with pytest.raises(ValueError, match="float32 \\[N, C, S, S\\] with S in"):
        winograd.conv3x3(torch.randn(2, 3, 16, 16), w)
    with pytest.raises(ValueError, match="input has 5 channels, the kernel expects 3"):
        winograd.conv3x3(torch.randn(2, 5, 8, 8), w)


def test_networks_switched_to_winograd_compute_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both networks at 16x16 (4x4 and 8x8 by Winograd, 16x16 and the 1x1 layers direct)."""
    cfg = PGANConfig(latent_dim=8, depths=(32, 16, 8), channels=1, alpha=0.3)
    torch.manual_seed(0)
    g, d = Generator(cfg), Discriminator(cfg)
    z = torch.randn(8, 8)
    images, scores = g(z), d(torch.tanh(g(z)))
    calls, real = [], winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda x, *a, **kw: calls.append(x.shape[-1]) or real(x, *a, **kw))
    use_winograd(g), use_winograd(d)
    images_w, scores_w = g(z), d(torch.tanh(g(z)))
    # G: scale0 at 4x4, two convs at 8x8 (run twice: images, then images for D); D: two at 8x8 and
    # its 4x4 conv on the minibatch-stddev channel
    assert sorted(set(calls)) == [4, 8] and len(calls) == 2 * 3 + 3
    _close(images_w, images.double(), rel=1e-4)
    _close(scores_w, scores.double(), rel=1e-4)
    use_winograd(g, False)
    assert not any(getattr(m, "winograd", False) for m in g.modules())
