"""How good are a generator's images? Measures sharper than SWD, with real-vs-real anchors.

- **C2ST** (classifier two-sample test, Lopez-Paz & Oquab 2017): a small CNN, trained from scratch
  here, learns real training images (label 1) against the model's samples (label 0), with
  horizontal mirroring; it is scored on the held-out split against fresh samples. 0.5 means it
  cannot tell them apart, 1.0 that it always can. The same recipe (seeds, epochs, sizes) every
  time, and the same test for real vs 2x-blurred real images as an anchor: a model scoring above
  the anchor is easier to spot than a blurred photo.
- **FD** (Fréchet distance, Heusel et al. 2017) and **precision / recall** (Kynkäänniemi et al.
  2019, k-NN manifolds, k = 3) in the features of the project's own encoder for the data
  (`ENCODERS`), samples against the held-out split; the floor is a training subset of the same
  size measured the same way.
- **Degenerate share**: images that are near-constant (pixel std < 0.05) or near-black (mean
  < -0.8), for the samples and for the held-out images.

    python -m benchmarks.quality --model faces64 --data faces --json results/quality_faces64.json
    python -m benchmarks.quality --model runs/a/final.safetensors runs/b/final.safetensors --data faces --no-anchor

SWD and the nearest-neighbour copy check stay in `benchmarks.swd` / `benchmarks.nearest_neighbour`
(`scripts/eval_shipped.py` runs them all for the model cards).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENCODERS = {"faces": "faces64-vicreg", "fashion": "fashion32-vicreg", "textures": "textures64-vicreg"}
C2ST_TRAIN = 4096  # images per class the classifier learns from
# One pass over the data: with more the classifier tells even the blurred anchor apart ~99% of
# the time (4 epochs: shipped faces64 0.998, anchor 0.997), and every model scores ~1.0
C2ST_EPOCHS = 1
C2ST_SEEDS = (0, 1)  # the classifier's init and order; the accuracy is their mean
C2ST_SEED = 0
LATENT_SEED = 50_000  # samples for every measure are drawn from seeds here on, never the grids' 0-35


class Critic(nn.Module):
    """The C2ST classifier: four stride-2 3x3 convolutions (32-64-128-128), global average pool, linear."""

    def __init__(self, channels: int):
        super().__init__()
        layers, c = [], channels
        for width in (32, 64, 128, 128):
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            c = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))[:, 0]


def c2st(real_train: torch.Tensor, fake_train: torch.Tensor, real_test: torch.Tensor, fake_test: torch.Tensor,
         *, epochs: int = C2ST_EPOCHS, seed: int = C2ST_SEED, batch: int = 64) -> float:
    """Held-out accuracy of a classifier trained to tell `real_train` from `fake_train` ([N, C, H, W] in [-1, 1])."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Critic(real_train.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.cat([real_train, fake_train])
    y = torch.cat([torch.ones(len(real_train)), torch.zeros(len(fake_train))])
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.binary_cross_entropy_with_logits(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        right = sum(int((net(b) > 0).sum()) for b in real_test.split(256))
        right += sum(int((net(b) <= 0).sum()) for b in fake_test.split(256))
    return right / (len(real_test) + len(fake_test))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def blurred(x: torch.Tensor) -> torch.Tensor:
    """Real images at half resolution and back (bilinear): the anchor of the C2ST."""
    r = x.shape[-1]
    return F.interpolate(F.avg_pool2d(x, 2), size=(r, r), mode="bilinear", align_corners=False)


def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features a [N, D] and b [M, D]."""
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    # trace of sqrt(ca cb) from the eigenvalues of sqrt(ca) cb sqrt(ca) (symmetric, PSD)
    va, ua = torch.linalg.eigh(ca)
    sa = ua @ torch.diag(va.clamp_min(0).sqrt()) @ ua.T
    tr = torch.linalg.eigvalsh(sa @ cb @ sa).clamp_min(0).sqrt().sum()
    return float(mu.square().sum() + ca.trace() + cb.trace() - 2 * tr)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al.: precision = share of fakes inside the real k-NN manifold, recall = the reverse."""
    def inside(manifold: torch.Tensor, queries: torch.Tensor) -> float:
        d = torch.cdist(manifold, manifold)
        radius = d.kthvalue(k + 1, dim=1).values  # k-th neighbour, not counting itself
        return float((torch.cdist(queries, manifold) <= radius[None]).any(dim=1).float().mean())
    return inside(real, fake), inside(fake, real)


def degenerate(x: torch.Tensor) -> float:
    """Share of images [N, C, H, W] that are near-constant (std < 0.05) or near-black (mean < -0.8)."""
    flat = x.flatten(1)
    return float(((flat.std(dim=1) < 0.05) | (flat.mean(dim=1) < -0.8)).float().mean())


def features(encoder, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([encoder(b) for b in x.split(256)])


def evaluate(model, train: torch.Tensor, val: torch.Tensor, *, encoder=None, c2st_train: int = C2ST_TRAIN,
             epochs: int = C2ST_EPOCHS, anchor: bool = True) -> dict:
    """Every measure of the module for `model` (anything with sample_latents / generate) against
    real images `train` (what it learnt from) and `val` (held out), [N, C, H, W] floats in [-1, 1]."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(C2ST_SEED)
    real_train = train[torch.randperm(len(train), generator=gen)[:c2st_train]]
    n_fake = len(real_train) + len(val)
    fake = torch.cat([model.generate(z) for z in model.sample_latents(n_fake, seed=LATENT_SEED).split(512)]).clamp(-1, 1)
    fake_train, fake_test = fake[:len(real_train)], fake[len(real_train):]
    out = {"n_train": len(real_train), "n_test": len(val), "epochs": epochs,
           "c2st": _mean(c2st(real_train, fake_train, val, fake_test, epochs=epochs, seed=s) for s in C2ST_SEEDS),
           "degenerate": degenerate(fake_test), "degenerate_real": degenerate(val)}
    if anchor:
        out["c2st_blur_anchor"] = _mean(c2st(real_train, blurred(real_train), val, blurred(val), epochs=epochs, seed=s)
                                        for s in C2ST_SEEDS)
    if encoder is not None:
        f_val, f_fake = features(encoder, val), features(encoder, fake_test)
        f_floor = features(encoder, train[torch.randperm(len(train), generator=gen)[:len(val)]])
        p, r = precision_recall(f_val, f_fake)
        p0, r0 = precision_recall(f_val, f_floor)
        out.update(encoder=encoder.info.get("id"), fd=frechet(f_fake, f_val), fd_floor=frechet(f_floor, f_val),
                   precision=p, recall=r, precision_floor=p0, recall_floor=r0)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def load_real(data: str, resolution: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    from studio.data import load_dataset
    train = load_dataset(data, split="train", size=resolution, channels=channels).float()
    val = load_dataset(data, split="val", size=resolution, channels=channels).float()
    return train, val


def main(argv: list[str] | None = None) -> int:
    from encoders import load_encoder
    from studio.catalog import load_generator
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, nargs="+", help="catalog ids or .safetensors files (same data)")
    p.add_argument("--data", required=True, help="faces | fashion | textures")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-anchor", action="store_true", help="skip the real-vs-blurred C2ST anchor")
    p.add_argument("--json", help="write the results here (a list, one entry per model)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = load_encoder(ENCODERS[args.data]) if args.data in ENCODERS else None
    cache: dict = {}
    rows = []
    for i, name in enumerate(args.model):
        model = load_generator(name)
        res = model.resolution
        if (res, model.channels) not in cache:
            cache[(res, model.channels)] = load_real(args.data, res, model.channels)
        train, val = cache[(res, model.channels)]
        row = {"model": str(name), **evaluate(model, train, val, encoder=encoder, anchor=not args.no_anchor and i == 0)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
