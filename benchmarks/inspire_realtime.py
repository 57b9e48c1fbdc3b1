"""Real-time Inspire: the old defaults against the new ones, side by side in one run, on held-out faces.

Every part uses the same held-out images (studio.data's val split, `--seed`) and, within a part,
one loss for both sides:
- `app`: the Inspire tab's loss (the `pixel` term of encoders.Distance, prior 1, the model's own
  realism weight per D's spread). Old: gradient 200 steps x 8 restarts, lr 0.1 (the tab's old
  sliders). Previous: 150 x 1 at lr 0.3 (the defaults until Adam's betas were tuned). New: `optimizers.inspire` defaults (what the tab's sliders now start at). Also the
  time from the click to the first streamed image (the inversion's guess) through the tab's own
  `search()`.
- `cli`: `studio inspire`'s loss (raw pixel MSE, prior 1, realism). Old: 300 steps x 16 restarts,
  lr 0.1. New: the defaults. With `--e2e`, also the whole `python -m studio inspire` process.
- `nevergrad`: every Nevergrad method the tab offers at its default budget (app loss), against
  its start (the inversion's guess) and against gradient at equal wall time (the best loss the
  default gradient search had reached after as many seconds).
The new defaults run `--repeats` times (medians of seconds; losses are deterministic); the old
ones once. Time with both cores to itself (`/work/bin/quiet` pauses the background trainer):

    /work/bin/quiet .venv/bin/python -m benchmarks.inspire_realtime --part app --targets 3
    /work/bin/quiet .venv/bin/python -m benchmarks.inspire_realtime --part cli --targets 3 --e2e
    /work/bin/quiet .venv/bin/python -m benchmarks.inspire_realtime --part nevergrad --targets 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from encoders import Distance  # noqa: E402
from optimizers import make_search  # noqa: E402
from optimizers.inspire import CLI_GRADIENT_BUDGET, defaults, prepare, search  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.imageio import save_png, to_pil  # noqa: E402
from studio.shipped import shipped_encoder  # noqa: E402

OLD = {"app": {"budget": 200, "batch": 8}, "cli": {"budget": 300, "batch": 16}}  # lr 0.1: GradientSearch's own
# the defaults before Adam's betas were tuned (2026-12-02): 150 x 1 at lr 0.3, betas (0.9, 0.99)
PREVIOUS = {"budget": 150, "batch": 1, "lr": 0.3}


def time_to(history: list[tuple[int, float, float]], loss: float) -> float | None:
    """Seconds until the best loss first reached `loss`, or None."""
    return next((s for _, best, s in history if best <= loss + 1e-9), None)


def best_at(history: list[tuple[int, float, float]], seconds: float) -> float:
    """The best loss reached within `seconds` (the first step's when even that took longer)."""
    within = [best for _, best, s in history if s <= seconds]
    return within[-1] if within else history[0][1]


def timed(run) -> tuple[object, float]:
    began = time.perf_counter()
    result = run.run()
    return result, time.perf_counter() - began


def old_vs_new(model, targets, encoder, *, loss: str, repeats: int, seed: int) -> list[dict]:
    rows = []
    for t in range(len(targets)):
        target = targets[t:t + 1]
        dist = Distance({"pixel": 1.0}) if loss == "app" else None
        prepared = prepare(model, target, start=encoder, distance=dist)
        old, old_s = timed(make_search("gradient", prepared.objective, start=prepared.start, seed=seed, **OLD[loss]))
        budget = CLI_GRADIENT_BUDGET if loss == "cli" else None
        prev, prev_s = timed(make_search("gradient", prepared.objective, start=prepared.start, seed=seed, **PREVIOUS))
        news = [timed(search(prepared, seed=seed, budget=budget)) for _ in range(repeats)]
        new = news[0][0]
        new_s = statistics.median(s for _, s in news)
        reach = [time_to(r.history, old.loss) for r, _ in news]
        row = {"target": t, "start_loss": prepared.start_loss(),
               "old": {"loss": old.loss, "steps": old.steps, "seconds": round(old_s, 2), "stopped": old.stopped},
               "previous": {"loss": prev.loss, "steps": prev.steps, "seconds": round(prev_s, 2)},
               "new": {"loss": new.loss, "steps": new.steps, "seconds": round(new_s, 2), "stopped": new.stopped,
                       "seconds_all": [round(s, 2) for _, s in news]},
               "loss_ratio_new_old": new.loss / old.loss, "loss_ratio_previous_old": prev.loss / old.loss, "speedup": old_s / new_s,
               "new_reached_old_loss_after_s": None if None in reach else round(statistics.median(reach), 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def first_image_latency(targets, repeats: int) -> list[float]:
    """Seconds from calling the tab's search() to its first streamed image (model loaded)."""
    from studio.app import inspire as tab
    from studio.app.context import Ctx
    from studio.app.state import UserState
    from studio.session import Session
    ctx = Ctx(Catalog())
    ctx.model("faces64")
    out = []
    for i in range(repeats):
        st = UserState(session=Session(model="faces64"))
        st.target = targets[i % len(targets):i % len(targets) + 1]
        began = time.perf_counter()
        stream = tab.search(ctx, st, method="gradient", budget=10, restarts=1, seed=0, weights={"pixel": 1.0})
        next(stream)
        out.append(round(time.perf_counter() - began, 3))
        for _ in stream:
            pass
    return out


def nevergrad_part(model, targets, encoder, *, seed: int) -> list[dict]:
    from studio.app.inspire import SEARCH_METHODS
    rows = []
    for t in range(len(targets)):
        prepared = prepare(model, targets[t:t + 1], start=encoder, distance=Distance({"pixel": 1.0}))
        grad, grad_s = timed(search(prepared, seed=seed))
        row = {"target": t, "start_loss": prepared.start_loss(),
               "gradient": {"loss": grad.loss, "seconds": round(grad_s, 2)}}
        for method in (m for m in SEARCH_METHODS if m != "gradient"):
            d = defaults(method)
            result, s = timed(search(prepared, method=method, seed=seed))
            row[method] = {"loss": result.loss, "seconds": round(s, 2), "budget": d.budget, "batch": d.batch,
                           "sigma": d.options.get("sigma"), "improved": result.loss < row["start_loss"],
                           "gradient_at_equal_time": best_at(grad.history, s)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def cli_e2e(targets, repeats: int) -> list[float]:
    """Wall seconds of `python -m studio inspire --model faces64 --image FACE --out r.png`."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            face = Path(tmp) / f"face{i % len(targets)}.png"
            save_png(to_pil(targets[i % len(targets):i % len(targets) + 1]), face)
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "studio", "inspire", "--model", "faces64", "--image", str(face),
                            "--out", str(Path(tmp) / "r.png"), "--quiet"], check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
            out.append(round(time.perf_counter() - began, 2))
    return out


def summary(rows: list[dict]) -> dict:
    med = lambda xs: statistics.median(xs)  # noqa: E731
    reached = [r["new_reached_old_loss_after_s"] for r in rows]
    return {"median_old_seconds": med(r["old"]["seconds"] for r in rows),
            "median_new_seconds": med(r["new"]["seconds"] for r in rows),
            "median_loss_ratio_new_old": med(r["loss_ratio_new_old"] for r in rows),
            "median_previous_seconds": med(r["previous"]["seconds"] for r in rows),
            "median_loss_ratio_previous_old": med(r["loss_ratio_previous_old"] for r in rows),
            "new_reached_old_loss": sum(x is not None for x in reached), "targets": len(rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("app", "cli", "nevergrad"), required=True)
    p.add_argument("--model", default="faces64")
    p.add_argument("--targets", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="which held-out faces (and the searches' seed)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--e2e", action="store_true", help="with --part cli: also time the whole CLI process")
    p.add_argument("--json", default=str(ROOT / "results" / "realtime_inspire_faces64.json"))
    args = p.parse_args(argv)
    model = Catalog().generator(args.model)
    encoder = shipped_encoder(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=None, targets=args.targets, seed=args.seed),
                           model, args.model)
    prepare(model, targets[:1])  # D's spread, once per model (as the app after its first search)
    part: dict = {"threads": torch.get_num_threads(), "targets": args.targets, "seed": args.seed,
                  "repeats": args.repeats, "new_defaults": {"gradient": vars(defaults("gradient"))}}
    if args.part in ("app", "cli"):
        part["old_defaults"] = OLD[args.part]
        part["rows"] = old_vs_new(model, targets, encoder, loss=args.part, repeats=args.repeats, seed=args.seed)
        part["summary"] = summary(part["rows"])
        if args.part == "app":
            part["first_image_seconds"] = first_image_latency(targets, args.repeats)
        if args.e2e:
            part["cli_end_to_end_seconds"] = cli_e2e(targets, args.repeats)
    else:
        part["rows"] = nevergrad_part(model, targets, encoder, seed=args.seed)
    print(json.dumps({k: v for k, v in part.items() if k != "rows"}, indent=1), flush=True)
    path = Path(args.json)
    data = json.loads(path.read_text()) if path.is_file() else {"model": args.model}
    data[args.part] = part
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
