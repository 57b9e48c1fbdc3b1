"""torch.hub entry points: `torch.hub.load(CLONE, 'pgan', 'faces64', source='local')`.

(`model=` cannot be a keyword here: `torch.hub.load`'s own second parameter is named `model`, so
`torch.hub.load(CLONE, 'pgan', model='faces64')` is a TypeError in torch itself. Pass the id
positionally or as `name='faces64'`.)

Returns a `generators.PGAN`: `latent_dim`, `sample_latents(n, seed)`, `generate(z)` -> images
[N, C, H, W] in [-1, 1], `realism(images)`; the networks are `.generator` and `.discriminator`.
Weights come from this clone's `assets/` (nothing is downloaded).
"""
dependencies = ["torch", "safetensors", "numpy"]


def pgan(name: str | None = None, device: str | None = None, pretrained: bool = True):
    """A shipped PGAN by catalog id (default: the catalog's default), or a .safetensors/.pth path."""
    if not pretrained:
        raise ValueError("only trained models are available: pass pretrained=True (the default)")
    from studio.catalog import Catalog

    catalog = Catalog()
    return catalog.generator(name or catalog.default_generator(), device=device)


def models() -> list[str]:
    """Ids of the shipped generators."""
    from studio.catalog import Catalog

    return Catalog().ids("generator")
