"""The generated C tile transforms (generators.winograd_c): the same maps as winograd.py's
matmuls, adjoint to each other, built once and cached, and a clear fallback when no build."""
from __future__ import annotations

import warnings

import pytest
import torch

from generators import winograd, winograd_c

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(winograd_c.compiler() is None,
                                 reason="no C compiler: the matmul transforms are used (tests/test_winograd.py)")]


def _matrices(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    k_in, k_out, _ = winograd._constants(size, torch.float32, torch.device("cpu"))
    return k_in, k_out


@pytest.mark.parametrize("size", winograd.C_SIZES)
@pytest.mark.parametrize("n, c", [(1, 16), (3, 20), (2, 64), (5, 257), (2, 1)])
def test_maps_equal_the_matmuls_of_winograd_py(size: int, n: int, c: int) -> None:
    """Every channel count: full 64-channel jobs, partial vectors (20, 257) and a single channel."""
    assert winograd_c.available()
    gen = torch.Generator().manual_seed(n * 1000 + c)
    k_in, k_out = _matrices(size)
    t = size // 4
    x = torch.randn(n, c, size, size, generator=gen)
    v = winograd_c.to_tiles(x, f"in{size}")
    assert v.shape == (6, 6, t, t, n, c)
    want = (k_in.double() @ x.double().reshape(n * c, size * size).t()).reshape(v.shape)
    assert torch.allclose(v.double(), want, rtol=0, atol=1e-5 * want.abs().max())
    m, bias = torch.randn(6, 6, t, t, n, c, generator=gen), torch.randn(c, generator=gen)
    y = winograd_c.from_tiles(m, f"out{size}", bias)
    want = (m.double().reshape(36 * t * t, n * c).t() @ k_out.double()).view(n, c, size, size) + bias.double().view(c, 1, 1)
    assert y.shape == (n, c, size, size) and torch.allclose(y.double(), want, rtol=0, atol=1e-5 * want.abs().max())
    assert torch.allclose(winograd_c.from_tiles(m, f"out{size}") + bias.view(c, 1, 1), y, atol=1e-5)


def test_each_map_is_the_others_adjoint_and_autograd_uses_it() -> None:
    """<T x, g> = <x, T* g>, and the gradient of a map (and of its gradient) is that adjoint."""
    gen = torch.Generator().manual_seed(0)
    x, g = torch.randn(3, 40, 8, 8, generator=gen), torch.randn(6, 6, 2, 2, 3, 40, generator=gen)
    lhs = (winograd_c.to_tiles(x, "in8").double() * g.double()).sum()
    rhs = (x.double() * winograd_c.from_tiles(g, "in8_adj").double()).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5)
    xr = x.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(winograd_c.to_tiles(xr, "in8"), xr, g, create_graph=True)
    assert torch.allclose(gx, winograd_c.from_tiles(g, "in8_adj"))
    # second order: d/dg of <gx, x> is to_tiles(x); through from_tiles' backward
    gr = g.clone().requires_grad_(True)
    y = winograd_c.from_tiles(gr, "out8", torch.zeros(40, requires_grad=True))
    (gg,) = torch.autograd.grad((y * x).sum(), gr)
    assert torch.allclose(gg, winograd_c.to_tiles(x, "out8_adj"))


def test_kernel_transform_and_its_gradient_in_either_layout() -> None:
    """G g G^T per 3x3 kernel; the gradient as the batched matmul delivers it (the transpose of a
    contiguous [36, C, O]) and as a plain [36, O, C] give the same weight gradient."""
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(20, 33, 3, 3, generator=gen, requires_grad=True)
    k_w = winograd._constants(8, torch.float32, torch.device("cpu"))[2]
    u = winograd_c.kernel_tiles(w)
    want = (k_w.double() @ w.detach().double().reshape(20 * 33, 9).t()).view(36, 20, 33)
    assert u.shape == (36, 20, 33) and torch.allclose(u.double(), want, atol=1e-5)
    g = torch.randn(36, 33, 20, generator=gen)
    (via_t,) = torch.autograd.grad(winograd_c.kernel_tiles(w), w, g.transpose(1, 2))
    (plain,) = torch.autograd.grad(winograd_c.kernel_tiles(w), w, g.transpose(1, 2).contiguous())
    want = (k_w.double().t() @ g.transpose(1, 2).double().reshape(36, 20 * 33)).t().reshape(20, 33, 3, 3)
    assert torch.allclose(via_t.double(), want, atol=1e-4) and torch.allclose(plain, via_t, atol=1e-5)
    # scale on the output transform: scale * A^T m A + bias, and the adjoint scaled alike
    m = torch.randn(6, 6, 2, 2, 2, 16, generator=gen, requires_grad=True)
    b = torch.randn(16, generator=gen)
    y = winograd_c.from_tiles(m, "out8", b, scale=0.25)
    assert torch.allclose(y, 0.25 * winograd_c.from_tiles(m, "out8") + b.view(16, 1, 1), atol=1e-5)
    gy = torch.randn(2, 16, 8, 8, generator=gen)
    (gm,) = torch.autograd.grad(y, m, gy)
    assert torch.allclose(gm, 0.25 * winograd_c.to_tiles(gy, "out8_adj"), atol=1e-5)


def test_clear_errors_on_bad_input() -> None:
    with pytest.raises(ValueError, match="float32 CPU tensors of 4 dimensions"):
        winograd_c.to_tiles(torch.randn(2, 3, 8, 8, dtype=torch.float64), "in8")
    with pytest.raises(ValueError, match=r"takes \[N, C, 8, 8\]"):
        winograd_c.to_tiles(torch.randn(2, 3, 4, 4), "in8")
    with pytest.raises(ValueError, match=r"takes \[O, C, 3, 3\]"):
        winograd_c.kernel_tiles(torch.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match="and a bias"):
        winograd_c.from_tiles(torch.randn(6, 6, 2, 2, 2, 3), "out8", torch.zeros(4))


def test_built_once_into_the_cache_and_a_failed_build_falls_back(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(winograd_c, "_tried", False)
    monkeypatch.setattr(winograd_c, "_lib", None)
    assert winograd_c.available()
    built = list((tmp_path / "cache").glob("winograd_tiles_*.so"))
    assert len(built) == 1
    monkeypatch.setattr(winograd_c, "_tried", False)
    assert winograd_c.available() and list((tmp_path / "cache").glob("*")) == built  # reused, not rebuilt
    # a compiler that fails: a warning, and conv3x3 at 8x8 falls back to its matmuls
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "other"))
    monkeypatch.setenv("CC", "false")
    monkeypatch.setattr(winograd_c, "_tried", False)
    monkeypatch.setattr(winograd_c, "_lib", None)
    with pytest.warns(UserWarning, match="failed, using matmul transforms"):
        assert not winograd_c.available()
    x, w = torch.randn(2, 5, 8, 8), torch.randn(3, 5, 3, 3)
    want = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    assert torch.allclose(winograd.conv3x3(x, w).double(), want, atol=1e-4)
    monkeypatch.setenv("STUDIO_NO_C", "1")
    monkeypatch.setattr(winograd_c, "_tried", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not winograd_c.available()  # switched off: no build, no warning


def test_step_ab_benchmark_runs_and_leaves_the_savings_on(capsys) -> None:
    from benchmarks import train_step_ab
    from generators import pgan
    fast = pgan.downscale2d
    for toggle in ("c", "pool"):
        assert train_step_ab.main(["--toggle", toggle, "--scale", "0", "--batch", "4", "--pairs", "4", "--threads", "1"]) == 0
        assert "speed-up median" in capsys.readouterr().out
    assert winograd.C_SIZES == (4, 8) and pgan.downscale2d is fast
