"""Compose's other clicks on a shipped model: undo, going back along the lineage, switching the
optimizer (a new composite from the best so far), saving and loading a session with a composite,
each as the app runs it (the tab's callbacks, then the round on screen), after 20 rounds of the
default driver ("auto") for picks (elitist) and for rankings (bayes-image on faces64). The user's
choices are fixed (candidate 1, or the order as shown), so every run is the same.

    /work/bin/quiet .venv/bin/python -m benchmarks.compose_moves [--model faces64] [--json results/compose_moves_faces64.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 4)


def measure(model_id: str, method: str, rounds: int, switch_to: list[str]) -> dict:
    from studio.app import compose, keep
    from studio.app.context import Ctx
    from studio.app.factory import refresh_values
    from studio.app.state import UserState
    from studio.catalog import Catalog

    ctx = Ctx(Catalog())
    st = UserState.new(model_id)
    refresh_values(ctx, st)  # the page as loaded: the model and its grid
    out: dict = {"method": method}
    out["start_s"] = _timed(lambda: (compose.start(ctx, st, k=9, method=method, strength=0.5, source="random",
                                                   seed=0), compose.round_view(ctx, st)))
    out["driver"] = st.compose.optimizer  # what "auto" resolved to
    order = [1] if method == "pick" else list(range(9))
    times = [_timed(lambda: (compose.choose(ctx, st, order), compose.round_view(ctx, st))) for _ in range(rounds)]
    out["round_s_median"], out["round_s_max"] = statistics.median(times), max(times)
    out["undo_s"] = _timed(lambda: (compose.rewind(ctx, st, compose._pref(st).rounds - 1), compose.round_view(ctx, st)))
    out["back_to_round_5_s"] = _timed(lambda: (compose.rewind(ctx, st, 5), compose.round_view(ctx, st)))
    for _ in range(rounds - 5):  # back to 20 rounds before saving
        compose.choose(ctx, st, order)
    compose.round_view(ctx, st)
    saved: dict = {}
    out["save_session_s"] = _timed(lambda: saved.update(path=keep.save_session(ctx, st)))
    out["session_kb"] = round(Path(saved["path"]).stat().st_size / 1e3)
    fresh = UserState.new(model_id)
    out["load_session_s"] = _timed(lambda: (keep.open_file(ctx, fresh, str(saved["path"])), refresh_values(ctx, fresh)))
    for name in switch_to:
        out[f"switch_to_{name}_s"] = _timed(lambda: (compose.start(ctx, st, k=9, method=method, strength=0.5,
                                                                   source="best", seed=1, optimizer=name),
                                                     compose.round_view(ctx, st)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="faces64")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    results = {"model": args.model, "rounds": args.rounds, "threads": args.threads, "runs": []}
    for method, switch in (("pick", ["bayes-image", "CMA", "auto"]), ("rank", ["elitist", "bayes", "auto"])):
        row = measure(args.model, method, args.rounds, switch)
        print(json.dumps(row), flush=True)
        results["runs"].append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
