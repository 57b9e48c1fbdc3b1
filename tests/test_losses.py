"""SSL losses against values computed by hand on tiny inputs (arithmetic written out below)."""
import math

import pytest
import torch

from encoders.losses import BarlowTwinsLoss, DCLLoss, DirectCLRLoss, InfoNCELoss, VICRegLoss, off_diagonal


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_off_diagonal():
    m = t([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert off_diagonal(m).tolist() == [2, 3, 4, 6, 7, 8]


def test_vicreg_by_hand_variance_term():
    # z1 columns: [0, 2] (unbiased var 2 -> std > 1, no penalty) and [0, 0] (std = sqrt(1e-4) = 0.01,
    # penalty 0.99); mean over 2 dims = 0.495, halved per view, two views -> variance 0.495.
    # invariance: (z1 - z2)^2 = [[0, 1], [0, 1]] -> mean 0.5. Covariances are 0 (a constant column).
    z1, z2 = t([[0, 0], [2, 0]]), t([[0, 1], [2, 1]])
    loss = VICRegLoss()
    terms = loss.terms(z1, z2)
    assert terms["invariance"].item() == pytest.approx(0.5)
    assert terms["variance"].item() == pytest.approx(0.495)
    assert terms["covariance"].item() == pytest.approx(0.0)
    assert loss(z1, z2).item() == pytest.approx(25 * 0.5 + 25 * 0.495)


def test_vicreg_by_hand_covariance_term():
    # columns [1, -1, 0] twice: unbiased var 1 (std sqrt(1.0001) > 1, no penalty); the covariance
    # between the columns is (1 + 1 + 0) / 2 = 1, two off-diagonal entries -> 2 / D = 1 per view.
    z = t([[1, 1], [-1, -1], [0, 0]])
    terms = VICRegLoss().terms(z, z.clone())
    assert terms["invariance"].item() == 0
    assert terms["variance"].item() == 0
    assert terms["covariance"].item() == pytest.approx(2.0)
    assert VICRegLoss(nu=3.0)(z, z.clone()).item() == pytest.approx(6.0)


def test_barlow_by_hand():
    # Each column is [1, -1]: mean 0, biased var 1, so normalised entries are +-1/sqrt(1 + eps) and
    # every C_ij = +-1/(1 + eps). z1 = z2: C = all ones -> on-diagonal ~0, off-diagonal 2 * lambda.
    eps = 1e-5
    c = 1 / (1 + eps)
    z = t([[1, 1], [-1, -1]])
    assert BarlowTwinsLoss()(z, z.clone()).item() == pytest.approx(2 * (1 - c) ** 2 + 0.0051 * 2 * c ** 2)
    # z2 second column flipped: C = [[c, -c], [c, -c]] -> (1 - c)^2 + (1 + c)^2 + lambda * 2c^2
    z2 = t([[1, -1], [-1, 1]])
    assert BarlowTwinsLoss()(z, z2).item() == pytest.approx((1 - c) ** 2 + (1 + c) ** 2 + 0.0051 * 2 * c ** 2)


def test_infonce_by_hand():
    # z = [e1, e2, e1, e2]; each anchor has its partner at cosine 1 and two others at cosine 0:
    # -log(e^(1/T) / (e^(1/T) + 2)) for every anchor.
    z = t([[1, 0], [0, 1]])
    for temp in (1.0, 0.5):
        expected = -1 / temp + math.log(math.exp(1 / temp) + 2)
        assert InfoNCELoss(temp)(z, z.clone()).item() == pytest.approx(expected)
    # scale invariance: embeddings are normalised
    assert InfoNCELoss(0.5)(3 * z, z.clone()).item() == pytest.approx(-2 + math.log(math.exp(2) + 2))


DCL_Z1 = [[1, 0], [0.6, 0.8]]
DCL_Z2 = [[0.6, 0.8], [0, 1]]


def test_dcl_by_hand():
    # T = 1, all vectors unit length. z1 anchors: i=0: -0.6 + lse{0.6} + lse{0} = 0;
    # i=1: -0.8 + lse{0.6} + lse{1} = 0.8 -> mean 0.4. z2 anchors: i=0: -0.6 + 0.8 + 1 = 1.2;
    # i=1: -0.8 + 0.8 + 0 = 0 -> mean 0.6. Symmetrised: (0.4 + 0.6) / 2 = 0.5.
    # (Single-element log-sum-exps are the element itself: the positive is not in the denominator.)
    assert DCLLoss(1.0)(t(DCL_Z1), t(DCL_Z2)).item() == pytest.approx(0.5)


def test_dclw_by_hand():
    # Positive cosines [0.6, 0.8], sigma = 0.5 -> softmax([1.2, 1.6]) = [p, 1 - p], p = 1/(1 + e^0.4);
    # weights w = 2 - 2 * softmax. Both directions have the same weights; summing the four anchor
    # terms of test_dcl_by_hand with the positives weighted: (-1.2 w0 - 1.6 w1 + 4.8) / 4.
    p = 1 / (1 + math.exp(0.4))
    w0, w1 = 2 - 2 * p, 2 - 2 * (1 - p)
    assert DCLLoss(1.0, sigma=0.5)(t(DCL_Z1), t(DCL_Z2)).item() == pytest.approx((-1.2 * w0 - 1.6 * w1 + 4.8) / 4)


def test_directclr_uses_only_first_d0_dims():
    z = t([[1, 0, 5], [0, 1, -3]])
    loss = DirectCLRLoss(d0=2, temperature=1.0)
    assert loss(z, z.clone()).item() == pytest.approx(-1 + math.log(math.e + 2))
    z1 = z.clone().requires_grad_(True)
    loss(z1, z.clone() + t([[0, 0, 9], [0, 0, 1]])).backward()
    assert z1.grad[:, 2].abs().max().item() == 0  # the rest of the representation is untouched


@pytest.mark.parametrize("loss", [VICRegLoss(), BarlowTwinsLoss(), InfoNCELoss(), DCLLoss(), DCLLoss(sigma=0.5),
                                  DirectCLRLoss(d0=2)])
def test_shape_checks(loss):
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        loss(torch.zeros(4, 3, 2), torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        loss(torch.zeros(1, 3), torch.zeros(1, 3))


def test_directclr_d0_larger_than_representation():
    with pytest.raises(ValueError, match="fewer than d0"):
        DirectCLRLoss(d0=8)(torch.randn(4, 3), torch.randn(4, 3))


@pytest.mark.parametrize("loss", [VICRegLoss(), BarlowTwinsLoss(), InfoNCELoss(), DCLLoss(), DCLLoss(sigma=0.5)])
def test_losses_are_differentiable_and_finite(loss):
    z1 = torch.randn(8, 4, requires_grad=True)
    value = loss(z1, z1.detach() + 0.1 * torch.randn(8, 4))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z1.grad).all()
