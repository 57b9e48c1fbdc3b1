"""First paint: how long a new browser waits for the first Browse images of `python app.py`.

Starts the studio once, then opens it `--repeats` times in fresh Chromium contexts (no cache) and
records, per visit: the time from navigation to the page's load event, to the first Browse tile
on screen, the number of requests and the bytes transferred, and which requests took longest.

    .venv/bin/python benchmarks/app_first_paint.py [--repeats 5] [--catalog ...] [--json results/app_first_paint.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from benchmarks.app_common import studio_process  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def visit(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sizes: list[tuple[str, int]] = []
    page.on("response", lambda r: sizes.append((r.url, int(r.headers.get("content-length") or 0))))
    began = time.perf_counter()
    page.goto(url, wait_until="load")
    loaded = time.perf_counter() - began
    page.locator("#browse-grid img").first.wait_for(state="visible", timeout=60_000)
    tile = time.perf_counter() - began
    timing = page.evaluate("() => performance.getEntriesByType('resource')"
                           ".map(e => [e.name, e.startTime, e.duration])")
    context.close()
    slowest = sorted(timing, key=lambda t: -(t[1] + t[2]))[:5]
    return {"load_event_s": round(loaded, 3), "first_tile_s": round(tile, 3), "requests": len(sizes),
            "kilobytes": round(sum(s for _, s in sizes) / 1024), "last_to_finish": [
                {"url": u.split("/")[-1][:60], "end_ms": round(s + d)} for u, s, d in slowest]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--json")
    args = p.parse_args(argv)
    with studio_process(args.catalog) as (_proc, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
        visit(browser, url)  # the server's own first requests (caches, lazy imports) outside the numbers
        visits = [visit(browser, url) for _ in range(args.repeats)]
        browser.close()
    summary = {k: statistics.median(v[k] for v in visits) for k in ("load_event_s", "first_tile_s", "requests",
                                                                   "kilobytes")}
    text = json.dumps({"summary": summary, "visits": visits}, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
