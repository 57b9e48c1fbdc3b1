"""Does tuning the bayes driver's knobs close the compose gap? Rankings by a 20%-wrong user,
20 rounds of 9, on targets drawn with another seed than the README table's.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/compose_bayes_sweep.py --model fashion32 --targets 12 --seed 1 \
        '{}' '{"rank_depth": 8}' '{"temperature": 0.5}' '{"error_rate": 0.2}' '{"strength": 0.4}'

Each argument is one setting: `driver` is "bayes" (the latent metric, default) or "bayes-image"
(the choice model on the candidates' images); `strength` goes to `PreferenceSearch`; `rank_depth`,
`temperature` and `error_rate` are the driver's `ChoiceOptions`, and for bayes-image any field of
`ImageOptions` (`steps`, `lr`, `warm_from_shown`, `components`, `projected`, `typical`,
`keep_current`; `invert_steps` is the old name of `steps`) replaces that of its base: `"base":
"inverting"` (the default, `ImageOptions.inverting()`, the driver these sweeps were run on) or
`"default"` (today's `ImageOptions()`). Printed per setting: the mean judge distance (pixel MSE) of
the user's latest pick and of the driver's posterior mode after the last round, and the share of
the random -> inversion gap each closes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dataclasses

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optimizers import pixel_distance as judge  # noqa: E402
from optimizers.preference import PreferenceSearch  # noqa: E402
from optimizers.preference_drivers import ChoiceOptions, DriverOptions, ImageOptions  # noqa: E402
from optimizers.simulate import SimulatedUser, full_inversion, judge_batch, random_search  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.shipped import optimizer_assets  # noqa: E402

CHOICE_KNOBS = {f.name for f in dataclasses.fields(ChoiceOptions)}
IMAGE_KNOBS = {f.name for f in dataclasses.fields(ImageOptions)} | {"invert_steps"}


def setting_options(setting: dict, model_id: str) -> DriverOptions:
    """The driver options one setting of knobs describes (unknown knobs: SystemExit)."""
    driver = setting.get("driver", "bayes")
    if driver not in ("bayes", "bayes-image"):
        raise SystemExit(f"driver must be bayes or bayes-image, got {driver!r}")
    known = {"strength", "driver", "base"} | CHOICE_KNOBS | (IMAGE_KNOBS if driver == "bayes-image" else set())
    unknown = sorted(set(setting) - known)
    if unknown:
        raise SystemExit(f"unknown knobs {unknown}; known: {', '.join(sorted(known))}")
    base = setting.get("base", "inverting")
    if base not in ("inverting", "default"):
        raise SystemExit(f"base must be inverting or default, got {base!r}")
    image = ImageOptions.inverting() if base == "inverting" else ImageOptions()
    image_knobs = {("steps" if k == "invert_steps" else k): v for k, v in setting.items() if k in IMAGE_KNOBS}
    choice = ChoiceOptions(**{k: v for k, v in setting.items() if k in CHOICE_KNOBS})
    return DriverOptions(driver, model_id, choice=choice, image=dataclasses.replace(image, **image_knobs))


def run_setting(model, model_id: str, targets: torch.Tensor, setting: dict, *, k: int, rounds: int, seed: int,
                method: str) -> tuple[float, float]:
    """Mean judge distance of (the latest pick, the posterior mode) after `rounds`."""
    options = setting_options(setting, model_id)
    assets = optimizer_assets(options, model)
    user, picks, modes = SimulatedUser("flip", error=0.2), [], []
    for t in range(len(targets)):
        target = targets[t:t + 1]
        search = PreferenceSearch(model.latent_dim, k=k, method=method, seed=seed + t, generator=model,
                                  optimizer=options, assets=assets, strength=setting.get("strength", 0.6))
        gen = torch.Generator().manual_seed(10_000 + seed + t)
        for _ in range(rounds):
            order = user.rank(judge_batch(model, judge, target, search.ask()), gen)
            search.tell_pick(order[0]) if method == "pick" else search.tell_ranking(order)
        picks.append(float(judge_batch(model, judge, target, search.best()[None])[0]))
        modes.append(float(judge_batch(model, judge, target, search.ask()[:1])[0]))  # next round shows the mode first
    return sum(picks) / len(picks), sum(modes) / len(modes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("settings", nargs="+", help="JSON objects of knobs, e.g. '{\"rank_depth\": 8}'")
    p.add_argument("--model", default="fashion32")
    p.add_argument("--targets", type=int, default=12)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--method", choices=("rank", "pick"), default="rank")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = Catalog().generator(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=None, targets=args.targets, seed=args.seed),
                           model, args.model)
    n = len(targets)
    inv = sum(full_inversion(model, targets[t:t + 1], judge, seed=args.seed) for t in range(n)) / n
    rnd = sum(random_search(model, targets[t:t + 1], judge, n=args.rounds * args.k, seed=args.seed + t)[-1]
              for t in range(n)) / n
    print(f"{args.model}, {n} targets (seed {args.seed}): full inversion {inv:.4f}, random search "
          f"({args.rounds * args.k} images) {rnd:.4f}", flush=True)
    for text in args.settings:
        start = time.perf_counter()
        pick, mode = run_setting(model, args.model, targets, json.loads(text), k=args.k, rounds=args.rounds,
                                 seed=args.seed, method=args.method)
        print(f"{text}: latest pick {pick:.4f} ({100 * (rnd - pick) / (rnd - inv):.0f}% of the gap), posterior mode "
              f"{mode:.4f} ({100 * (rnd - mode) / (rnd - inv):.0f}%) [{time.perf_counter() - start:.0f}s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
