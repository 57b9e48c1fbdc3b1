"""Training speed, side by side: our trainer vs pytorch_GAN_zoo's PGAN, same configuration.

    python -m benchmarks.train_speed --zoo /path/to/pytorch_GAN_zoo [--seconds 20] [--threads 2] [--rounds 3]

Both run on the same random in-memory images, one after the other, each in a child process with
the same thread count, at 4x4 (stable) and 8x8 (fading in; `--scales 3` adds 16x16, fading in),
depths 256/256/128/64/32, latent 128, batch 16 (the reference's default; 32 on a GPU). We also time
our own per-scale batch sizes (64 at 4x4 and 8x8, 32 at 16x16, as `train gan`'s presets on a CPU;
256 / 128 on a GPU, as scripts/train_gpu.sh). Printed: images/s of each and the ratio.
On a shared machine single timings move by tens of percent; `--rounds R` repeats all of them,
interleaved, and prints medians (ratios: the median of the per-round ratios) with their range.
`--gp-every K` adds one more row of ours at our batches with the gradient penalty on every K-th
step only (weight lambda * K, StyleGAN2's lazy regularisation): a different configuration,
timed to show what that deviation would buy, not counted toward the same-configuration goal.
On a CPU ours computes the 3x3 convolutions at 4x4 and 8x8 by Winograd's algorithm
(`generators.winograd`); one more row times ours at our batches with oneDNN's direct convolutions.
On a GPU ours replays each step as a CUDA graph (`generators.step_graph`); one more row times
ours at the same batch without it.

The reference is timed generously: only its per-iteration work (real-image fade, the alpha
update every 32 iterations, `optimizeParameters`), without its DataLoader or logging. Its
checkout is copied to a scratch folder (default /tmp/zoo_bench) and patched there, never here:
Adam betas as floats (torch >= 2.x rejects ints) and, on CPU, `updateAlpha` reaching the plain
moving-average generator (`getOriginalAvgG()`, there is no DataParallel wrapper). It needs h5py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPTHS = (256, 256, 128, 64, 32)
LATENT = 128
PATCHES = {
    "models/progressive_gan.py": [("betas=[0, 0.99]", "betas=[0.0, 0.99]"),
                                  ("self.avgG.module.setNewAlpha(newAlpha)",
                                   "self.getOriginalAvgG().setNewAlpha(newAlpha)")],
}


def scratch_copy(zoo: Path, dest: Path) -> Path:
    """Copy the reference to `dest` and apply the two local fixes there."""
    if not (zoo / "models" / "progressive_gan.py").is_file():
        raise SystemExit(f"{zoo}: not a pytorch_GAN_zoo checkout (no models/progressive_gan.py)")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(zoo, dest, ignore=shutil.ignore_patterns(".git"))
    for rel, subs in PATCHES.items():
        path = dest / rel
        text = path.read_text()
        for old, new in subs:
            if old in text:
                text = text.replace(old, new)
        path.write_text(text)
    return dest


def images_per_second(step, batch: int, seconds: float, device: str, warmup: int = 6) -> float:
    """Call `step(it)` (one training iteration on `batch` images) until `seconds` have been timed
    after `warmup` iterations (ours on a GPU: 3 eager steps and the CUDA graph's capture); on a GPU
    the clock starts and stops on a synchronised device."""
    import torch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    it, done, start = 0, 0, 0.0
    while True:
        step(it)
        it += 1
        if it == warmup:
            sync()
            start = time.perf_counter()
        elif it > warmup:
            done += batch
            if it % 8 == 0 and time.perf_counter() - start > seconds:
                sync()
                return done / (time.perf_counter() - start)


def zoo_step(zoo: Path, scale: int, batch: int, device: str = "cpu"):
    """`step(it)`: one training iteration of the reference at `scale` (its alpha schedule, real fade)."""
    sys.path.insert(0, str(zoo))
    import torch
    import torch.nn.functional as F
    from models.progressive_gan import ProgressiveGAN
    torch.manual_seed(0)
    model = ProgressiveGAN(dimLatentVector=LATENT, depthScale0=DEPTHS[0], miniBatchStdDev=True,
                           useGPU=device.startswith("cuda"),
                           lossMode="WGANGP", lambdaGP=10.0, epsilonD=0.001, baseLearningRate=0.001, dimOutput=1)
    for d in DEPTHS[1:scale + 1]:
        model.addScale(d)
    res = 4 * 2 ** scale
    data = torch.rand(512, 1, res, res) * 2 - 1
    alpha = 1.0 if scale else 0.0
    model.updateAlpha(alpha)

    def step(it: int) -> None:
        nonlocal alpha
        if scale and it % 32 == 0:  # the reference's linear schedule: a jump every 32 iterations
            alpha = max(0.0, alpha - 1 / 600)
            model.updateAlpha(alpha)
        x = data[(it * batch) % 512:(it * batch) % 512 + batch]
        if model.config.alpha > 0:
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = model.config.alpha * low + (1 - model.config.alpha) * x
        model.optimizeParameters(x)

    return step


# our trainer as the child processes time it: keyword arguments of `our_step` per `--child` name
OUR_VARIANTS: dict[str, dict] = {"ours": {}, "eager": {"cuda_graphs": False}, "bf16": {"precision": "bf16"},
                                 "direct": {"winograd": False}}


def our_step(scale: int, batch: int, device: str = "cpu", gp_every: int = 1, cuda_graphs: bool | None = None,
             precision: str = "fp32", winograd: bool | None = None):
    """`step(it)`: one iteration of our trainer at `scale` (a fade phase from 8x8 on)."""
    sys.path.insert(0, str(ROOT))
    from generators.pgan import PGANConfig
    from generators.train import Trainer, keep_freed_memory
    from generators.train_config import TrainConfig
    from generators.train_run import RandomStream
    if device == "cpu":
        keep_freed_memory()  # as `train gan` runs (generators.train_run.train)
    n = scale + 1
    cfg = TrainConfig(PGANConfig(latent_dim=LATENT, depths=DEPTHS[:n], channels=1), batch_sizes=(batch,) * n,
                      fade_images=(0,) + (10 ** 8,) * (n - 1), stable_images=(10 ** 8,) * n, gp_every=gp_every,
                      precision=precision)
    t = Trainer(cfg, RandomStream(1, 4 * 2 ** scale), progress=False, device=device, cuda_graphs=cuda_graphs,
                winograd=winograd)
    t.phase_index = len(t.phases) - 2 if scale else 0
    t._enter_phase()
    return lambda _it: t.train_step()


def child(args: argparse.Namespace) -> None:
    import torch
    torch.set_num_threads(args.threads)
    step = (zoo_step(Path(args.zoo), args.scale, args.batch, args.device) if args.who == "zoo"
            else our_step(args.scale, args.batch, args.device, args.gp_every, **OUR_VARIANTS[args.who]))
    speed = images_per_second(step, args.batch, args.seconds, args.device)
    print(json.dumps({"images_per_s": speed}))


def measure(who: str, zoo: Path, scale: int, batch: int, seconds: float, threads: int, device: str,
            gp_every: int = 1) -> float:
    cmd = [sys.executable, "-m", "benchmarks.train_speed", "--child", who, "--zoo", str(zoo), "--scale", str(scale),
           "--batch", str(batch), "--seconds", str(seconds), "--threads", str(threads), "--device", device,
           "--gp-every", str(gp_every)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if out.returncode:
        raise SystemExit(f"{who} failed:\n{out.stderr[-2000:]}")
    if "capture failed" in out.stderr:  # ours fell back to the plain step: say so, the row is not graphed
        print(out.stderr[-2000:], file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zoo", required=True, help="pytorch_GAN_zoo checkout (read only; copied to --scratch)")
    p.add_argument("--scratch", default="/tmp/zoo_bench")
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the measurements, interleaved; medians of speeds and of per-round ratios")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--device", default="cpu", help="cpu | cuda (on a GPU: batch 32 as in the issue's H200 run)")
    p.add_argument("--batch", type=int, help="the shared batch size (default 16 on CPU, 32 on a GPU)")
    p.add_argument("--our-batches", type=lambda t: tuple(int(v) for v in t.split(",")),
                   help="our per-scale batches from 4x4 on (default 64,64,32 on CPU, 256,128,128 on a GPU)")
    p.add_argument("--scales", type=int, default=2, help="how many scales from 4x4 to time (3: up to 16x16)")
    p.add_argument("--gp-every", type=int, default=1,
                   help="K > 1: also time ours at our batches with the lazy penalty every K steps (a deviation)")
    p.add_argument("--bf16", action="store_true",
                   help="also time ours in bfloat16 mixed precision (`--precision bf16`), at both batch sizes")
    p.add_argument("--child", choices=("zoo", *OUR_VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--scale", type=int, default=0, help=argparse.SUPPRESS)
    return p


def scale_runs(args: argparse.Namespace, our_batch: int, gpu: bool) -> tuple[dict, dict]:
    """What is timed at one scale: run name -> (`--child` name, batch, gp_every), and the rows of
    ours beyond the same-batch and our-batch ones: run name -> (its label, JSON key of its speed,
    JSON key of its ratio)."""
    b = args.batch
    runs = {"zoo": ("zoo", b, 1), "ours_same": ("ours", b, 1), "ours_tuned": ("ours", our_batch, 1)}
    extras = {}
    if args.gp_every > 1:
        runs["ours_lazy"] = ("ours", our_batch, args.gp_every)
        extras["ours_lazy"] = (f"ours, penalty every {args.gp_every} steps (a deviation)",
                               f"ours_batch{our_batch}_gp_every{args.gp_every}", "ratio_lazy_gp")
    if args.bf16:
        runs.update(ours_bf16_same=("bf16", b, 1), ours_bf16_tuned=("bf16", our_batch, 1))
        extras["ours_bf16_same"] = ("ours bf16", f"ours_bf16_batch{b}", "ratio_bf16_same_batch")
        extras["ours_bf16_tuned"] = ("ours bf16", f"ours_bf16_batch{our_batch}", "ratio_bf16_our_batch")
    if gpu:  # what the CUDA graph buys: ours at the same batch launching every kernel from Python
        runs["ours_eager"] = ("eager", b, 1)
        extras["ours_eager"] = ("ours without CUDA graphs", f"ours_batch{b}_no_graphs",
                                "ratio_same_batch_no_graphs")
    else:  # what Winograd's convolutions buy: ours at our batch with oneDNN's direct ones
        runs["ours_direct"] = ("direct", our_batch, 1)
        extras["ours_direct"] = ("ours, direct convolutions", f"ours_batch{our_batch}_direct",
                                 "ratio_our_batch_direct")
    return runs, extras


def time_scale(args: argparse.Namespace, zoo: Path, scale: int, our_batch: int, gpu: bool) -> tuple[dict, str]:
    """Every run at `scale`, `--rounds` times; returns the JSON row and the printed line."""
    b = args.batch
    runs, extras = scale_runs(args, our_batch, gpu)
    # rounds interleave the trainers, so a load change on a shared machine hits both alike
    speeds = [{name: measure(who, zoo, scale, batch, args.seconds, args.threads, args.device, k)
               for name, (who, batch, k) in runs.items()} for _ in range(args.rounds)]
    med = {name: statistics.median(r[name] for r in speeds) for name in runs}
    ratios = {name: [r[name] / r["zoo"] for r in speeds] for name in runs if name != "zoo"}
    ratio = {name: statistics.median(col) for name, col in ratios.items()}
    row = {"resolution": 4 * 2 ** scale, f"zoo_batch{b}": med["zoo"], f"ours_batch{b}": med["ours_same"],
           f"ours_batch{our_batch}": med["ours_tuned"], "ratio_same_batch": ratio["ours_same"],
           "ratio_our_batch": ratio["ours_tuned"], "rounds": speeds}
    res = f"{4 * 2 ** scale}x{4 * 2 ** scale}"
    spread = "" if args.rounds == 1 else " [" + ", ".join(
        f"{min(c):.2f}-{max(c):.2f}" for c in ratios.values()) + " over rounds]"
    line = f"{res}: pytorch_GAN_zoo {med['zoo']:.0f} img/s (batch {b})"
    labels = {"ours_same": "ours", "ours_tuned": "ours", **{name: e[0] for name, e in extras.items()}}
    for name, label in labels.items():
        line += f" | {label} {med[name]:.0f} img/s (batch {runs[name][1]}, x{ratio[name]:.2f})"
    for name, (_, speed_key, ratio_key) in extras.items():
        row.update({speed_key: med[name], ratio_key: ratio[name]})
    return row, line + spread


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    gpu = args.device.startswith("cuda")
    args.batch = args.batch or (32 if gpu else 16)
    if args.child:
        args.who = args.child
        child(args)
        return 0
    zoo = scratch_copy(Path(args.zoo), Path(args.scratch))
    our_batches = args.our_batches or ((256, 128, 128) if gpu else (64, 64, 32))
    if not 1 <= args.scales <= min(len(our_batches), len(DEPTHS)):
        raise SystemExit(f"--scales {args.scales}: give --our-batches for each of them")
    rows = []
    for scale, our_batch in enumerate(our_batches[:args.scales]):
        row, line = time_scale(args, zoo, scale, our_batch, gpu)
        rows.append(row)
        print(line, flush=True)
    if args.json:
        summary = {"device": args.device, "threads": args.threads, "rounds": args.rounds, "gp_every": args.gp_every,
                   "rows": rows}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
