"""A Compose round in real time: seconds a round, gap closed under judges, candidates' realism and spread.

For the old default ("auto" before: bayes-image inverting its posterior draws, 60 Adam steps), the
new default (`ImageOptions()`, the fast path) and elitist, in one run:

- `timing`: the server time of a round (the driver learning from a pick and preparing the next
  round, plus rendering its k candidates), median over rounds, on one held-out target. Run it
  alone on an idle machine (`/work/bin/quiet`), with `--threads 2`.
- `accuracy` (untimed): a simulated 20%-wrong user picks the best of k by each judge (pixel MSE,
  SSIM, an encoder distance), for `--rounds` rounds on `--targets` held-out faces; reported, per
  judge and driver, the share of the gap between random search (best of as many random images)
  and full inversion of the target on that judge that the latest pick closes, and per round the
  candidates' realism (the model's discriminator score, mean over the k) and spread (root mean
  squared pixel distance between two candidates), beside the same for k random latents (Browse).

    PYTHONPATH=. /work/bin/quiet .venv/bin/python benchmarks/compose_realtime.py --part timing --threads 2 \\
        --json results/compose_realtime_faces64.json
    PYTHONPATH=. /work/bin/shared .venv/bin/python benchmarks/compose_realtime.py --part accuracy \\
        --json results/compose_realtime_faces64.json

Each part rewrites its own section of --json (`--section` names another) and keeps the others. `--variant NAME='{...}'` adds a
bayes-image setting (fields of `ImageOptions`, on the new defaults) to compare.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizers import pixel_distance  # noqa: E402
from optimizers.preference import PreferenceSearch  # noqa: E402
from optimizers.preference_drivers import ChoiceOptions, DriverOptions, ImageOptions  # noqa: E402
from optimizers.simulate import SimulatedUser, full_inversion, random_search, ssim_distance  # noqa: E402
from studio.app.explore import variations  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.commands.inspire import make_distance  # noqa: E402
from studio.shipped import optimizer_assets  # noqa: E402

Judge = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def driver_options(name: str, model_id: str, variants: dict[str, dict[str, Any]]) -> DriverOptions:
    """"old" (bayes-image as it was), "new" (bayes-image with today's defaults), "elitist", or a variant."""
    if name == "old":
        return DriverOptions("bayes-image", model_id, image=ImageOptions.inverting())
    if name == "new":
        return DriverOptions("bayes-image", model_id)
    if name in variants:  # ImageOptions fields, and "choice": {ChoiceOptions fields}
        fields = dict(variants[name])
        choice = ChoiceOptions(**fields.pop("choice", {}))
        return DriverOptions("bayes-image", model_id, choice=choice,
                             image=dataclasses.replace(ImageOptions(), **fields))
    return DriverOptions.parse(name)


def judges(spec: str, model_id: str) -> dict[str, Judge]:
    out: dict[str, Judge] = {}
    for name in spec.split(","):
        if name == "pixel":
            out[name] = pixel_distance
        elif name == "ssim":
            out[name] = ssim_distance
        else:  # an encoder distance term, e.g. faces64-vicreg
            out[name] = make_distance(f"{name}=1", "cpu")
    return out


def spread(images: torch.Tensor) -> float:
    """Root mean squared pixel distance between two of the images [k, C, H, W]."""
    x = images.flatten(1).double()
    k = len(x)
    sq = (x ** 2).sum(1)
    total = 2 * (k * sq.sum() - (x.sum(0) ** 2).sum()) / (k * (k - 1))
    return float((total / x.shape[1]).clamp_min(0).sqrt())


def realism(model: Any, images: torch.Tensor) -> float:
    return float(model.realism(images).mean())


def new_search(model: Any, options: DriverOptions, *, k: int, seed: int, method: str = "pick") -> PreferenceSearch:
    return PreferenceSearch(model.latent_dim, k=k, method=method, strength=0.6, seed=seed, optimizer=options,
                            generator=model, assets=optimizer_assets(options, model))


def time_rounds(model: Any, options: DriverOptions, target: torch.Tensor, *, k: int, rounds: int) -> list[float]:
    """Seconds of each round after the first: tell the pick (the driver prepares the next round), ask, render."""
    search = new_search(model, options, k=k, seed=0)
    x = model.generate(search.ask())
    out = []
    for _ in range(rounds):
        pick = int(torch.argmin(pixel_distance(x, target)))
        start = time.perf_counter()
        search.tell_pick(pick)
        x = model.generate(search.ask())
        out.append(time.perf_counter() - start)
    return out


def play(model: Any, options: DriverOptions, target: torch.Tensor, judge: Judge, *, k: int, rounds: int,
         seed: int, user: SimulatedUser, method: str = "pick") -> dict[str, list[float]]:
    """One composite: the judge distance of the latest pick (a ranking's first), candidates' realism and
    spread, per round. `method` "rank": the user ranks all k (the same noisy judge) instead of picking."""
    search = new_search(model, options, k=k, seed=seed, method=method)
    gen = torch.Generator().manual_seed(10_000 + seed)
    out: dict[str, list[float]] = {"judge": [], "realism": [], "spread": []}
    for _ in range(rounds):
        with torch.no_grad():
            x = model.generate(search.ask())
            d = judge(x, target).float()
        out["realism"].append(realism(model, x))
        out["spread"].append(spread(x))
        order = user.rank(d, gen)
        if method == "rank":
            search.tell_ranking([int(i) for i in order])
        else:
            search.tell_pick(int(order[0]))
        out["judge"].append(float(d[order[0]]))
    return out


def accuracy(model: Any, model_id: str, targets: torch.Tensor, names: list[str], judge_spec: str, *, k: int,
             rounds: int, seed: int, budget: int, variants: dict[str, dict[str, Any]], say: Callable[[str], None],
             method: str = "pick") -> dict[str, Any]:
    user = SimulatedUser("flip", error=0.2)
    with torch.no_grad():
        browse = model.generate(model.sample_latents(8 * k, seed=123))
    browse_groups = browse.split(k)
    with torch.no_grad():
        scores = model.realism(browse)
    result: dict[str, Any] = {"browse": {"realism": statistics.mean(realism(model, g) for g in browse_groups),
                                         "realism_p10": float(scores.quantile(0.1)),
                                         "realism_p90": float(scores.quantile(0.9)),
                                         "spread": statistics.mean(spread(g) for g in browse_groups)},
                              "targets_realism": realism(model, targets), "judges": {}}
    # Browse's variations around an image at its default strength (0.35): the closest images it shows
    with torch.no_grad():
        varied = [model.generate(variations(z, n=k, strength=0.35, seed=i))
                  for i, z in enumerate(model.sample_latents(8, seed=321))]
    result["browse_variations"] = {"realism": statistics.mean(realism(model, g) for g in varied),
                                   "spread": statistics.mean(spread(g) for g in varied), "strength": 0.35}
    say(f"browse variations: {result['browse_variations']}")
    say(f"browse: realism {result['browse']}, held-out targets' realism {result['targets_realism']:.2f}")
    for jname, judge in judges(judge_spec, model_id).items():
        inv = [full_inversion(model, targets[t:t + 1], judge, budget=budget, seed=seed) for t in range(len(targets))]
        rnd = [random_search(model, targets[t:t + 1], judge, n=rounds * k, seed=seed + t)[-1] for t in range(len(targets))]
        entry: dict[str, Any] = {"inversion": statistics.mean(inv), "random": statistics.mean(rnd), "drivers": {}}
        say(f"{jname}: full inversion {entry['inversion']:.4f}, random search {entry['random']:.4f}")
        for name in names:
            options = driver_options(name, model_id, variants)
            start = time.perf_counter()
            runs = [play(model, options, targets[t:t + 1], judge, k=k, rounds=rounds, seed=seed + t, user=user,
                         method=method) for t in range(len(targets))]
            final = statistics.mean(r["judge"][-1] for r in runs)
            per_target = [(rnd[t] - r["judge"][-1]) / (rnd[t] - inv[t]) for t, r in enumerate(runs)]
            gap = (entry["random"] - final) / (entry["random"] - entry["inversion"])
            per_round = {key: [statistics.mean(r[key][i] for r in runs) for i in range(rounds)]
                         for key in ("realism", "spread")}
            entry["drivers"][name] = {"options": options.to_dict(), "judge": final, "gap_closed": gap,
                                      "gap_closed_per_target": per_target, **per_round,
                                      "seconds": time.perf_counter() - start}
            say(f"  {name}: {final:.4f} ({100 * gap:.0f}% of the gap), realism r1 {per_round['realism'][0]:.2f} "
                f"r{rounds} {per_round['realism'][-1]:.2f} (browse {result['browse']['realism']:.2f}), spread r1 "
                f"{per_round['spread'][0]:.3f} r{rounds} {per_round['spread'][-1]:.3f} "
                f"(browse {result['browse']['spread']:.3f}) [{time.perf_counter() - start:.0f}s]")
        result["judges"][jname] = entry
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("timing", "accuracy"), required=True)
    p.add_argument("--model", default="faces64")
    p.add_argument("--drivers", default="old,new,elitist")
    p.add_argument("--variant", action="append", default=[], help="NAME='{\"steps\": 4}' (ImageOptions fields)")
    p.add_argument("--judges", default="pixel,ssim,faces64-vicreg")
    p.add_argument("--targets", type=int, default=6)
    p.add_argument("--seed", type=int, default=0, help="which held-out targets (0: the README's)")
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--method", choices=("pick", "rank"), default="pick", help="accuracy: the user picks or ranks")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--timing-rounds", type=int, default=6)
    p.add_argument("--inversion-budget", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--section", help="key of this run in --json (default: the part's name)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = {}
    for text in args.variant:
        name, _, body = text.partition("=")
        variants[name] = json.loads(body)
    model = Catalog().generator(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=None, targets=args.targets, seed=args.seed),
                           model, args.model)
    names = args.drivers.split(",")
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    meta = {"model": args.model, "k": args.k, "threads": args.threads, "drivers": names, "variants": variants}
    if args.part == "timing":
        section: dict[str, Any] = {**meta, "rounds_timed": args.timing_rounds, "drivers": {}}
        for name in names:
            options = driver_options(name, args.model, variants)
            seconds = time_rounds(model, options, targets[:1], k=args.k, rounds=args.timing_rounds)
            section["drivers"][name] = {"median_s": statistics.median(seconds), "seconds": seconds,
                                        "options": options.to_dict()}
            say(f"{name}: median {statistics.median(seconds):.3f} s a round ({', '.join(f'{s:.2f}' for s in seconds)})")
    else:
        user = "20% wrong picks" if args.method == "pick" else "rankings, their first 20% wrong"
        section = {**meta, "targets": args.targets, "seed": args.seed, "rounds": args.rounds, "user": user,
                   "method": args.method, "inversion_budget": args.inversion_budget,
                   **accuracy(model, args.model, targets, names, args.judges, k=args.k, rounds=args.rounds,
                              seed=args.seed, budget=args.inversion_budget, variants=variants, say=say,
                              method=args.method)}
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, args.section or args.part: section}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
