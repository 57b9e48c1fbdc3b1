"""Load: N concurrent gradio_client sessions doing compose rounds against `python app.py`.

Each client starts a composite, then picks a random candidate round after round for the whole
duration, fetching the candidate images as a browser would. Every answer is checked against the
client's own history (the round number it expects, a lineage as long as its own rounds, the
candidates shown being new), so any leak of one session's state into another counts as an error.
Goal: 20 clients for 2 minutes, zero errors, each sees only its own state.

    .venv/bin/python benchmarks/app_load.py [--clients 20] [--seconds 120] [--catalog ...] [--model ID]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402

from benchmarks.app_common import rss_mb, studio_process  # noqa: E402
from studio.app.compose import LINEAGE_SHOWN, lineage_label  # noqa: E402


def items(gallery) -> list[dict]:
    """Gallery items from an output (a plain list, or an update carrying its value)."""
    return gallery["value"] if isinstance(gallery, dict) else gallery


def fetch_image(http: httpx.Client, url: str, retries: list[str]) -> httpx.Response:
    """GET an image; like a browser, retry once when the server had just closed the idle
    keep-alive connection the request went out on (uvicorn closes them after 5 s)."""
    try:
        return http.get(url)
    except (httpx.ReadError, httpx.RemoteProtocolError) as e:
        retries.append(type(e).__name__)
        return http.get(url)


def client_loop(url: str, index: int, seconds: float, model: str | None, fetch: bool, out: dict) -> None:
    rng = random.Random(index)
    latencies: list[float] = []
    errors: list[str] = []
    rounds = 0
    out_retries: list[str] = []
    stage = "connecting"
    try:
        time.sleep(0.5 * index)  # users arrive over ten seconds, not in the same millisecond
        c = Client(url, verbose=False, download_files=False)
        stage = "starting a composite"
        http = httpx.Client(timeout=60)
        if model:
            c.predict(model, api_name="/set_model")
        k = rng.choice((4, 9, 16)) if index % 4 == 3 else 9  # most clients use 9, some 4 or 16
        seed = 1000 + index
        cands, lineage, _best, status = c.predict("random", k, "pick", 0.6, seed, "elitist", api_name="/compose_start")
        if "Round 1" not in status:
            errors.append(f"start: {status[:80]}")
        seen = {item["image"]["path"] for item in items(cands)}
        stage = "composing"
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                cands, lineage, _best, status = c.predict(str(rng.randrange(k)), api_name="/compose_round")
                cands = items(cands)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                errors.append(f"round {rounds + 1}: {type(e).__name__}: {str(e)[:120]}")
                continue
            latencies.append((time.perf_counter() - t0) * 1e3)
            rounds += 1
            shown = re.search(r"Round (\d+)\b", status)
            if not shown or int(shown.group(1)) != rounds + 1:
                errors.append(f"expected round {rounds + 1}, got: {status[:60]}")
            if f"{k} candidates" not in status or len(cands) != k:
                errors.append(f"expected {k} candidates, got {len(cands)}")
            in_strip = min(rounds, LINEAGE_SHOWN)
            if lineage.get("label") != lineage_label(rounds - in_strip, in_strip):
                errors.append(f"lineage {lineage.get('label')!r} after {rounds} rounds")
            paths = {item["image"]["path"] for item in cands}
            if paths & seen and len(paths & seen) == len(paths):
                errors.append("the same candidates twice")
            seen = paths
            if fetch:
                for item in cands:
                    try:
                        r = fetch_image(http, item["image"]["url"], out_retries)
                        if r.status_code != 200:
                            errors.append(f"image fetch: HTTP {r.status_code}")
                    except httpx.HTTPError as e:
                        errors.append(f"image fetch: {type(e).__name__}: {str(e)[:80]}")
    except Exception as e:  # noqa: BLE001
        errors.append(f"client failed while {stage}: {type(e).__name__}: {str(e)[:160]}")
    out[index] = {"rounds": rounds, "latencies": latencies, "errors": errors, "retries": out_retries}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=120, help="composing time per client (after arrival)")
    p.add_argument("--catalog", help="catalog.json (default: the shipped one)")
    p.add_argument("--model", help="model id (default: the catalog's default)")
    p.add_argument("--no-fetch", action="store_true", help="do not download the candidate images")
    args = p.parse_args()
    results: dict[int, dict] = {}
    peak = 0.0
    with studio_process(args.catalog) as (proc, url):
        threads = [threading.Thread(target=client_loop, args=(url, i, args.seconds, args.model, not args.no_fetch,
                                                              results)) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(1)
        wall = time.monotonic() - t0
    lat = sorted(x for r in results.values() for x in r["latencies"])
    errors = [f"client {i}: {e}" for i, r in sorted(results.items()) for e in r["errors"]]
    rounds = sum(r["rounds"] for r in results.values())
    retries = sum(len(r["retries"]) for r in results.values())
    q = lambda p_: lat[min(len(lat) - 1, int(p_ * len(lat)))] if lat else float("nan")  # noqa: E731
    print(f"{args.clients} clients, {wall:.0f} s: {rounds} compose rounds ({rounds / wall:.1f}/s), "
          f"{len(errors)} errors ({retries} image GETs retried once on a just-closed keep-alive connection)")
    print(f"round trip (client side, with queueing behind other clients): median {q(0.5):.0f} ms, "
          f"p95 {q(0.95):.0f} ms, max {q(1.0):.0f} ms; server RSS peak {peak:.0f} MB")
    per_client = [r["rounds"] for r in results.values()]
    if per_client:
        print(f"rounds per client: min {min(per_client)}, median {statistics.median(per_client):.0f}, max {max(per_client)}")
    kinds: dict[str, list[str]] = {}
    for e in errors:
        kinds.setdefault(re.sub(r"\d+", "N", e.split(": ", 1)[-1])[:60], []).append(e)
    for kind, es in kinds.items():
        print(f"  {len(es)} x {es[0]}")
    print(json.dumps({"clients": args.clients, "seconds": round(wall), "rounds": rounds, "errors": len(errors),
                      "retried_gets": retries,
                      "median_ms": round(q(0.5)), "p95_ms": round(q(0.95)), "rss_peak_mb": round(peak)}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
