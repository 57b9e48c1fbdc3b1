"""What a person waits for in the app with a large model they bring: the published pytorch_GAN_zoo
PGAN architectures (random weights, written with `export_zoo`), opened as `python app.py --model
PATH` opens them, driven through the tabs' own callbacks (no browser: server time, PNG encoding
included), each architecture twice in fresh processes: "before" (every page full size in float32,
as the app drew them until `studio.display`) and "now" (the measured display plan: bfloat16
renders and, over the page budget, previews).

Per run: load, the display plan (first start: it fits the preview head; `head_cached`: a second
start reading it), a Browse page of 9 (median of 3), selecting a tile (full-size render + export
file), a Compose round (start + a pick + the next round, "auto" driver, median of 3), Inspire's
first streamed image and 3 steps of the app's default search, resident and peak memory.

    /work/bin/quiet .venv/bin/python benchmarks/large_models_app.py [--arch celebahq256 ...] [--out results/large_models_app.json]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import large_models  # noqa: E402
from benchmarks.large_models import peak_mb, rss_mb  # noqa: E402

# the zoo configurations of benchmarks/large_models.py, and DTD (128 px), which like fashionGen
# (256 px) follows the zoo's default depth schedule (512 for four scales, then halving), so
# fashionGen has the celebAHQ-256 architecture
ARCHS = {**large_models.ARCHS,
         "dtd128": {"latent_dim": 512, "depths": [512, 512, 512, 512, 256, 128], "channels": 3}}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _png_bytes(items) -> int:
    total = 0
    for im, _ in items:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        total += buf.tell()
    return total


def measure(path: str, threads: int, mode: str) -> dict:
    """In its own process: one checkpoint, one mode ("before" or "now")."""
    import torch

    torch.set_num_threads(threads)
    import studio.display as display
    from studio.app import browse, compose, inspire
    from studio.app.context import Ctx, Limits
    from studio.app.state import UserState
    from studio.catalog import Catalog

    if mode == "before":
        display.cpu_has_fast_bfloat16 = lambda: False  # float32 renders, every page full size
    out: dict = {"mode": mode, "rss_start_mb": round(rss_mb())}
    catalog = Catalog()
    out["load_s"], model_id = _timed(lambda: catalog.add_model(path))
    ctx = Ctx(catalog, limits=Limits(page_seconds=float("inf") if mode == "before" else display.PAGE_BUDGET_S))
    out["plan_s"], plan = _timed(lambda: ctx.display(model_id))
    out.update(page_px=plan.page, bfloat16=plan.bfloat16, rss_loaded_mb=round(rss_mb()))
    if mode == "now":  # a second start: the head is read from beside the file
        again = Catalog()
        fresh = again.add_model(path)
        out["plan_cached_s"] = _timed(lambda: Ctx(again).display(fresh))[0]
    st = UserState.new(model_id)

    pages = []
    for page in range(3):
        t, items = _timed(lambda: browse.generate(ctx, st, 0, page, 9, 0))
        t2, size = _timed(lambda: _png_bytes(items))
        pages.append(t + t2)
    out["page9_s"], out["page9_png_kb"] = statistics.median(pages), round(size / 1e3)
    out["select_s"] = _timed(lambda: (browse.select(ctx, st, "grid", 4), browse.selected_panel(ctx, st)))[0]

    out["compose_start_s"] = _timed(lambda: (compose.start(ctx, st, k=9, method="pick", strength=0.5,
                                                           source="random", seed=0),
                                             compose.round_view(ctx, st)))[0]
    rounds = []
    for i in range(3):
        rounds.append(_timed(lambda: (compose.choose(ctx, st, [i]), compose.round_view(ctx, st)))[0])
    out["compose_round_s"] = statistics.median(rounds)

    model = ctx.model(model_id)
    st.target = model.generate(model.sample_latents(1, seed=7)).clamp(-1, 1)
    st.target_name = "seed 7"
    began = time.perf_counter()
    events = []
    for item, done in inspire.search(ctx, st, method="gradient", budget=3, restarts=1, seed=0,
                                     weights={"pixel": 1.0}):
        latent = item.latent if done else item.best_latent
        ctx.render(model_id, latent)  # what the app streams: the best image at full size
        events.append(round(time.perf_counter() - began, 2))
    out["inspire_first_image_s"], out["inspire_3_steps_s"] = events[0], events[-1]
    out["rss_after_mb"], out["peak_rss_mb"] = round(rss_mb()), round(peak_mb())
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/large_models_app.json")
    p.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # internal: PATH MODE, in this process
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.threads, args.measure[1])))
        return 0

    from generators import PGAN, PGANConfig
    from generators.ganzoo import export_zoo

    results = {"cpu_threads": args.threads, "weights": "random (export_zoo of PGAN.random)", "models": {}}
    for name in args.arch:
        cfg = ARCHS[name]
        row = {**cfg}
        for mode in ("before", "now"):
            with tempfile.TemporaryDirectory(prefix="large-models-") as tmp:  # no head kept from another run
                path = export_zoo(PGAN.random(PGANConfig(**cfg, minibatch_stddev=True)), Path(tmp) / f"{name}.pth")
                row["file_mb"] = round(path.stat().st_size / 1e6)
                cmd = [sys.executable, __file__, "--measure", str(path), mode, "--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            row[mode] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else \
                {"error": proc.stderr.strip().splitlines()[-3:]}
            print(name, mode, json.dumps(row[mode]), flush=True)
        b, n = row["before"], row["now"]
        if "error" not in b and "error" not in n:
            row["speedup"] = {k: round(b[k] / n[k], 2) for k in ("page9_s", "select_s", "compose_round_s",
                                                                 "inspire_first_image_s", "inspire_3_steps_s")}
        results["models"][name] = row
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
