"""Train the learned inversion encoder of a catalog generator and ship it beside the model.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m studio.inversion --model faces64 --minutes 6

writes assets/inversion/<model>.safetensors + .json (config, training settings, metrics on fresh
samples and on held-out real images) and assets/inversion/<model>-directions.safetensors (the
latent directions that move the image most, the preference search's subspace). For a model file
of your own (`--model PATH`) they go beside it, into PATH's folder/<stem>.studio/inversion/,
where `python app.py --model PATH` finds them (see `assetpaths`). The work is in
`optimizers.inversion` and `optimizers.subspace`; this module loads the model and the validation
images and writes the files. `--minutes` counts this process's CPU time, so a busy machine
slows the training down but does not cut it short.

`studio.shipped.shipped_encoder(model)` finds a model's encoder again (where Inspire starts), for
the CLI and the app: the optimizer layer is handed the encoder object, it never looks files up itself.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import assetpaths
from optimizers.inversion import InversionConfig, InversionTrainConfig, load_inversion, save_inversion, train_inversion
from optimizers.subspace import image_directions, save_subspace
from studio.catalog import Catalog
from studio.devices import DeviceError, add_device_argument, resolve_device


@torch.no_grad()
def real_image_metrics(encoder, model, images: torch.Tensor) -> dict[str, float]:
    """Pixel MSE of G(E(x)) against real images x, and of random samples against them."""
    rec = model.generate(encoder(images))
    rand = model.generate(model.sample_latents(len(images), seed=1))
    return {"real_recon_mse": float((rec - images).pow(2).mean()),
            "real_random_mse": float((rand - images).pow(2).mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studio.inversion", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="catalog id or model file")
    p.add_argument("--minutes", type=float, default=6.0, help="CPU-time limit of the training")
    p.add_argument("--directions", type=int, default=16, help="image directions to ship (0: none)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--image-weight", type=float, default=1.0)
    p.add_argument("--image-every", type=int, default=4, help="image loss (backprop through G) every n steps")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--init", help="continue from this inversion encoder (.safetensors; its --width is kept)")
    add_device_argument(p, what="the encoder is saved for the CPU either way")
    p.add_argument("--data", help="val data set for the real-image metrics (default: from the model id)")
    p.add_argument("--out", help="default assets/inversion/<model>.safetensors, or beside a model file of your own")
    args = p.parse_args(argv)
    try:
        args.device = str(resolve_device(args.device))
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    model = Catalog().generator(args.model, device=args.device)
    config = InversionConfig(model.latent_dim, model.resolution, model.channels, width=args.width)
    train = InversionTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, image_weight=args.image_weight,
                        image_every=args.image_every, seed=args.seed)
    deadline = time.process_time() + 60 * args.minutes

    def log(step: int, values: dict[str, float]) -> None:
        if step % 100 == 0:
            print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()), file=sys.stderr, flush=True)

    init = load_inversion(args.init, device=args.device) if args.init else None
    encoder, metrics = train_inversion(model, config=config, train=train, callback=log, init=init,
                                       should_stop=lambda: time.process_time() > deadline)
    try:
        from studio.commands.compose_sim import load_targets
        real = load_targets(argparse.Namespace(images=None, data=args.data, targets=256, seed=args.seed),
                            model, args.model)
        metrics.update(real_image_metrics(encoder, model, real))
    except (ValueError, OSError) as e:
        print(f"no real-image metrics: {e}", file=sys.stderr)
    out = Path(args.out) if args.out else assetpaths.output("inversion", args.model)
    info = {"generator": args.model, "train": vars(train), "metrics": metrics,
            **({"continued_from": args.init} if args.init else {}),
            "how": "trained on the generator's own samples: latent MSE on the unit shell + image MSE of G(E(G(z)))"}
    path = save_inversion(encoder, out, info=info)
    print(json.dumps({"wrote": str(path), **metrics}))
    if args.directions:
        sub = image_directions(model, args.directions, n=1024, seed=args.seed)
        where = save_subspace(sub, out.with_name(f"{out.stem}-directions.safetensors"),
                              info={"generator": args.model, "samples": 1024, "explained": float(sub.explained.sum())})
        print(json.dumps({"wrote": str(where), "explained": float(sub.explained.sum())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
