"""The "bayes" preference driver: learns from every round, replays exactly, recovers a target."""
import json

import numpy as np
import pytest
import torch

from optimizers import PreferenceSearch, resolve_optimizer
from optimizers.metric import load_metric, pullback_metric, save_metric
from optimizers.preference_model import BayesDriver
from studio.shipped import search_assets, shipped_metric
from tests.conftest import assert_replays


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def noisy_order(candidates: torch.Tensor, target: torch.Tensor, rng: np.random.RandomState, error: float) -> list[int]:
    """Nearest first; with probability `error` the first place goes to a random other candidate."""
    order = torch.argsort(((candidates - target) ** 2).sum(dim=1)).tolist()
    if rng.rand() < error:
        j = 1 + rng.randint(len(order) - 1)
        order[0], order[j] = order[j], order[0]
    return order


def test_recovers_a_target_from_noisy_picks():
    errors = []
    for seed in range(3):
        target = torch.from_numpy(np.random.RandomState(50 + seed).randn(8)).float()
        search = PreferenceSearch(8, k=9, optimizer="bayes", strength=0.7, seed=seed)
        rng = np.random.RandomState(seed)
        for _ in range(25):
            search.tell_pick(noisy_order(search.ask(), target, rng, 0.2)[0])
        mode = torch.from_numpy(search._driver.mode).float()
        errors.append(float(((mode - target) ** 2).mean()))
    assert np.mean(errors) < 0.2, errors  # the prior mean (0) is off by 1 per coordinate


def test_uses_every_round_not_only_the_last():
    # a contrary pick after many consistent ones: the guess stays nearer the target than that pick
    target = torch.full((4,), 1.5)
    search = PreferenceSearch(4, k=9, optimizer="bayes", strength=0.7, seed=1)
    rng = np.random.RandomState(0)
    for _ in range(15):
        search.tell_pick(noisy_order(search.ask(), target, rng, 0.0)[0])
    before = search._driver.mode.copy()
    cands = search.ask()
    far = int(((cands - target) ** 2).sum(dim=1).argmax())
    search.tell_pick(far)
    after = np.linalg.norm(search._driver.mode - target.numpy())
    assert after < np.linalg.norm(cands[far].numpy() - target.numpy()) and after < 0.3


def test_replay_undo_and_json_with_strength_changes():
    search = PreferenceSearch(12, k=4, optimizer="bayes", method="rank", seed=3, strength=0.8)
    seen = []
    for r in range(6):
        if r == 3:  # several changes within one round replay as the last one
            search.set_strength(0.3)
            search.set_strength(1.5)
        seen.append(search.ask())
        search.tell_ranking([(r + i) % 4 for i in range(4)])
    assert_replays(search, PreferenceSearch.from_json(search.to_json()), seen, 2)


def test_strength_scales_the_spread_without_moving_the_guess():
    search = PreferenceSearch(6, k=9, optimizer="bayes", seed=0, start=torch.ones(6))
    search.tell_pick(3)
    wide = search.ask()
    search.set_strength(0.5)
    narrow = search.ask()
    torch.testing.assert_close(narrow[0], wide[0])  # the posterior mode, shown first
    torch.testing.assert_close(narrow[1:] - narrow[0], 0.5 * (wide[1:] - wide[0]))


def test_driver_needs_a_size():
    with pytest.raises(ValueError, match="dimension"):
        BayesDriver(None, 4, 0)


def test_metric_weighs_the_directions_that_matter():
    # the person sees only coordinate 0 and the metric says so: the guess finds it
    metric = np.diag([1.0] + [1e-4] * 5)
    driver = BayesDriver(None, 9, 0, dim=6, metric=metric, strength=0.7)
    for _ in range(15):
        cands = driver.ask()
        driver.tell((int(np.abs(cands[:, 0] - 1.2).argmin()),))
    assert abs(driver.ask()[0][0] - 1.2) < 0.25, driver.ask()[0]
    with pytest.raises(ValueError, match="metric"):
        BayesDriver(None, 4, 0, dim=3, metric=np.eye(2))


def test_metric_file_roundtrip_and_shipped(tmp_path):
    m = torch.diag(torch.tensor([3.0, 2.0, 1.0]))
    path = save_metric(m, tmp_path / "m", info={"n": 1})
    torch.testing.assert_close(load_metric(path), m)
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError):
        load_metric(tmp_path / "bad.safetensors")
    for model in ("fashion32", "faces64"):
        shipped = shipped_metric(model)
        assert shipped is not None and shipped.shape == (64, 64), model
        assert float(torch.linalg.eigvalsh(shipped.double()).min()) > -1e-6


def test_pullback_metric_of_a_linear_generator():
    class Linear:
        latent_dim = 3
        w = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])

        def generate(self, z):
            return (z @ self.w).view(-1, 1, 2, 2)

    metric = pullback_metric(Linear(), n=4)
    torch.testing.assert_close(metric, Linear.w @ Linear.w.T / 4, atol=1e-3, rtol=1e-3)


def bayes_optimizer(model_id):
    """"bayes:<model id>" when the studio finds the model's latent metric, else None."""
    name, _ = resolve_optimizer("bayes", "pick", model=model_id, has_encoder=False,
                                has_metric=shipped_metric(model_id) is not None)
    return None if name == "bayes" else name


def test_shipped_metric_drives_a_search():
    fashion32 = search_assets("fashion32")
    search = PreferenceSearch(64, k=9, optimizer="bayes:fashion32", strength=0.6, seed=0, assets=fashion32)
    target = torch.randn(64)
    for _ in range(3):
        search.tell_pick(int(((search.ask() - target) ** 2).sum(1).argmin()))
    again = PreferenceSearch.from_json(search.to_json(), assets=fashion32)
    assert again.optimizer == "bayes:fashion32"
    torch.testing.assert_close(again.ask(), search.ask())
    with pytest.raises(ValueError, match="no latent metric"):
        PreferenceSearch(64, optimizer="bayes:nosuchmodel", assets=search_assets("nosuchmodel"))
    with pytest.raises(ValueError, match="no latent metric"):
        PreferenceSearch.from_json(search.to_json())  # a "bayes:<id>" state needs its model's metric again
    with pytest.raises(ValueError, match="latents of size"):
        PreferenceSearch(32, optimizer="bayes:fashion32", assets=fashion32)
    with pytest.raises(ValueError, match="names a model"):
        PreferenceSearch(64, optimizer="bayes:../../etc")
    assert bayes_optimizer("faces64") == "bayes:faces64"
    assert bayes_optimizer("nosuchmodel") is None
    assert bayes_optimizer("../assets/preference/faces64") is None
    # only a driver named with a model id uses the model's data: plain "bayes" replays the same with or without
    plain = PreferenceSearch(64, k=9, optimizer="bayes", seed=0, assets=fashion32)
    torch.testing.assert_close(plain.ask(), PreferenceSearch(64, k=9, optimizer="bayes", seed=0).ask())


def test_auto_optimizer_for_picks_and_rankings():
    both = {"has_encoder": True, "has_metric": True}
    assert resolve_optimizer("auto", "pick", model="faces64", **both) == ("elitist", True)
    assert resolve_optimizer("auto", "rank", model="faces64", **both) == ("bayes-image:faces64", True)
    assert resolve_optimizer("auto", "rank", model="faces64", has_encoder=False, has_metric=True) == \
        ("bayes:faces64", False)
    assert resolve_optimizer("auto", "rank", model="faces64", has_encoder=False, has_metric=False) == ("CMA", False)
    assert resolve_optimizer("bayes-image", "pick", model="x", has_encoder=False, has_metric=True) == \
        ("bayes-image", True)
    assert resolve_optimizer("elitist", "pick", model="faces64", **both) == ("elitist", False)
    assert resolve_optimizer("auto", "rank", model="../faces64", **both) == ("CMA", False)  # an id, never a path
    with pytest.raises(ValueError, match="method"):
        resolve_optimizer("auto", "vote", model="faces64", **both)
