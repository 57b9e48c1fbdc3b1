"""Our models in pytorch_GAN_zoo's own code, and its checkpoints in ours, side by side.

    python benchmarks/zoo_roundtrip.py --zoo /path/to/pytorch_GAN_zoo [--model faces64]

1. exports MODEL with `python -m studio export --format ganzoo`, loads the file with the zoo's
   `ProgressiveGAN.load()` and compares its `test(z, getAvG=True)` and `netD` with ours;
2. checks the shared fixture `../shared/fixtures/ganzoo/pgan_rgb32.pth` the other way round.

The zoo checkout is only read and imported (its code is never copied). On torch >= 2.6 it needs
two run-time shims, applied here in-process: Adam `betas` as floats, and `torch.load` with
`weights_only=False` for its own files (we only hand it files we just wrote).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generators.ganzoo import export_zoo, load_zoo  # noqa: E402
from studio.catalog import Catalog  # noqa: E402


def zoo_pgan_class(zoo: Path):
    sys.path.insert(0, str(zoo))
    adam = torch.optim.Adam

    class FloatBetasAdam(adam):
        def __init__(self, params, betas=(0.9, 0.999), **kw):
            super().__init__(params, betas=tuple(float(b) for b in betas), **kw)

    torch.optim.Adam = FloatBetasAdam
    from models.progressive_gan import ProgressiveGAN  # type: ignore

    return ProgressiveGAN


def zoo_load(cls, path: Path):
    model = cls(useGPU=False)
    original = torch.load
    torch.load = lambda p, **kw: original(p, map_location="cpu", weights_only=False)
    try:
        model.load(str(path))
    finally:
        torch.load = original
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", required=True, type=Path, help="a pytorch_GAN_zoo checkout")
    ap.add_argument("--model", default=None, help="catalog id (default: the catalog default)")
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    cls = zoo_pgan_class(args.zoo)
    catalog = Catalog()
    model_id = args.model or catalog.default_generator()
    ours = catalog.generator(model_id)
    z = ours.sample_latents(args.n, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_zoo(ours, Path(tmp) / f"{model_id}_zoo.pth")
        t = time.perf_counter()
        zoo = zoo_load(cls, path)
        with torch.no_grad():
            zoo_images = zoo.test(z, getAvG=True, toCPU=True)
            zoo_scores = zoo.netD(zoo_images)[:, 0]
        zoo_s = time.perf_counter() - t
    our_images = ours.generate(z)
    print(f"{model_id} -> zoo format -> zoo ProgressiveGAN: max |image diff| "
          f"{(zoo_images - our_images).abs().max():.2e}, max |D diff| "
          f"{(zoo_scores - ours.realism(our_images)).abs().max():.2e} ({zoo_s:.2f} s load+run)")
    fixture = ROOT.parent / "shared" / "fixtures" / "ganzoo" / "pgan_rgb32.pth"
    if fixture.is_file():
        theirs = zoo_load(cls, fixture)
        mine = load_zoo(fixture)
        zf = torch.randn(8, mine.latent_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            diff = (theirs.test(zf, getAvG=True, toCPU=True) - mine.generate(zf)).abs().max()
        print(f"fixture: zoo code vs our import, max |image diff| {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
