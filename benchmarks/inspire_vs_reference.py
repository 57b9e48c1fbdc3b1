"""Inspirational search: ours against pytorch_GAN_zoo's `gradientDescentOnInput`, side by side.

The reference runs from a zoo checkout given by path (never copied into this repo) on our
generator exported to the zoo's format (`export_zoo`, read back with our restricted loader and
handed to the zoo's `ProgressiveGAN.load_state_dict`): Adam lr 1, betas (0, 0.99), 6000 steps,
pixel distance ("id" feature extractor), prior, realism 0.03. Ours minimises the same loss
(`optimizers.Objective` with pixel distance; each image scored alone by D, as the reference's
batch of one is) on the same held-out validation images. `--loss studio` gives both the studio's
realism term instead (D in units of its spread, the model's own weight `default_realism`). Reported
per target: the reference's final loss and wall time, our wall time to reach that loss, and both
losses at equal time.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/inspire_vs_reference.py --zoo /tmp/zoo \
        --model faces64 --targets 3 --json results/inspire_faces64.json

The checkout is copied to a scratch folder under /tmp and fixed there for torch 2.14 (the
checkout itself is never modified): `betas=[0, 0.99]` (an int and a float, refused by today's
Adam) becomes `[0.0, 0.99]`; `h5py` and `visdom`, needed only to import, are stubbed.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generators.ganzoo import export_zoo, read_checkpoint  # noqa: E402
from optimizers import GradientSearch, Objective, Weights, default_realism, spread_unit  # noqa: E402
from optimizers.inversion import guess, load_inversion  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.commands.compose_sim import load_targets  # noqa: E402
from studio.shipped import shipped_inversion  # noqa: E402


class StampedLines(io.TextIOBase):
    """A stdout that timestamps every line the reference prints ('iter : loss')."""

    def __init__(self, start: float):
        self.start, self.lines, self._buf = start, [], ""

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self.lines.append((time.perf_counter() - self.start, line))
        return len(text)


FIXES = {"models/progressive_gan.py": [("betas=[0, 0.99]", "betas=[0.0, 0.99]")]}


def scratch_copy(zoo: Path, scratch: Path) -> Path:
    """Copy the checkout's code and apply FIXES to the copy."""
    if not (zoo / "models" / "eval" / "inspirational_generation.py").is_file():
        raise SystemExit(f"{zoo}: not a pytorch_GAN_zoo checkout (no models/eval/inspirational_generation.py)")
    dest = scratch / "zoo"
    shutil.copytree(zoo / "models", dest / "models", ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
    for rel, edits in FIXES.items():
        path = dest / rel
        text = path.read_text()
        for old, new in edits:
            text = text.replace(old, new)
        path.write_text(text)
    return dest


def import_reference(zoo: Path):
    for name in ("h5py", "visdom"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.path.insert(0, str(zoo))
    from models.eval.inspirational_generation import IDModule, gradientDescentOnInput
    from models.progressive_gan import ProgressiveGAN
    return ProgressiveGAN, gradientDescentOnInput, IDModule


def zoo_model(model, ProgressiveGAN, tmp: Path):
    path = export_zoo(model, tmp / "model.pth")
    state = read_checkpoint(path)
    zoo = ProgressiveGAN(useGPU=False, dimLatentVector=model.latent_dim, depthScale0=model.config.depths[0])
    zoo.load_state_dict({**state, "config": dict(vars(state["config"]))})
    return zoo


def run_reference(zoo, target, steps: int, seed: int, gradient_descent, IDModule, lambda_d: float = 0.03):
    torch.manual_seed(seed)
    start = time.perf_counter()
    out, saved = StampedLines(start), sys.stdout
    sys.stdout = out
    try:
        _, vector, loss = gradient_descent(zoo, target, IDModule(), IDModule(), lambdaD=lambda_d, nSteps=steps, lr=1)
    finally:
        sys.stdout = saved
    seconds = time.perf_counter() - start
    curve, best = [], float("inf")  # (seconds, best loss so far) every 100 steps
    for t, line in out.lines:
        head, _, tail = line.partition(" : ")
        if head.strip().isdigit() and tail.strip():
            best = min(best, float(tail.split()[0]))
            curve.append((t, best))
    return vector.detach().reshape(1, -1), float(loss.reshape(-1)[0]), seconds, curve


def loss_at(curve: list[tuple[float, float]], t: float) -> float:
    """Best loss reached by time t on a (seconds, best) curve (inf before its first point)."""
    values = [loss for s, loss in curve if s <= t]
    return values[-1] if values else float("inf")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zoo", required=True, help="path of a pytorch_GAN_zoo checkout")
    p.add_argument("--model", default="faces64")
    p.add_argument("--data", help="val data set for the targets (default: from the model id)")
    p.add_argument("--targets", type=int, default=2)
    p.add_argument("--ref-steps", type=int, default=6000)
    p.add_argument("--budget", type=int, default=400, help="our gradient steps (plateau stop may end sooner)")
    p.add_argument("--batch", type=int, default=8, help="our restarts (8: the app's default)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--prune", default="0.1,0.25", help="fractions of the budget where restarts are halved")
    p.add_argument("--start", default="auto", help="auto (shipped inversion encoder) or none")
    p.add_argument("--loss", choices=("reference", "studio"), default="reference",
                   help="reference: realism 0.03 on D's raw score; studio: the model's own realism weight on D in "
                        "units of its spread over the model's samples (the reference gets lambdaD = weight / spread)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="zoo_scratch_", dir="/tmp"))
    ProgressiveGAN, gradient_descent, IDModule = import_reference(scratch_copy(Path(args.zoo), scratch))
    model = Catalog().generator(args.model)
    targets = load_targets(argparse.Namespace(images=None, data=args.data, targets=args.targets, seed=args.seed),
                           model, args.model)
    inv_path = shipped_inversion(Path(args.model).stem) if args.start == "auto" else None
    encoder = load_inversion(inv_path) if inv_path else None
    prune = tuple(float(f) for f in args.prune.split(",") if f)
    unit = spread_unit(model, needed=args.loss == "studio")
    weights = Weights(realism=default_realism(model)) if args.loss == "studio" else Weights()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        zoo = zoo_model(model, ProgressiveGAN, Path(tmp))
        shutil.rmtree(scratch, ignore_errors=True)
        for t in range(len(targets)):
            target = targets[t:t + 1]
            objective = Objective(model, target, weights=weights, realism_unit=unit)
            vec, ref_loss, ref_seconds, ref_curve = run_reference(zoo, target, args.ref_steps, args.seed + t,
                                                                  gradient_descent, IDModule, weights.realism / unit)
            ref_terms = objective.breakdown(vec)  # the same loss, computed by our code
            t0 = time.perf_counter()
            start = guess(encoder, target) if encoder is not None else None
            guess_seconds = time.perf_counter() - t0
            search = GradientSearch(objective, budget=args.budget, batch=args.batch, lr=args.lr, seed=args.seed + t,
                                    start=start, prune_at=prune)
            result = search.run()
            curve = [(s + guess_seconds, loss) for _, loss, s in result.history]
            reach = next((s for s, loss in curve if loss <= ref_loss), None)
            our_end = curve[-1][0]
            our_terms = objective.breakdown(result.latent)
            row = {"target": t, "ref_loss": ref_loss, "ref_loss_by_our_objective": ref_terms["loss"],
                   "ref_distance": ref_terms["distance"], "our_distance": our_terms["distance"],
                   "ref_seconds": ref_seconds, "our_loss": result.loss, "our_seconds": our_end,
                   "our_steps": result.steps, "stopped": result.stopped,
                   "our_seconds_to_ref_loss": reach, "speedup": ref_seconds / reach if reach else None,
                   "ref_loss_at_our_end": loss_at(ref_curve, our_end),
                   "our_loss_at_ref_end": loss_at(curve, ref_seconds), "start": "inversion" if encoder else "random"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    speedups = [r["speedup"] for r in rows if r["speedup"]]
    summary = {"model": args.model, "ref_steps": args.ref_steps, "threads": args.threads, "loss": args.loss,
               "realism": weights.realism, "realism_unit": unit,
               "rows": rows,
               "reached": f"{len(speedups)}/{len(rows)}",
               "median_speedup": sorted(speedups)[len(speedups) // 2] if speedups else None}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
