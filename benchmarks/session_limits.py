"""Session files at the limits: the largest allowed session opened as the studio opens it, and the
hostile uploads of issue 24 refused.

The largest allowed session (5,000 points of the shipped faces64 model, 500 compose rounds, 200 kept
images) goes through the app's own open path (`keep.open_file`: read, check, restore) and the kept
gallery it shows (`keep.kept_items`, every kept image rendered). The hostile files (a 200 kB deeply
nested JSON, a 13 MB session of 9,000 kept images, the same under a raised size limit) must be
refused in one line, fast.

    /work/bin/quiet .venv/bin/python benchmarks/session_limits.py [--model faces64] [--out results/session_limits.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from studio.app import keep  # noqa: E402
from studio.app.context import Ctx  # noqa: E402
from studio.app.state import UserState  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.session import LIMITS, Session, SessionError, SessionLimits  # noqa: E402


def largest(model: str, dim: int) -> Session:
    s = Session(model=model)
    z = torch.randn(LIMITS.nodes, dim, generator=torch.Generator().manual_seed(0))
    prev = None
    for i in range(LIMITS.nodes):
        prev = s.add(z[i], kind="compose" if i else "seed", parent=prev if prev is not None and i % 9 else None,
                     info={"seed": i}).id
    rnd = None
    for r in range(LIMITS.rounds):
        rnd = s.add_round(list(range(9 * r, 9 * r + 9)), parent_round=rnd).id
        s.rounds[rnd].choice = [9 * r]
    for i in range(LIMITS.kept):
        s.keep(i)
    return s


def timed(fn) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        out = fn()
    except SessionError as e:
        return time.perf_counter() - start, f"refused: {e}"
    return time.perf_counter() - start, str(out)[:200]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="faces64")
    p.add_argument("--out", default="results/session_limits.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    ctx = Ctx(Catalog())
    dim = ctx.latent_dim(args.model)
    ctx.model(args.model).generate(torch.zeros(1, dim))  # load the model outside the timings
    tmp = Path(tempfile.mkdtemp())
    big = largest(args.model, dim).save(tmp / "largest.json")
    results: dict = {"model": args.model, "limits": LIMITS.__dict__, "torch_threads": torch.get_num_threads()}

    st = UserState(session=Session(model=args.model))
    t_open, msg = timed(lambda: keep.open_file(ctx, st, str(big)))
    t_gallery, _ = timed(lambda: len(keep.kept_items(ctx, st)))
    t_parse, _ = timed(lambda: Session.load(big, latent_dims=ctx.latent_dims()))
    results["largest"] = {"bytes": big.stat().st_size, "nodes": LIMITS.nodes, "rounds": LIMITS.rounds,
                          "kept": LIMITS.kept, "load_s": round(t_parse, 3), "open_file_s": round(t_open, 3),
                          "kept_gallery_s": round(t_gallery, 3), "open_plus_gallery_s": round(t_open + t_gallery, 3),
                          "message": msg}

    nested = tmp / "nested.json"
    nested.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    zs = torch.randn(9000, dim, generator=torch.Generator().manual_seed(1)).double().tolist()
    kept = [{"model": args.model, "z": z, "label": f"kept image {i}", "info": {"kind": "seed", "seed": i}}
            for i, z in enumerate(zs)]  # about 13 MB at d = 64, as in issue 24
    hostile = tmp / "kept9000.json"
    hostile.write_text(json.dumps({"schema": "gan-studio-session/1", "model": args.model, "nodes": [], "kept": kept}))
    raised = SessionLimits(bytes=50_000_000)
    for name, fn in [("nested_200kB", lambda: Session.load(nested)),
                     ("kept9000", lambda: Session.load(hostile, latent_dims=ctx.latent_dims())),
                     ("kept9000_size_limit_raised", lambda: Session.load(hostile, latent_dims=ctx.latent_dims(),
                                                                         limits=raised))]:
        t, msg = timed(fn)
        path = nested if name.startswith("nested") else hostile
        results[name] = {"bytes": path.stat().st_size, "seconds": round(t, 4), "answer": msg}
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
