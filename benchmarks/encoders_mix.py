"""Which distance keeps what matters? Invert held-out real images with each distance and ask an
independent classifier whether the inversion keeps the class (Fashion-MNIST) or the smile (faces).

    python benchmarks/encoders_mix.py [--data fashion faces] [--targets 24] [--steps 100] [--seed 1]

For each data set: a small CNN classifier is trained here on the real training split and used
nowhere else; `--targets` held-out images (val split, class-balanced, drawn with `--seed`; another
seed is another draw, which may share a few images) are inverted through the shipped generator
(assets/<fashion32|faces64>.safetensors) with `optimizers.inspire` (gradient search) under each
distance; agreement = the classifier's label of the inversion equals the target's true label.
Pixel distance is the baseline. Writes assets/encoders/mix.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoders import Distance, load_encoder  # noqa: E402
from generators import PGAN  # noqa: E402
from studio.data import load_dataset, to_float  # noqa: E402

GENERATOR = {"fashion": "assets/fashion32.safetensors", "faces": "assets/faces64.safetensors"}
PREFIX = {"fashion": "fashion32", "faces": "faces64"}


def classifier(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(1024, classes))


def train_classifier(data: str, *, steps: int, seed: int = 0) -> tuple[nn.Module, list[str], float]:
    """A supervised CNN on the real training split (flips as augmentation); returns val accuracy."""
    tr, va = load_dataset(data, split="train"), load_dataset(data, split="val")
    names = sorted(set(tr.labels))
    ytr = torch.tensor([names.index(s) for s in tr.labels])
    yva = torch.tensor([names.index(s) for s in va.labels])
    torch.manual_seed(seed)
    net = classifier(tr.images.shape[1], len(names))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    g = torch.Generator().manual_seed(seed)
    weight = len(ytr) / (len(names) * torch.bincount(ytr).float())  # balanced classes (smiles are rarer)
    for step in range(steps):
        idx = torch.randint(len(ytr), (128,), generator=g)
        x = to_float(tr.images[idx])
        x = torch.where(torch.rand(len(x), 1, 1, 1, generator=g) < 0.5, x.flip(-1), x)
        loss = F.cross_entropy(net(x), ytr[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(to_float(b)).argmax(1) for b in va.images.split(512)])
    return net, names, float((pred == yva).float().mean())


def pick_targets(data: str, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    va = load_dataset(data, split="val")
    names = sorted(set(va.labels))
    y = torch.tensor([names.index(s) for s in va.labels])
    g = torch.Generator().manual_seed(seed)
    per = max(1, n // len(names))
    idx = torch.cat([torch.nonzero(y == c)[:, 0][torch.randperm(int((y == c).sum()), generator=g)[:per]]
                     for c in range(len(names))])
    return to_float(va.images[idx]), y[idx], names


def invert(generator: PGAN, target: torch.Tensor, distance, *, steps: int, batch: int, seed: int) -> torch.Tensor:
    from optimizers import Weights
    from optimizers.inspire import inspire, prepare
    prepared = prepare(generator, target, distance=distance, weights=Weights(distance=1.0, prior=1.0, realism=0.0))
    result = inspire(prepared, method="gradient", budget=steps, restarts=batch, seed=seed, lr=0.1)  # as measured
    with torch.no_grad():
        return generator.generate(result.latent.reshape(1, -1))


def distances(data: str, reference: torch.Tensor, methods: list[str]) -> dict[str, Distance]:
    out = {"pixel": Distance({"pixel": 1.0}, reference_images=reference)}
    for m in methods:
        enc_id = f"{PREFIX[data]}-{m}"
        try:
            enc = load_encoder(enc_id)
        except ValueError:
            continue
        out[m] = Distance({m: 1.0}, encoders={m: enc}, reference_images=reference)
        out[f"pixel+{m}"] = Distance({"pixel": 1.0, m: 1.0}, encoders={m: enc}, reference_images=reference)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["fashion", "faces"])
    ap.add_argument("--methods", nargs="+", default=["irmae", "vicreg", "barlow", "simclr", "dclw", "directclr"])
    ap.add_argument("--targets", type=int, default=24)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--classifier-steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1, help="which held-out targets (another seed: an independent set)")
    ap.add_argument("--out", default="assets/encoders/mix.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for data in args.data:
        t0 = time.perf_counter()
        net, names, acc = train_classifier(data, steps=args.classifier_steps)
        print(f"{data}: independent classifier val accuracy {acc:.3f} ({time.perf_counter() - t0:.0f}s)", flush=True)
        generator = PGAN.load(GENERATOR[data], with_discriminator=False)
        targets, labels, _ = pick_targets(data, args.targets, seed=args.seed)
        reference = to_float(load_dataset(data, split="train").images[:500])
        rows = {}
        for name, dist in distances(data, reference, args.methods).items():
            t = time.perf_counter()
            inv = torch.cat([invert(generator, x[None], dist, steps=args.steps, batch=args.restarts, seed=i)
                             for i, x in enumerate(targets)])
            with torch.no_grad():
                pred = net(inv).argmax(1)
                pred_target = net(targets).argmax(1)
            rows[name] = {"agreement": float((pred == labels).float().mean()),
                          "agreement_with_classifier_on_target": float((pred == pred_target).float().mean()),
                          "pixel_mse": float((inv - targets).pow(2).mean()), "seconds": time.perf_counter() - t}
            print(f"  {name:>18}: keeps label {rows[name]['agreement']:.3f}  pixel mse {rows[name]['pixel_mse']:.3f} "
                  f"({rows[name]['seconds']:.0f}s)", flush=True)
        results[data] = {"classifier_val_accuracy": acc, "targets": len(targets), "seed": args.seed,
                         "steps": args.steps, "restarts": args.restarts, "rows": rows}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
