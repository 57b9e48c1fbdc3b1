"""PreferenceSearch: rounds, picks and rankings, undo/branch, strength, basis, JSON state, speed."""
import json

import pytest
import torch

from optimizers import PreferenceSearch

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def nearest(candidates: torch.Tensor, target: torch.Tensor) -> int:
    return int(((candidates - target) ** 2).sum(dim=1).argmin())


def play(search: PreferenceSearch, target: torch.Tensor, rounds: int) -> None:
    for _ in range(rounds):
        search.tell_pick(nearest(search.ask(), target))


def test_rounds_and_picks():
    search = PreferenceSearch(16, k=9, seed=0)
    first = search.ask()
    assert first.shape == (9, 16)
    torch.testing.assert_close(search.ask(), first)  # the same until told
    search.tell_pick(4)
    assert search.rounds == 1
    torch.testing.assert_close(search.best(), first[4])
    torch.testing.assert_close(search.shown(0), first)
    second = search.ask()
    assert not torch.equal(second, first)
    search.tell_pick(2)
    torch.testing.assert_close(search.best(), second[2])


def test_simulated_user_gets_closer():
    torch.manual_seed(0)
    target = torch.randn(8)
    for method in ("pick", "rank"):
        search = PreferenceSearch(8, k=9, method=method, seed=1)
        start = float(((search.ask() - target) ** 2).sum(dim=1).min())
        for _ in range(25):
            cands = search.ask()
            order = torch.argsort(((cands - target) ** 2).sum(dim=1)).tolist()
            search.tell_pick(order[0]) if method == "pick" else search.tell_ranking(order)
        assert float(((search.best() - target) ** 2).sum()) < 0.5 * start, method


def test_bad_feedback_is_a_clear_error():
    search = PreferenceSearch(4, k=4)
    for bad in (-1, 4, 1.5, True):
        with pytest.raises(ValueError, match="pick"):
            search.tell_pick(bad)
    with pytest.raises(ValueError, match="ranking"):
        search.tell_ranking([0, 1, 1, 2])
    with pytest.raises(ValueError, match="method"):
        PreferenceSearch(4, method="vote")
    with pytest.raises(ValueError, match="strength"):
        PreferenceSearch(4, strength=0)
    with pytest.raises(ValueError, match="did you mean"):
        PreferenceSearch(4, optimizer="DiscreteOnePlusOn")
    assert search.rounds == 0


def test_warm_start_and_strength():
    start = torch.linspace(-1, 1, 32)
    search = PreferenceSearch(32, k=9, start=start, strength=1.0, seed=3)
    torch.testing.assert_close(search.best(), start)
    spread = (search.ask() - start).norm(dim=1).max()
    search.set_strength(0.25)
    small = (search.ask() - start).norm(dim=1).max()
    assert small == pytest.approx(0.25 * float(spread), rel=1e-5)  # the same steps, scaled
    search.tell_pick(0)
    chosen = search.best()
    search.set_strength(2.0)  # re-anchors at the current choice, which stays the best
    torch.testing.assert_close(search.best(), chosen)
    assert search.history[0].strength == 0.25


def test_basis_restricts_moves():
    basis = torch.zeros(2, 16)
    basis[0, 0], basis[1, 5] = 1.0, 1.0
    start = torch.randn(16)
    search = PreferenceSearch(16, k=4, start=start, basis=basis, seed=0)
    for _ in range(3):
        moved = (search.ask() - start).abs().sum(dim=0)
        assert set(torch.nonzero(moved).flatten().tolist()) <= {0, 5}
        search.tell_pick(1)
    with pytest.raises(ValueError, match="basis"):
        PreferenceSearch(16, basis=torch.zeros(2, 15))


def test_undo_and_branch_replay_exactly():
    search = PreferenceSearch(16, k=4, method="rank", seed=5)
    seen = []
    for r in range(6):
        seen.append(search.ask())
        search.tell_ranking([(r + i) % 4 for i in range(4)])
    branch = search.branch(3)
    assert branch.rounds == 3 and search.rounds == 6
    torch.testing.assert_close(branch.ask(), seen[3])
    search.undo(2)
    assert search.rounds == 2
    torch.testing.assert_close(search.ask(), seen[2])
    search.tell_pick(0)  # a different choice: a new branch from round 2
    assert search.rounds == 3
    with pytest.raises(ValueError, match="undo"):
        search.undo(7)


def test_json_roundtrip_and_refuses_tampering():
    search = PreferenceSearch(16, k=9, seed=2, start=torch.zeros(16), strength=0.7)
    target = torch.randn(16)
    play(search, target, 4)
    search.set_strength(0.3)
    play(search, target, 3)
    text = search.to_json()
    again = PreferenceSearch.from_json(text)
    assert again.rounds == 7
    torch.testing.assert_close(again.best(), search.best())
    torch.testing.assert_close(again.ask(), search.ask())

    state = json.loads(text)
    state["chosen"][2][0] += 1.0
    with pytest.raises(ValueError, match="does not replay"):
        PreferenceSearch.from_json(json.dumps(state))
    for broken in ("not json", json.dumps({"format": "pickle"}), json.dumps({**json.loads(text), "extra": 1})):
        with pytest.raises(ValueError):
            PreferenceSearch.from_json(broken)
    state = json.loads(text)
    state["rounds"][0]["order"] = [12]
    with pytest.raises(ValueError, match="pick"):
        PreferenceSearch.from_json(json.dumps(state))


def test_ask_returns_the_round_prepared_in_tell():
    # Speed lives in benchmarks/app_compose_latency.py; here: ask() only hands out what tell()
    # prepared, so asking again within a round returns the very same candidates.
    for method in ("pick", "rank"):
        search = PreferenceSearch(64, k=9, method=method, seed=0, start=torch.zeros(64))
        target = torch.randn(64)
        play(search, target, 3)
        first = search.ask()
        torch.testing.assert_close(search.ask(), first)
        search.tell_pick(nearest(first, target))
        assert not torch.equal(search.ask(), first)


def test_elitist_shows_the_current_choice_and_adapts_its_step():
    search = PreferenceSearch(16, k=5, optimizer="elitist", seed=4, start=torch.zeros(16))
    first = search.ask()
    torch.testing.assert_close(first[0], torch.zeros(16))
    search.tell_pick(0)  # keep: smaller steps
    second = search.ask()
    assert (second[1:] - second[0]).norm(dim=1).mean() < (first[1:] - first[0]).norm(dim=1).mean()
    search.tell_pick(3)  # a new choice is shown as candidate 0 next round
    torch.testing.assert_close(search.ask()[0], second[3])
    again = PreferenceSearch.from_json(search.to_json())
    torch.testing.assert_close(again.ask(), search.ask())


def test_subspaces():
    from generators import PGAN, PGANConfig
    from optimizers.subspace import image_directions, principal_directions

    model = PGAN.random(PGANConfig(latent_dim=8, depths=(8, 4)), seed=0)
    sub = image_directions(model, 3, n=64)
    assert sub.basis.shape == (3, 8) and sub.explained.sum() <= 1.0 + 1e-6
    torch.testing.assert_close(sub.basis @ sub.basis.T, torch.eye(3), atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    planted = torch.zeros(8)
    planted[2] = 1.0
    codes = torch.randn(500, 8, generator=g) * 0.1 + torch.randn(500, 1, generator=g) * 3 * planted + 5
    pca = principal_directions(codes, 2)
    assert abs(float(pca.basis[0, 2])) == pytest.approx(3.0, rel=0.1)
    torch.testing.assert_close(pca.center, torch.full((8,), 5.0), atol=0.5, rtol=0)
    search = PreferenceSearch(8, k=4, basis=pca.basis, center=pca.center, seed=0)
    assert search.ask().shape == (4, 8)


def test_subspace_file_roundtrip(tmp_path):
    from optimizers.subspace import Subspace, load_subspace, save_subspace

    sub = Subspace(torch.zeros(4), torch.eye(4)[:2], torch.tensor([0.6, 0.3]))
    path = save_subspace(sub, tmp_path / "s")
    again = load_subspace(path)
    torch.testing.assert_close(again.basis, sub.basis)
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="readable"):
        load_subspace(tmp_path / "bad.safetensors")


def test_markdown_of_a_merged_table_with_fewer_rounds_in_some_rows():
    from optimizers.simulate import markdown
    rows = [{"setting": "a", "k": 9, "rounds": c, "judge": 0.1, "random": 0.2, "gap_closed": 0.5} for c in (10, 20, 40)]
    rows += [{"setting": "b", "k": 9, "rounds": c, "judge": 0.05, "random": 0.2, "gap_closed": 0.75} for c in (10, 20)]
    text = markdown({"rows": rows, "inversion": 0.0})
    assert "| b | 9 | 0.0500 (75%) | 0.0500 (75%) | - |" in text and "| a | 9 | 0.1000 (50%)" in text
