"""Shared fixtures: tiny models made in the test, and a temporary catalog pointing at them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generators import PGAN, PGANConfig  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on a shared, oversubscribed 2-core machine two OpenMP threads on tiny ops can run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def randomize(model: PGAN, seed: int = 0) -> PGAN:
    """Perturb every weight and bias so that each tensor matters (fresh biases are all zero)."""
    g = torch.Generator().manual_seed(seed)
    for net in (model.generator, model.discriminator):
        if net is None:
            continue
        for p in net.parameters():
            p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture
def tiny_config() -> PGANConfig:
    return PGANConfig(latent_dim=8, depths=(16, 16, 8), channels=1)


@pytest.fixture
def tiny_model(tiny_config: PGANConfig) -> PGAN:
    return randomize(PGAN.random(tiny_config, seed=0))


def write_catalog(root: Path, models: dict[str, PGAN]) -> Path:
    """Save `models` under root and write root/catalog.json listing them (first one default)."""
    rows = []
    for i, (model_id, model) in enumerate(models.items()):
        model.save(root / f"{model_id}.safetensors")
        rows.append({"id": model_id, "kind": "generator", "title": f"tiny {model_id}",
                     "files": [f"{model_id}.safetensors"], "resolution": model.resolution,
                     "channels": model.channels, "latent_dim": model.latent_dim,
                     "data": "random weights", "license": "n/a", "default": i == 0})
    path = root / "catalog.json"
    path.write_text(json.dumps({"models": rows}, indent=2))
    return path


@pytest.fixture
def tiny_catalog(tmp_path: Path, tiny_model: PGAN) -> Path:
    rgb = randomize(PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8), channels=3), seed=1), seed=1)
    return write_catalog(tmp_path / "assets", {"tiny": tiny_model, "tinyrgb": rgb})


def assert_replays(search, again, seen: list, back: int) -> None:
    """A preference search rebuilt from its JSON (`again`) shows what it would show; undo to round
    `back` and to round 0 shows the candidates `seen` then (tensors, one per round)."""
    torch.testing.assert_close(again.ask(), search.ask())
    torch.testing.assert_close(again.best(), search.best())
    search.undo(back)
    torch.testing.assert_close(search.ask(), seen[back])
    search.undo(0)
    torch.testing.assert_close(search.ask(), seen[0])
