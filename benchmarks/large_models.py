"""The published pytorch_GAN_zoo PGAN architectures on a CPU, with random weights: what a user who
brings such a checkpoint waits for.

For each architecture a random-weight checkpoint is written with `export_zoo` (the zoo's own
format: netG, avgG, netD), then, in a fresh process each so memory is its own: load time
(`Catalog.add_model`, the app's `--model` path), resident memory, 9 images, 9 progressive previews
at 64 px (and at 32 px), the discriminator on 9 images, one compose round (propose 9 candidates and
render them), one Inspire gradient step of 8 restarts (pixel distance + realism, backward through
G and D; up to --inspire-up-to px), 9 images and 64 px previews rendered in bfloat16
(`PGAN.use_bfloat16`) with their error against float32, and peak memory.

    /work/bin/quiet .venv/bin/python benchmarks/large_models.py [--arch celebahq256 celebahq512] [--out results/large_models_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# zoo configurations (depthScale0, depthOtherScales): celebAHQ-256 as in issue 24; 512 adds a 32-channel scale
ARCHS = {
    "celebahq256": {"latent_dim": 512, "depths": [512, 512, 512, 512, 256, 128, 64], "channels": 3},
    "celebahq512": {"latent_dim": 512, "depths": [512, 512, 512, 512, 256, 128, 64, 32], "channels": 3},
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(path: str, threads: int, inspire: bool = True) -> dict:
    """Runs in its own process: every number for one checkpoint."""
    import torch

    torch.set_num_threads(threads)
    from optimizers import Objective, Weights, make_search
    from optimizers.preference import PreferenceSearch
    from studio.catalog import Catalog

    out: dict = {"torch_threads": threads, "rss_start_mb": round(rss_mb())}
    catalog = Catalog()
    t, model_id = timed(lambda: catalog.add_model(path))
    model = catalog.generator(model_id)
    out.update(load_s=round(t, 2), rss_loaded_mb=round(rss_mb()),
               generator_parameters=sum(p.numel() for p in model.generator.parameters()))
    z = model.sample_latents(9, seed=0)
    model.generate(z[:1])  # first-call allocations outside the timing
    out["images9_s"] = round(timed(lambda: model.generate(z))[0], 3)
    for r in (64, 32):
        if r < model.resolution:
            model.preview(z[:1], r)
            out[f"preview9_{r}px_s"] = round(timed(lambda: model.preview(z, r), repeat=2)[0], 3)
    images = model.generate(z)
    out["realism9_s"] = round(timed(lambda: model.realism(images))[0], 3)

    def compose_round():
        search = PreferenceSearch(model.latent_dim, k=9, seed=0)
        candidates = search.ask()
        shown = model.generate(candidates)
        search.tell_pick(0)
        return shown
    PreferenceSearch(model.latent_dim, k=9, seed=1).ask()  # the optimizer's first use (imports) outside the timing
    out["compose_round_s"] = round(timed(compose_round)[0], 3)
    target = model.generate(model.sample_latents(1, seed=5))
    objective = Objective(model, target, weights=Weights(distance=1.0, prior=1.0, realism=0.03))
    search = make_search("gradient", objective, budget=3, seed=0, batch=8)
    if inspire:
        search.step()  # the first step allocates
        out["inspire_step8_s"] = round(timed(search.step)[0], 2)
    # bfloat16 renders (channels-last copy, PGAN.use_bfloat16) against float32, and the 64 px preview
    reference = model.generate(z)
    model.use_bfloat16()
    model.generate(z[:1])
    out["images9_bf16_s"] = round(timed(lambda: model.generate(z), repeat=2)[0], 3)
    err = (model.generate(z) - reference).abs()
    out["bf16_error"] = {"mean_abs": round(float(err.mean()), 4), "max_abs": round(float(err.max()), 4),
                         "image_std": round(float(reference.std()), 4)}
    if model.resolution > 64:
        model.preview(z[:1], 64)
        out["preview9_64px_bf16_s"] = round(timed(lambda: model.preview(z, 64), repeat=2)[0], 3)
    out["rss_after_mb"], out["peak_rss_mb"] = round(rss_mb()), round(peak_mb())
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/large_models_cpu.json")
    p.add_argument("--inspire-up-to", type=int, default=256, help="Inspire step only up to this resolution")
    p.add_argument("--no-inspire", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one checkpoint, in this process
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, inspire=not args.no_inspire)))
        return 0

    from generators import PGAN, PGANConfig
    from generators.ganzoo import export_zoo

    results = {"cpu_threads": args.threads, "weights": "random (export_zoo of PGAN.random)", "models": {}}
    tmp = Path(tempfile.mkdtemp(prefix="large-models-"))
    for name in args.arch:
        cfg = ARCHS[name]
        path = export_zoo(PGAN.random(PGANConfig(**cfg, minibatch_stddev=True)), tmp / f"{name}.pth")
        cmd = [sys.executable, __file__, "--measure", str(path), "--threads", str(args.threads)]
        if 4 * 2 ** (len(cfg["depths"]) - 1) > args.inspire_up_to:
            cmd.append("--no-inspire")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            results["models"][name] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results["models"][name] = {**cfg, "file_mb": round(path.stat().st_size / 1e6),
                                       **json.loads(proc.stdout.strip().splitlines()[-1])}
        print(name, json.dumps(results["models"][name]), flush=True)
        path.unlink()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
