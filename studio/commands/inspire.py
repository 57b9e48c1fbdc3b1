"""`inspire`: the generation closest to an image (inspirational generation), as a PNG + JSON report."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from optimizers import Weights, default_realism
from optimizers.inspire import CLI_GRADIENT_BUDGET, GRADIENT, NEVERGRAD, Prepared, prepare, realism_unit as spread, search
from optimizers.inversion import InversionEncoder, fits, load_inversion
from studio.catalog import Catalog
from studio.devices import add_device_argument
from studio.imageio import load_image, save_png, to_pil
from studio.shipped import shipped_encoder, shipped_inversion


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspire", help="search the latent space for the generation closest to an image")
    p.add_argument("--model", help="catalog id or model file (default: catalog default)")
    p.add_argument("--image", required=True, help="the inspirational image (any size; centre-cropped)")
    p.add_argument("--method", default="gradient", help="gradient, or any nevergrad optimizer name (e.g. CMA, NGOpt)")
    p.add_argument("--budget", type=int, help=f"gradient steps, or evaluations for nevergrad (default "
                                              f"{CLI_GRADIENT_BUDGET} / {NEVERGRAD.budget})")
    p.add_argument("--batch", type=int, help=f"restarts per step (gradient) or latents per ask (nevergrad); "
                                             f"default {GRADIENT.batch} / {NEVERGRAD.batch}")
    p.add_argument("--distance", help="encoder distance terms, e.g. pixel=1,faces64-vicreg=0.5 (normalised terms); "
                                      "default: the reference's raw pixel MSE")
    p.add_argument("--weights", default="", help="objective weights, e.g. distance=1,prior=1,realism=0.02 (realism: "
                                                 "per D spread, by default the model's own (faces64 0.01, "
                                                 "fashion32 0.02, textures64 0, others 0.02); 0.03 with an "
                                                 "explicit --realism-unit)")
    p.add_argument("--realism-unit", default="auto",
                   help="unit of D's score in the realism term: auto (its spread over the model's own samples, so "
                        "a realism weight means the same for every model) or a number (1 with realism 0.03: the "
                        "reference's loss)")
    p.add_argument("--start", default="auto", help="auto (the model's shipped inversion encoder, if any), none, "
                                                   "or an inversion encoder .safetensors")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    p.add_argument("--out", required=True, help="RESULT.png (carries the latent in its metadata)")
    p.add_argument("--json", help="REPORT.json: loss, every term, steps, wall seconds, latent")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def parse_weights(text: str, what: str) -> dict[str, float]:
    """'a=1,b=0.5' -> {'a': 1.0, 'b': 0.5}; anything else is a one-line ValueError."""
    out: dict[str, float] = {}
    for part in filter(None, (s.strip() for s in (text or "").split(","))):
        name, eq, value = part.partition("=")
        try:
            if not eq or not name:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad {what} {text!r}: use name=number pairs like pixel=1,irmae=0.5") from None
    return out


def make_weights(text: str, realism: float = Weights.realism) -> Weights:
    given = parse_weights(text, "--weights")
    unknown = sorted(set(given) - {"distance", "prior", "realism"})
    if unknown:
        raise ValueError(f"unknown --weights term(s) {unknown}; the terms are distance, prior, realism")
    return Weights(**{"realism": realism, **given})


def make_distance(text: str | None, device: str):
    if not text:
        return None
    from encoders import Distance
    return Distance(parse_weights(text, "--distance")).to(device)


def realism_unit(spec: str, model: Any, *, needed: bool = True) -> float:
    """The unit of D's score; "auto" measures D's spread (about 1 s) only when there is a realism term."""
    if spec == "auto":
        return spread(model) if needed else 1.0
    try:
        unit = float(spec)
    except ValueError:
        unit = math.nan
    if not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"--realism-unit must be auto or a positive number, got {spec!r}")
    return unit


def start_encoder(spec: str, model_id: str, model: Any) -> tuple[InversionEncoder | None, str]:
    """The inversion encoder `--start` names (auto: the model's own, if it has one) and a note."""
    if spec == "none":
        return None, "none"
    path = shipped_inversion(model_id) if spec == "auto" else Path(spec)
    if path is None:
        return None, "none (no shipped inversion encoder)"
    if not path.is_file():
        raise ValueError(f"--start {spec}: no such inversion encoder file")
    encoder = shipped_encoder(model_id, device=model.device) if spec == "auto" else \
        load_inversion(path, device=model.device)
    if not fits(encoder, model):
        raise ValueError(f"{path}: inversion encoder is for another generator shape")
    return encoder, f"inversion:{path.name}"


def prepare_target(args: argparse.Namespace, model_id: str, model: Any) -> tuple[Prepared, str]:
    """The image, weights, distance, realism unit and start of `args`, as `optimizers.inspire.prepare`d."""
    target = load_image(args.image, channels=model.channels, size=model.resolution)  # [1, C, R, R]
    weights = make_weights(args.weights, default_realism(model) if args.realism_unit == "auto" else Weights.realism)
    encoder, note = start_encoder(args.start, model_id, model)
    unit = realism_unit(args.realism_unit, model, needed=weights.realism > 0)
    return prepare(model, target, start=encoder, weights=weights, distance=make_distance(args.distance, args.device),
                   unit=unit), note


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {out.name!r}")
    catalog = Catalog()
    model_id = args.model or catalog.default_generator()
    model = catalog.generator(model_id, device=args.device)
    prepared, start_note = prepare_target(args, model_id, model)
    budget = CLI_GRADIENT_BUDGET if args.budget is None and args.method == "gradient" else args.budget
    searcher = search(prepared, method=args.method, budget=budget, restarts=args.batch, seed=args.seed)
    budget, objective, weights, unit = searcher.budget, prepared.objective, prepared.weights, prepared.realism_unit
    every = max(1, budget // 10)

    def report(event) -> None:
        if not args.quiet and (event.step // every != (event.step - 1) // every or event.step >= budget):
            print(f"{searcher.unit} {event.step}/{budget}  best loss {event.best_loss:.5f}  {event.seconds:.1f}s",
                  file=sys.stderr)

    try:
        result = searcher.run(callback=report)
    except KeyboardInterrupt:
        result = searcher.cancel()
        print("interrupted: keeping the best so far", file=sys.stderr)
    terms = objective.breakdown(result.latent)
    image = model.generate(result.latent)
    out.parent.mkdir(parents=True, exist_ok=True)
    latent = [float(v) for v in result.latent[0]]
    save_png(to_pil(image), out, {"model": model_id, "latent": latent, "method": args.method, "loss": result.loss})
    report_data = {
        "model": model_id, "image": str(args.image), "method": args.method, "budget": budget, "seed": args.seed,
        "unit": searcher.unit, "start": start_note, "distance": args.distance or "pixel-mse",
        "weights": {"distance": weights.distance, "prior": weights.prior, "realism": weights.realism},
        "realism_unit": unit,
        "loss": result.loss, "terms": {k: v for k, v in terms.items() if k != "loss"}, "steps": result.steps,
        "seconds": round(result.seconds, 3), "stopped": result.stopped, "latent": latent,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report_data, indent=2) + "\n")
    print(f"wrote {out}: loss {result.loss:.5f} after {result.steps} {searcher.unit} in {result.seconds:.1f}s "
          f"({result.stopped})")
    return 0
