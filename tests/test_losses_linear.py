"""Linear SSL against closed-form optima (Balestriero & LeCun 2022: linear VICReg, Barlow Twins and
SimCLR reduce to spectral embedding problems).

Set-up. Paired views x1, x2 in R^p (rows of X1, X2), symmetrised ((a, b) and (b, a) both present)
and centred, so the views have the same second moment S = X1'X1/N and a symmetric cross moment
C = X1'X2/N. A linear encoder z = W x, W in R^{d x p}.

Derivation. Solve the generalised eigenproblem C v = rho S v (S = L L', M = L^-1 C L^-T = U diag U',
V = L^-T U), so V'SV = I and V'CV = diag(rho); take W* = the d rows v_k' with the largest rho.

* Barlow Twins. The batch-normalised z has per-dimension biased variance w'Sw = 1, so the
  cross-correlation is W*CW*'/(1 + eps) = diag(rho)/(1 + eps): off-diagonal 0 and
  loss(W*) = sum_k (1 - rho_k/(1 + eps))^2, exactly. W* is a stationary point: each C_kk is a
  Rayleigh quotient at an eigenvector and the off-diagonal terms enter squared at 0. When the
  views share a d-dim subspace exactly (rho = 1 there) this is the global minimum, 0.
* VICReg. Scale the rows so the unbiased variance is 1 (w'Sw = c = (N-1)/N). Covariance term 0
  (W*SW*' is diagonal), variance term 0 (std = sqrt(1 + 1e-4) > 1), and invariance
  = (1/d) sum_k w_k'(2S - 2C)w_k, so loss(W*) = lambda * 2c/d * sum_k e_k with e_k = 1 - rho_k.
  W* solves the hard-constrained problem (min tr(W(S - C)W') s.t. WSW' = I: the d smallest
  generalised eigenvalues of (S - C, S)). The penalty form trades a little correlation for
  invariance: for d = 2, with whitened unit rows a1, a2 in span(v1, v2) tilted symmetrically so
  that a1.a2 = u, invariance = lambda * c * (e1 + e2 - (e2 - e1) u) and covariance = 2 nu u^2, so
  the optimum is u* = B / (4 nu), B = lambda c (e2 - e1), and loss* = loss(W*) - B^2 / (8 nu).
  (The unit-variance constraint stays active while 4 lambda e_k < mu, i.e. e_k < 1/4, and mixing
  in v3 costs lambda c (e3 - e1) >> B: both hold for the data below.)
* SimCLR / DCL / DirectCLR. Normalised embeddings only see directions; an embedding that gives
  weight to a component the views do not share lowers every positive cosine. With an exactly
  shared subspace plus independent per-view noise, the optimum lies in the shared subspace.
"""
import math

import pytest
import torch

from encoders.losses import BarlowTwinsLoss, DCLLoss, DirectCLRLoss, InfoNCELoss, VICRegLoss

P, D = 5, 2


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def paired_views(n: int, signal: list[float], noise: list[float], seed: int = 0):
    """x_v = s + n_v with s ~ N(0, diag(signal)) shared and n_v ~ N(0, diag(noise)) per view."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, P, generator=g, dtype=torch.float64) * torch.tensor(signal, dtype=torch.float64).sqrt()
    mix = torch.linalg.qr(torch.randn(P, P, generator=g, dtype=torch.float64))[0]  # rotate: not axis-aligned
    a = (s + torch.randn(n, P, generator=g, dtype=torch.float64) * torch.tensor(noise).sqrt()) @ mix
    b = (s + torch.randn(n, P, generator=g, dtype=torch.float64) * torch.tensor(noise).sqrt()) @ mix
    x1, x2 = torch.cat([a, b]), torch.cat([b, a])  # symmetrised
    mean = x1.mean(0)
    return x1 - mean, x2 - mean


def spectral_solution(x1, x2):
    """(rho descending, V with columns v_k: V'SV = I, V'CV = diag(rho))."""
    n = len(x1)
    s, c = x1.T @ x1 / n, x1.T @ x2 / n
    chol = torch.linalg.cholesky(s)
    li = torch.linalg.inv(chol)
    rho, u = torch.linalg.eigh(li @ c @ li.T)
    v = li.T @ u
    order = rho.argsort(descending=True)
    return rho[order], v[:, order]


def principal_sines(w_a, w_b, s):
    """Largest sine of the principal angles between the row spaces of two W's (S-inner product)."""
    def basis(w):
        q = torch.linalg.cholesky(s).T @ w.T
        return torch.linalg.qr(q)[0]
    cos = torch.linalg.svdvals(basis(w_a).T @ basis(w_b)).clamp(max=1)
    return float((1 - cos.min() ** 2).sqrt())


def descend(loss_fn, x1, x2, steps: int, lr: float, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    w = (0.3 * torch.randn(D, P, generator=g, dtype=torch.float64)).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    for i in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (0.5 * (1 + math.cos(math.pi * i / steps)) + 0.01)
        opt.zero_grad()
        loss = loss_fn(x1 @ w.T, x2 @ w.T)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return w.detach(), float(loss_fn(x1 @ w.T, x2 @ w.T))


NOISY = dict(signal=[4.0, 3.0, 1.0, 0.5, 0.3], noise=[0.1, 0.2, 0.6, 0.8, 0.9])  # rho ~ 0.97, 0.94, ...


def test_barlow_closed_form_value_and_stationarity():
    x1, x2 = paired_views(200, **NOISY)
    rho, v = spectral_solution(x1, x2)
    w = v[:, :D].T.clone().requires_grad_(True)
    loss = BarlowTwinsLoss()(x1 @ w.T, x2 @ w.T)
    c = rho[:D] / (1 + 1e-5)
    assert loss.item() == pytest.approx(float(((1 - c) ** 2).sum()), rel=1e-9)
    exact = BarlowTwinsLoss(eps=0.0)  # without the eps that guards the normalisation: exactly stationary
    exact(x1 @ w.T, x2 @ w.T).backward()
    assert w.grad.abs().max().item() < 1e-10
    # other directions do worse: any other pair of generalised eigenvectors
    worse = v[:, [0, 2]].T
    assert BarlowTwinsLoss()(x1 @ worse.T, x2 @ worse.T).item() > loss.item()


def test_vicreg_closed_form_value():
    x1, x2 = paired_views(200, **NOISY)
    n = len(x1)
    rho, v = spectral_solution(x1, x2)
    w = v[:, :D].T * math.sqrt((n - 1) / n)  # unbiased variance exactly 1
    expected = 25 * 2 * (n - 1) / (n * D) * float((1 - rho[:D]).sum())
    assert VICRegLoss()(x1 @ w.T, x2 @ w.T).item() == pytest.approx(expected, rel=1e-9)


def test_vicreg_penalty_optimum_closed_form():
    x1, x2 = paired_views(200, **NOISY)
    n = len(x1)
    c = (n - 1) / n
    rho, v = spectral_solution(x1, x2)
    e = 1 - rho
    assert e[:D].max() < 0.25 and e[2] - e[0] > 4 * (e[1] - e[0])  # the conditions in the docstring
    loss = VICRegLoss()
    w_star = v[:, :D].T * math.sqrt(c)
    b = 25 * c * float(e[1] - e[0])
    u = b / 4
    # rows of the optimum: angles +-psi from the bisector of v1 and v2 with cos(2 psi) = u
    psi = math.acos(u) / 2
    a = torch.tensor([[math.cos(psi), math.sin(psi)], [math.cos(psi), -math.sin(psi)]], dtype=torch.float64)
    w_opt = a @ w_star
    assert loss(x1 @ w_opt.T, x2 @ w_opt.T).item() == pytest.approx(loss(x1 @ w_star.T, x2 @ w_star.T).item()
                                                                   - b * b / 8, rel=1e-4)
    optimum = loss(x1 @ w_opt.T, x2 @ w_opt.T).item()
    # a local minimum: no small perturbation does better
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        dw = 1e-3 * torch.randn(D, P, generator=g, dtype=torch.float64)
        assert loss(x1 @ (w_opt + dw).T, x2 @ (w_opt + dw).T).item() > optimum - 1e-9
    # and gradient descent from a random start arrives there, not lower
    w, found = descend(loss, x1, x2, steps=400, lr=0.05)
    assert optimum - 1e-6 < found < optimum * 1.01
    s = x1.T @ x1 / n
    assert principal_sines(w, w_star, s) < 0.05  # the top-2 spectral subspace
    z = x1 @ w.T
    assert abs(float(torch.corrcoef(z.T)[0, 1].abs()) - u) < 0.02


EXACT = dict(signal=[3.0, 2.0, 0.0, 0.0, 0.0], noise=[0.0, 0.0, 1.0, 1.0, 1.0])  # 2 shared dims, 3 nuisance


def _nuisance_fraction(w, x1, x2):
    """Fraction of the embedding's variance that differs between views (0 = fully invariant)."""
    z1, z2 = x1 @ w.T, x2 @ w.T
    return float((z1 - z2).pow(2).sum() / (2 * (z1.pow(2).sum() + z2.pow(2).sum())))


def test_barlow_exactly_shared_subspace_reaches_zero():
    x1, x2 = paired_views(100, **EXACT)
    w, found = descend(BarlowTwinsLoss(), x1, x2, steps=300, lr=0.05)
    assert found < 1e-3
    assert _nuisance_fraction(w, x1, x2) < 5e-3


@pytest.mark.parametrize("loss", [InfoNCELoss(0.2), DCLLoss(0.2), DCLLoss(0.2, sigma=0.5)],
                         ids=["simclr", "dcl", "dclw"])
def test_contrastive_optimum_lies_in_the_shared_subspace(loss):
    x1, x2 = paired_views(48, **EXACT)
    g = torch.Generator().manual_seed(1)
    w0 = 0.3 * torch.randn(D, P, generator=g, dtype=torch.float64)
    assert _nuisance_fraction(w0, x1, x2) > 0.1
    w, _ = descend(loss, x1, x2, steps=150, lr=0.1)
    assert _nuisance_fraction(w, x1, x2) < 0.02


def test_directclr_optimum_lies_in_the_shared_subspace():
    x1, x2 = paired_views(48, **EXACT)
    w, _ = descend(DirectCLRLoss(d0=D, temperature=0.2), x1, x2, steps=150, lr=0.1)
    assert _nuisance_fraction(w, x1, x2) < 0.02
