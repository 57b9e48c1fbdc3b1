"""torch.hub.load on a local clone, the way PyTorch users call it."""
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def test_hub_load_local(catalog_env):
    model = torch.hub.load(str(ROOT), "pgan", "tinyrgb", source="local")
    images = model.generate(model.sample_latents(2, seed=0))
    assert images.shape == (2, 3, 8, 8)
    assert torch.hub.load(str(ROOT), "pgan", name="tiny", source="local").channels == 1
    assert torch.hub.load(str(ROOT), "pgan", source="local").latent_dim == 8  # catalog default
    assert torch.hub.load(str(ROOT), "models", source="local") == ["tiny", "tinyrgb"]
