"""Server time of one compose round (pick -> next k candidates on screen), per shipped model.

Measures what the server does for a click: the callback (tell the preference search, ask, generate
k images, lineage and best image) plus Gradio's postprocessing of the outputs (PNG encoding into
its cache), in-process, without the network. Goal: <= 150 ms for 9 candidates on 2 CPU cores.

Wall time suffers from whatever else runs on the machine; CPU time of the measuring thread does
much less so. With `--threads 1` (torch on the calling thread only) that CPU time is what the
round costs a free core, an upper bound on the wall time with two free cores.

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

from studio.app import compose  # noqa: E402
from studio.app.context import Ctx  # noqa: E402
from studio.app.state import UserState  # noqa: E402
from studio.catalog import Catalog  # noqa: E402


def measure(ctx: Ctx, model_id: str, *, k: int, rounds: int, seed: int = 0) -> dict:
    """Per-round ms for the callback and for Gradio's postprocessing of its outputs."""
    gallery, lineage, image = (gr.Gallery(format="png", render=False), gr.Gallery(format="png", render=False),
                               gr.Image(format="png", render=False))
    st = UserState.new(model_id)
    compose.start(ctx, st, k=k, method="pick", strength=0.6, source="random", seed=seed)
    compose.round_view(ctx, st)  # round 1 on screen (and the model loaded)
    rng = random.Random(seed)
    callback, post, cpu = [], [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        compose.choose(ctx, st, [rng.randrange(k)])
        cands, strip, best, _status = compose.round_view(ctx, st)
        t1 = time.perf_counter()
        gallery.postprocess(cands)
        lineage.postprocess(strip)
        image.postprocess(best)
        t2, c2 = time.perf_counter(), time.thread_time()
        callback.append((t1 - t0) * 1e3)
        post.append((t2 - t1) * 1e3)
        cpu.append((c2 - c0) * 1e3)
    total = [a + b for a, b in zip(callback, post)]
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    return {"model": model_id, "k": k, "rounds": rounds,
            "callback_ms_median": round(statistics.median(callback), 1),
            "postprocess_ms_median": round(statistics.median(post), 1),
            "server_ms_median": round(statistics.median(total), 1), "server_ms_p90": round(q(total, 0.9), 1),
            "server_ms_max": round(max(total), 1), "thread_cpu_ms_median": round(statistics.median(cpu), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", help="catalog.json (default: the shipped one)")
    p.add_argument("--model", action="append", help="model id (repeatable; default: every generator)")
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the app's default machine has 2)")
    p.add_argument("--goal-ms", type=float, default=150.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    catalog = Catalog(args.catalog)
    ctx = Ctx(catalog=catalog)
    rows = [measure(ctx, m, k=args.k, rounds=args.rounds) for m in args.model or catalog.ids("generator")]
    load = os.getloadavg()[0]
    for r in rows:
        verdict = "ok" if r["server_ms_median"] <= args.goal_ms else f"ABOVE GOAL by {r['server_ms_median'] - args.goal_ms:.0f} ms"
        print(f"{r['model']:>12}  k={r['k']}  server median {r['server_ms_median']:6.1f} ms  p90 {r['server_ms_p90']:6.1f}"
              f"  (callback {r['callback_ms_median']:.1f} + postprocess {r['postprocess_ms_median']:.1f})"
              f"  thread CPU {r['thread_cpu_ms_median']:.1f} ms  {verdict}")
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs (other work slows every number)")
    print(json.dumps({"results": rows, "loadavg_1min": load, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
