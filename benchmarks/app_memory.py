"""Resident memory of the studio (`python app.py`) with every shipped model loaded and in use.

Starts app.py as its own process, then through gradio_client: switches to every generator and
browses/composes with it, and runs a short inspiration with every encoder in the catalog weighted,
so all generators and encoders are loaded. Reports the process's RSS (with any children) after
each stage. Goal: under 1.5 GB.

    .venv/bin/python benchmarks/app_memory.py [--catalog assets/catalog.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.app_common import rss_mb, studio_process  # noqa: E402
from studio.app.inspire import ENCODER_SLOTS  # noqa: E402
from studio.catalog import Catalog  # noqa: E402

GOAL_MB = 1536


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", help="catalog.json (default: the shipped one)")
    p.add_argument("--clients", type=int, default=5, help="sessions with a composite in progress at the end")
    args = p.parse_args()
    catalog = Catalog(args.catalog)
    target = Path("/tmp/studio-memory-target.png")
    Image.effect_noise((96, 96), 40).convert("RGB").save(target)
    stages = {}
    with studio_process(args.catalog) as (proc, url):
        stages["started"] = rss_mb(proc.pid)
        clients = [Client(url, verbose=False, download_files=False) for _ in range(args.clients)]
        for model_id in catalog.ids("generator"):
            for c in clients:
                c.predict(model_id, api_name="/set_model")
                c.predict(0, 0, 16, 0, api_name="/generate")
                c.predict("random", 9, "pick", 0.6, 0, "elitist", api_name="/compose_start")
                for pick in range(5):
                    c.predict(str(pick), api_name="/compose_round")
            stages[f"after {model_id}"] = rss_mb(proc.pid)
        for model_id in catalog.ids("generator"):  # every encoder offered for the model, weighted
            c = clients[0]
            c.predict(model_id, api_name="/set_model")
            c.predict(handle_file(str(target)), "gradient", 10, 2, 0, 1.0, *([0.5] * ENCODER_SLOTS), 1.0, 0.03,
                      api_name="/inspire")
        stages["after inspiration with every encoder"] = rss_mb(proc.pid)
    peak = max(stages.values())
    for name, mb in stages.items():
        print(f"{name:>40}: {mb:7.0f} MB")
    print(f"peak {peak:.0f} MB vs goal {GOAL_MB} MB: {'ok' if peak < GOAL_MB else f'ABOVE by {peak - GOAL_MB:.0f} MB'}")
    print(json.dumps({"rss_mb": stages, "peak_mb": round(peak), "goal_mb": GOAL_MB,
                      "generators": catalog.ids("generator"), "encoders": catalog.ids("encoder")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
