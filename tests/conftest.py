"""Shared fixtures: tiny models made in the test, and a temporary catalog pointing at them.

The helpers behind them (`randomize`, `write_catalog`, `free_port`, ...) live in `studio.testing`,
where the benchmarks reach them too."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generators import PGAN, PGANConfig  # noqa: E402
from studio.catalog import CATALOG_ENV  # noqa: E402
from studio.testing import TINY_CONFIGS, randomize, tiny_pgan, write_catalog  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on a shared, oversubscribed 2-core machine two OpenMP threads on tiny ops can run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config() -> PGANConfig:
    return TINY_CONFIGS["tiny"]


@pytest.fixture
def tiny_model(tiny_config: PGANConfig) -> PGAN:
    return randomize(PGAN.random(tiny_config, seed=0))


@pytest.fixture
def tiny_catalog(tmp_path: Path, tiny_model: PGAN) -> Path:
    """A catalog of `tiny_model` (the default) and 'tinyrgb', without Inspire settings."""
    return write_catalog(tmp_path / "assets", {"tiny": tiny_model, "tinyrgb": tiny_pgan("tinyrgb")})


@pytest.fixture
def catalog_env(monkeypatch, tiny_catalog: Path) -> Path:
    """`tiny_catalog`, made the studio's catalog for the test (CLI, torch.hub)."""
    monkeypatch.setenv(CATALOG_ENV, str(tiny_catalog))
    return tiny_catalog


def assert_replays(search, again, seen: list, back: int) -> None:
    """A preference search rebuilt from its JSON (`again`) shows what it would show; undo to round
    `back` and to round 0 shows the candidates `seen` then (tensors, one per round)."""
    torch.testing.assert_close(again.ask(), search.ask())
    torch.testing.assert_close(again.best(), search.best())
    search.undo(back)
    torch.testing.assert_close(search.ask(), seen[back])
    search.undo(0)
    torch.testing.assert_close(search.ask(), seen[0])
