"""Composing by preference with simulated users: the table in the README, for one generator.

Hidden targets are held-out real images (the val split); each round the simulated user orders
the k candidates by the judge distance (perfect, 20% wrong picks, or Bradley-Terry). Reported:
mean judge distance of the current choice after 10/20/40 rounds of k = 4/9/16, the same for random
search showing as many images (best of them), full inversion (gradient search on the judge), and
the share of the random -> inversion gap each setting closes.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/compose_sim.py --model fashion32 --targets 6 \
        --json /tmp/compose_fashion32.json --md /tmp/compose_fashion32.md

`--families bayes,bayes-rank --merge` measures only those rows and keeps the others in the JSON.
`python -m studio compose-sim` runs the same library code for one setting family from the CLI.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizers.simulate import ComposeSetting, SimulatedUser, compose_table, markdown  # noqa: E402
from optimizers.subspace import image_directions  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import int_list, load_targets  # noqa: E402
from studio.commands.inspire import make_distance  # noqa: E402
from studio.shipped import optimizer_assets  # noqa: E402


def settings_for(model, *, users: list[SimulatedUser], subspace_dims: int, families: list[str], model_id: str = "",
                 bayes_strength: float = 0.6) -> list[ComposeSetting]:
    out = []
    sub = image_directions(model, subspace_dims) if "elitist-sub" in families else None
    for user in users:
        name = {"perfect": "perfect", "flip": f"{int(100 * user.error)}% wrong", "bt": "Bradley-Terry"}[user.kind]
        for family in families:
            if family == "elitist":
                out.append(ComposeSetting(f"pick, elitist, {name}", "pick", user, (("optimizer", "elitist"),)))
            elif family == "elitist-sub":
                out.append(ComposeSetting(f"pick, elitist in {subspace_dims} image directions, {name}", "pick", user,
                                          (("optimizer", "elitist"), ("basis", sub.basis))))
            elif family == "dopo":
                out.append(ComposeSetting(f"pick, DiscreteOnePlusOne, {name}", "pick", user,
                                          (("optimizer", "DiscreteOnePlusOne"),)))
            elif family == "cma-rank":
                out.append(ComposeSetting(f"rank, CMA, {name}", "rank", user, (("optimizer", "CMA"),)))
            elif family in ("bayes", "bayes-rank"):  # our choice model on the model's shipped image features
                method = "pick" if family == "bayes" else "rank"
                optimizer = f"bayes:{model_id}"
                out.append(ComposeSetting(f"{method}, bayes, {name}", method, user,
                                          (("optimizer", optimizer), ("strength", bayes_strength),
                                           ("assets", optimizer_assets(optimizer, model)))))
            elif family in ("image", "image-rank"):  # the choice model on the candidates' images
                method = "pick" if family == "image" else "rank"
                optimizer = f"bayes-image:{model_id}"
                out.append(ComposeSetting(f"{method}, bayes-image, {name}", method, user,
                                          (("optimizer", optimizer), ("strength", bayes_strength),
                                           ("assets", optimizer_assets(optimizer, model)))))
            elif family == "bayes-latent":  # the same choice model on the latent coordinates
                out.append(ComposeSetting(f"pick, bayes on latents, {name}", "pick", user,
                                          (("optimizer", "bayes"), ("strength", bayes_strength))))
            else:
                raise SystemExit(f"unknown family {family!r}")
    return out


def merged(old: dict, table: dict, meta: dict, *, targets: int, seed: int) -> tuple[dict, dict]:
    """Rows of `old` whose setting this run did not measure, then this run's rows; refuses to mix
    runs whose references differ (another model, judge or set of targets)."""
    same = old.get("model") == meta["model"] and old.get("judge") == meta["judge"] and old.get("targets") == targets \
        and old.get("seed", 0) == seed and abs(old["inversion"] - table["inversion"]) <= 1e-4 * max(1.0, table["inversion"])
    if not same:
        print("--merge: the saved table has other references (model, judge, targets, seed); writing this run only",
              file=sys.stderr)
        return table, meta
    mine = {r["setting"] for r in table["rows"]}
    rows = [r for r in old["rows"] if r["setting"] not in mine] + table["rows"]
    seconds = old.get("seconds", 0.0) + meta["seconds"]
    return {**table, "rows": rows}, {**meta, "seconds": seconds, "merged": True}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="fashion32")
    p.add_argument("--data", help="val data set (default: from the model id)")
    p.add_argument("--targets", type=int, default=6)
    p.add_argument("--k", default="4,9,16")
    p.add_argument("--rounds", default="10,20,40")
    p.add_argument("--families", default="elitist,elitist-sub,dopo,cma-rank,bayes,bayes-rank",
                   help="any of elitist, elitist-sub, dopo, cma-rank, bayes, bayes-rank, image, image-rank, bayes-latent")
    p.add_argument("--bayes-strength", type=float, default=0.6, help="strength of the bayes rows (the app's default)")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of other settings already in --json (same model, judge, targets, seed) "
                        "and rewrite --json/--md with both")
    p.add_argument("--users", default="perfect,flip,bt")
    p.add_argument("--error", type=float, default=0.2)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--subspace-dims", type=int, default=16)
    p.add_argument("--judge", help="encoder distance spec, e.g. pixel=1,faces64-vicreg=1 (default raw pixel MSE)")
    p.add_argument("--inversion-budget", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = Catalog().generator(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=args.data, targets=args.targets, seed=args.seed),
                           model, args.model)
    users = [SimulatedUser(u, error=args.error, temperature=args.temperature) for u in args.users.split(",")]
    settings = settings_for(model, users=users, subspace_dims=args.subspace_dims, families=args.families.split(","),
                            model_id=args.model, bayes_strength=args.bayes_strength)
    judge = make_distance(args.judge, "cpu")
    if judge is None:
        from optimizers import pixel_distance as judge
    start = time.perf_counter()
    table = compose_table(model, targets, judge, settings, ks=int_list(args.k, "--k"),
                          checkpoints=int_list(args.rounds, "--rounds"), seed=args.seed,
                          inversion_budget=args.inversion_budget, progress=lambda m: print(m, file=sys.stderr, flush=True))
    meta = {"model": args.model, "judge": args.judge or "pixel-mse", "error": args.error,
            "temperature": args.temperature, "seconds": time.perf_counter() - start}
    if args.merge and args.json and Path(args.json).is_file():
        table, meta = merged(json.loads(Path(args.json).read_text()), table, meta, targets=args.targets, seed=args.seed)
    text = markdown(table)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({**meta, "seed": args.seed, **table}, indent=2) + "\n")
    if args.md:
        Path(args.md).write_text(f"{json.dumps(meta)}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
