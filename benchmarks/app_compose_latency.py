"""Server time of one compose round (a pick -> the next k candidates on screen), per shipped model.

Two measurements, both of the server's work for one click:

- served: the studio runs in this process and a gradio_client clicks `/compose_round`; we time
  Gradio's `Blocks.process_api` (preprocessing, the callback, postprocessing: the PNGs written to
  its cache), i.e. everything but the network. The client's round trip is reported beside it.
- direct: the callback and Gradio's postprocessing called in a loop on this thread, reporting wall
  time and this thread's CPU time. With `--threads 1` (torch on the calling thread) the CPU time is
  what a round costs one free core, whatever else the machine is running.

Goal: <= 150 ms of server time for 9 candidates on 2 CPU cores.

    .venv/bin/python benchmarks/app_compose_latency.py [--catalog assets/catalog.json] [--k 9]
        [--rounds 40] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from gradio.blocks import postprocess_update_dict  # noqa: E402
from gradio_client import Client  # noqa: E402

from studio.app import compose  # noqa: E402
from studio.app.context import Ctx  # noqa: E402
from studio.app.state import UserState  # noqa: E402
from studio.app.testing import running  # noqa: E402
from studio.catalog import Catalog  # noqa: E402


def q(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def postprocess(component, value) -> None:
    """What Gradio does with one output value (an update dict or a plain value)."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        postprocess_update_dict(component, dict(value), True)
    else:
        component.postprocess(value)


def direct(ctx: Ctx, model_id: str, *, k: int, rounds: int, seed: int = 0) -> dict:
    outputs = (gr.Gallery(format="png", render=False), gr.Image(format="png", render=False),
               gr.Image(format="png", render=False))  # candidates, lineage strip, current choice
    st = UserState.new(model_id)
    compose.start(ctx, st, k=k, method="pick", strength=0.6, source="random", seed=seed, optimizer="elitist")
    compose.round_view(ctx, st)  # round 1 on screen (and the model loaded)
    rng = random.Random(seed)
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        compose.choose(ctx, st, [rng.randrange(k)])
        values = compose.round_view(ctx, st)[:3]
        for component, value in zip(outputs, values):
            postprocess(component, value)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    return {"direct_wall_ms_median": round(statistics.median(wall), 1),
            "direct_thread_cpu_ms_median": round(statistics.median(cpu), 1)}


def served(catalog: Catalog, model_id: str, *, k: int, rounds: int, seed: int = 0) -> dict:
    with running(catalog) as (demo, url):
        times: list[tuple[str, float]] = []
        original = demo.process_api

        async def timed(block_fn, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await original(block_fn, *args, **kwargs)
            finally:
                fn = block_fn if not isinstance(block_fn, int) else demo.fns[block_fn]
                times.append((fn.api_name or "", (time.perf_counter() - t0) * 1e3))

        demo.process_api = timed
        c = Client(url, verbose=False, download_files=False)
        c.predict(model_id, api_name="/set_model")
        c.predict("random", k, "pick", 0.6, seed, "elitist", api_name="/compose_start")
        rng = random.Random(seed)
        trips = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            c.predict(str(rng.randrange(k)), api_name="/compose_round")
            trips.append((time.perf_counter() - t0) * 1e3)
        server = [ms for name, ms in times if name == "compose_round"]
    return {"served_ms_median": round(statistics.median(server), 1), "served_ms_p90": round(q(server, 0.9), 1),
            "served_ms_max": round(max(server), 1), "round_trip_ms_median": round(statistics.median(trips), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", help="catalog.json (default: the shipped one)")
    p.add_argument("--model", action="append", help="model id (repeatable; default: every generator)")
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the target machine has 2 cores)")
    p.add_argument("--goal-ms", type=float, default=150.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    catalog = Catalog(args.catalog)
    ctx = Ctx(catalog=catalog)
    rows = []
    load_before = os.getloadavg()[0]
    for m in args.model or catalog.ids("generator"):
        row = {"model": m, "k": args.k, "rounds": args.rounds, **direct(ctx, m, k=args.k, rounds=args.rounds),
               **served(catalog, m, k=args.k, rounds=args.rounds)}
        rows.append(row)
        verdict = "ok" if row["served_ms_median"] <= args.goal_ms else \
            f"ABOVE GOAL by {row['served_ms_median'] - args.goal_ms:.0f} ms"
        print(f"{m:>12} k={args.k}: served {row['served_ms_median']:6.1f} ms median, p90 {row['served_ms_p90']:6.1f}"
              f" (round trip {row['round_trip_ms_median']:.0f}); direct {row['direct_wall_ms_median']:.1f} ms wall, "
              f"{row['direct_thread_cpu_ms_median']:.1f} ms thread CPU  [{verdict}]", flush=True)
    load = max(load_before, os.getloadavg()[0])
    print(f"load average up to {load:.1f} on {os.cpu_count()} CPUs during the run (other work inflates wall times)")
    print(json.dumps({"results": rows, "loadavg_1min": load, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
