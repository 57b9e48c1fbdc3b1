"""Objective, gradient and nevergrad searches, registry, NaN safety and cancel, on tiny models."""
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from generators import PGAN, PGANConfig
from optimizers import (SEARCHES, GradientSearch, LinearizedRealism, NevergradSearch, Objective, ProgressEvent,
                        SearchResult, STUDIO_REALISM, Weights, default_realism, make_search, pixel_distance,
                        realism_spread, spread_unit)
from optimizers.gradient import Adam

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model():
    return PGAN.random(PGANConfig(latent_dim=8, depths=(8, 4)), seed=0)  # 8x8 grayscale


@pytest.fixture(scope="module")
def target(model):
    return model.generate(model.sample_latents(1, seed=123))  # reachable: loss can go to ~0


class NaNGenerator:
    """A generator whose images are NaN wherever z[:, 0] > 0 (no discriminator)."""

    latent_dim, resolution, channels = 4, 4, 1

    def generate(self, z):
        img = z.sum(dim=1).view(-1, 1, 1, 1).expand(-1, 1, 4, 4) * 0.1
        return torch.where((z[:, 0] > 0).view(-1, 1, 1, 1), torch.full_like(img, math.nan), img)


def test_objective_terms_match_reference_formula(model, target):
    z = model.sample_latents(3, seed=1)
    loss, terms = Objective(model, target)(z)
    images = model.generate(z)
    prior = ((z ** 2).mean(dim=1) - 1) ** 2
    dist = ((images - target) ** 2).flatten(1).mean(dim=1)
    realism = -torch.stack([model.realism(images[i:i + 1])[0] for i in range(3)])  # one image at a time
    torch.testing.assert_close(terms["prior"], prior)
    torch.testing.assert_close(terms["distance"], dist)
    torch.testing.assert_close(terms["realism"], realism, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, dist + prior + 0.03 * realism, atol=1e-5, rtol=1e-5)


def test_objective_rows_are_independent_of_the_batch(model, target):
    # the discriminator's minibatch-stddev must not couple restarts
    z = model.sample_latents(4, seed=2)
    objective = Objective(model, target)
    together = objective(z)[0]
    alone = torch.cat([objective(z[i:i + 1])[0] for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_adam_is_torch_optims_update():
    torch.manual_seed(0)
    z = torch.randn(3, 5, requires_grad=True)
    ref = z.detach().clone().requires_grad_(True)
    ours, theirs = Adam(z, lr=0.3, betas=(0.9, 0.99)), torch.optim.Adam([ref], lr=0.3, betas=(0.9, 0.99))
    for step in range(20):
        for x in (z, ref):
            x.grad = None
            ((x - step / 10) ** 4).sum().backward()
        ours.step(z, z.grad)
        theirs.step()
        if step == 10:
            ours.lr = theirs.param_groups[0]["lr"] = 0.05
    torch.testing.assert_close(z, ref, atol=1e-6, rtol=1e-5)
    ours.keep_rows(torch.tensor([2, 0]))
    assert ours.exp_avg.shape == (2, 5) and ours.steps == 20


def test_linearized_realism_is_exact_on_a_refresh_and_first_order_between(model, target):
    objective = Objective(model, target)
    lazy = LinearizedRealism(every=3)
    z = model.sample_latents(2, seed=5).requires_grad_(True)
    loss, terms = objective(z, realism=lazy)  # call 0: a refresh, exact value and gradient
    exact_loss, exact_terms = Objective(model, target)(z)
    torch.testing.assert_close(terms["realism"], exact_terms["realism"], atol=1e-5, rtol=1e-5)
    (g_lazy,) = torch.autograd.grad(loss.sum(), z)
    (g_exact,) = torch.autograd.grad(exact_loss.sum(), z)
    torch.testing.assert_close(g_lazy, g_exact, atol=1e-5, rtol=1e-4)
    # calls 1 and 2 linearize around the refresh: r0 + <g, x - x0>, close for a small move, not equal
    z2 = (z.detach() + 1e-3 * torch.randn_like(z)).requires_grad_(True)
    _, moved = objective(z2, realism=lazy)
    with torch.no_grad():
        _, exact_moved = objective(z2)
    torch.testing.assert_close(moved["realism"].detach(), exact_moved["realism"], atol=1e-3, rtol=1e-3)
    assert lazy.calls == 2
    with torch.no_grad():  # without gradients D scores exactly and the schedule does not advance
        objective(z2, realism=lazy)
    assert lazy.calls == 2
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="realism_every"):
            LinearizedRealism(bad)


def test_gradient_search_with_lazy_realism_reports_the_exact_loss(model, target):
    search = make_search("gradient", Objective(model, target), budget=12, batch=2, seed=0, realism_every=4)
    result = search.run()
    with torch.no_grad():
        loss, terms = Objective(model, target)(result.latent)
    assert result.loss == pytest.approx(float(loss[0]), rel=1e-6)
    assert result.terms["realism"] == pytest.approx(float(terms["realism"][0]), rel=1e-6)


def test_realism_unit_scales_only_the_realism_term(model, target):
    z = model.sample_latents(3, seed=4)
    raw_loss, raw = Objective(model, target)(z)
    loss, terms = Objective(model, target, realism_unit=4.0)(z)
    torch.testing.assert_close(terms["realism"], raw["realism"] / 4.0)
    torch.testing.assert_close(terms["distance"], raw["distance"])
    torch.testing.assert_close(loss, raw_loss - 0.03 * raw["realism"] * 0.75, atol=1e-6, rtol=1e-5)
    assert Objective(model, target, realism_unit=4.0).with_weights(Weights(prior=0.5)).realism_unit == 4.0
    for bad in (0, -1.0, math.inf, math.nan, "2"):
        with pytest.raises(ValueError, match="realism_unit"):
            Objective(model, target, realism_unit=bad)


def test_realism_spread_is_the_std_of_d_over_the_models_own_samples(model):
    z = torch.randn(40, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        scores = torch.stack([model.realism(model.generate(z[i:i + 1]))[0] for i in range(40)])  # one at a time
    assert realism_spread(model, samples=40, seed=5) == pytest.approx(float(scores.std()), rel=1e-4)
    assert realism_spread(NaNGenerator()) is None  # no discriminator, no unit
    assert spread_unit(model) == realism_spread(model) and spread_unit(NaNGenerator()) == 1.0
    assert spread_unit(model, needed=False) == 1.0  # no realism term: D is not evaluated


def test_default_realism_is_the_models_own_from_its_sidecar(model, tmp_path):
    assert default_realism(model) == STUDIO_REALISM  # no setting: the studio's weight
    model.save(tmp_path / "m.safetensors", info={"inspire": {"realism": 0.005}})
    assert default_realism(PGAN.load(tmp_path / "m.safetensors")) == 0.005  # travels with the weights
    for bad in (-0.1, math.nan, "0.5", True, None):
        copy = PGAN.load(tmp_path / "m.safetensors")
        copy.info["inspire"] = {"realism": bad}
        assert default_realism(copy) == STUDIO_REALISM
    assert default_realism(NaNGenerator()) == 0.0  # no discriminator: no realism term to weigh


def test_objective_weights_and_gradients(model, target):
    z = model.sample_latents(2, seed=3).requires_grad_(True)
    objective = Objective(model, target, weights=Weights(distance=2.0, prior=0.0, realism=0.0))
    loss, terms = objective(z)
    assert "realism" not in terms  # weight 0: not computed
    torch.testing.assert_close(loss, 2.0 * terms["distance"])
    loss.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="weight"):
        Weights(prior=-1.0)
    with pytest.raises(ValueError, match="target"):
        Objective(model, torch.zeros(1, 3, 8, 8))


def test_custom_distance_and_breakdown(model, target):
    class Dist:
        def __call__(self, images, t):
            return pixel_distance(images, t) * 3

        def terms(self, images, t):
            return {"pixel": pixel_distance(images, t)}

    objective = Objective(model, target, distance=Dist())
    out = objective.breakdown(model.sample_latents(1, seed=4)[0])
    assert set(out) == {"loss", "distance", "prior", "realism", "distance/pixel"}
    assert out["distance"] == pytest.approx(3 * out["distance/pixel"], rel=1e-5)


def test_gradient_search_improves_and_schedule_applies(model, target):
    objective = Objective(model, target)
    start_loss = float(objective(model.sample_latents(8, seed=0))[0].min())
    search = make_search("gradient", objective, budget=60, seed=0, batch=8, lr=0.1, patience=1000)
    events = list(search.iterate())
    result = search.result()
    assert isinstance(events[0], ProgressEvent) and len(events) == 60
    assert isinstance(result, SearchResult) and result.steps == 60 and result.stopped == "budget"
    assert result.loss < 0.5 * start_loss
    assert result.latent.shape == (1, 8) and set(result.terms) == {"distance", "prior", "realism"}
    assert [e.best_loss for e in events] == sorted([e.best_loss for e in events], reverse=True)
    assert search.current_lr == pytest.approx(0.1 * 0.01, rel=1e-3)  # cosine reached its floor
    loss = float(objective(result.latent)[0][0])
    assert loss == pytest.approx(result.loss, rel=1e-4, abs=1e-6)


def test_step_schedule_decays_and_restarts_from_best(model, target):
    search = GradientSearch(Objective(model, target), budget=9, batch=4, lr=0.5, schedule="step", patience=100)
    lrs = []
    for _ in search.iterate():
        lrs.append(search.current_lr)
        if search.steps == 3:  # just after the first decay, every restart sits on its best
            torch.testing.assert_close(search.z.detach(), search.restart_best_z)
    assert lrs[0] == pytest.approx(0.5) and lrs[3] == pytest.approx(0.05) and lrs[-1] == pytest.approx(0.005)


def test_gradient_start_prune_and_plateau(model, target):
    objective = Objective(model, target)
    start = model.sample_latents(1, seed=123)[0]  # the target's own latent
    search = GradientSearch(objective, budget=400, batch=8, start=start, prune_at=(0.1, 0.2), patience=20)
    torch.testing.assert_close(search.ask()[0], start)
    result = search.run()
    assert len(search.z) == 2  # 8 -> 4 -> 2 restarts
    assert result.stopped == "plateau" and result.steps < 400
    assert result.terms["distance"] < 1e-3


def test_deterministic_for_a_seed(model, target):
    objective = Objective(model, target)
    for name in ("gradient", "DiscreteOnePlusOne"):
        a = make_search(name, objective, budget=16, seed=7, batch=4).run()
        b = make_search(name, objective, budget=16, seed=7, batch=4).run()
        assert a.loss == b.loss and torch.equal(a.latent, b.latent)


@pytest.mark.parametrize("name", ["CMA", "NGOpt", "DiscreteOnePlusOne", "RandomSearch"])
def test_nevergrad_by_name(model, target, name):
    objective = Objective(model, target, weights=Weights(realism=0.0))
    search = make_search(name, objective, budget=24, seed=0, batch=8)
    assert isinstance(search, NevergradSearch) and search.name == name
    result = search.run()
    assert result.steps == 24 and math.isfinite(result.loss)
    assert result.loss == pytest.approx(float(objective(result.latent)[0][0]), rel=1e-4)


def test_nevergrad_suggested_start_is_evaluated(model, target):
    objective = Objective(model, target, weights=Weights(realism=0.0))
    start = model.sample_latents(1, seed=123)
    search = make_search("OnePlusOne", objective, budget=4, batch=2, start=start)
    torch.testing.assert_close(search.ask()[0], start[0])


def test_bad_names_and_budgets_are_clear_errors(model, target):
    objective = Objective(model, target)
    with pytest.raises(ValueError, match="did you mean CMA"):
        make_search("cma", objective, budget=10)
    with pytest.raises(ValueError, match="did you mean gradient"):
        make_search("gradiant", objective, budget=10)
    with pytest.raises(ValueError, match="unknown search method"):
        SEARCHES["no-such-thing"]
    for bad in (0, -3, 2.5, None, True):
        with pytest.raises(ValueError, match="budget"):
            make_search("gradient", objective, budget=bad)
    with pytest.raises(ValueError, match="batch"):
        make_search("CMA", objective, budget=10, batch=0)
    assert "gradient" in SEARCHES and "CMA" in SEARCHES and "cma" not in SEARCHES


@pytest.mark.parametrize("name", ["gradient", "CMA", "OnePlusOne"])
def test_nan_losses_never_crash_or_become_best(name):
    objective = Objective(NaNGenerator(), torch.zeros(1, 1, 4, 4))
    result = make_search(name, objective, budget=30, seed=0, batch=6).run()
    assert math.isfinite(result.loss) and torch.isfinite(result.latent).all()
    assert result.latent[0, 0] <= 0  # only finite (z[0] <= 0) latents can be best


def test_all_nan_returns_a_latent_with_infinite_loss():
    class AllNaN(NaNGenerator):
        def generate(self, z):
            return torch.full((len(z), 1, 4, 4), math.nan) + 0 * z.sum()

    result = make_search("gradient", Objective(AllNaN(), torch.zeros(1, 1, 4, 4)), budget=5, batch=3).run()
    assert result.loss == math.inf and result.latent.shape == (1, 4) and torch.isfinite(result.latent).all()


def test_cancel_returns_best_so_far(model, target):
    objective = Objective(model, target)
    result = make_search("gradient", objective, budget=1000, batch=4).run(should_stop=lambda e: e.step >= 3)
    assert result.stopped == "cancelled" and result.steps == 3 and math.isfinite(result.loss)

    search = make_search("CMA", objective, budget=10_000, batch=4)
    seen = []

    def cancel_soon(event):
        seen.append(event)
        if len(seen) == 2:
            threading.Thread(target=search.cancel).start()

    result = search.run(callback=cancel_soon)
    assert result.stopped == "cancelled" and result.steps < 10_000
    assert result.loss == min(e.best_loss for e in seen)


NO_DYNAMO = """
import sys
from generators import PGAN, PGANConfig
from optimizers import Objective, PreferenceSearch, make_search
m = PGAN.random(PGANConfig(latent_dim=8, depths=(8, 4)), seed=0)
make_search("gradient", Objective(m, m.generate(m.sample_latents(1, seed=1))), budget=3, batch=2).run()
p = PreferenceSearch(8, k=4, method="rank", optimizer="bayes-image", generator=m)
p.ask(); p.tell_ranking([0, 1, 2, 3]); p.ask()
print("torch._dynamo" in sys.modules)
"""


def test_searches_never_import_torch_dynamo():
    # torch.optim's first optimizer imports torch._dynamo (1.9 s on 2 cores): Inspire's gradient search and
    # the bayes-image driver's refinement use optimizers.gradient.Adam instead. A fresh interpreter: in
    # this one an earlier test may have imported it.
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", NO_DYNAMO], cwd=root, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
