"""Where a training step's time goes, ours vs pytorch_GAN_zoo's, at the same configuration.

    python -m benchmarks.train_profile --zoo /path/to/pytorch_GAN_zoo [--scale 0|1] [--batch 16] [--who ours|zoo]

Runs `--steps` iterations under torch.profiler (after 5 warm-up ones) in this process and prints
ms per iteration, the profiled self time, the share spent inside convolution and matmul kernels
(the arithmetic both trainers must do), and the top operators. Configuration as in
`benchmarks/train_speed.py`, whose iterations it runs (`our_step`, `zoo_step`: the reference with its
alpha schedule and real-image fade); the reference is used from the scratch copy that
`train_speed.py` makes and patches (run that first).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_speed import our_step, zoo_step  # noqa: E402

KERNELS = ("mkldnn_convolution", "convolution_backward", "aten::mm", "aten::addmm", "aten::bmm")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zoo", default="/tmp/zoo_bench", help="the patched scratch copy made by train_speed.py")
    p.add_argument("--who", choices=("ours", "zoo"), default="ours")
    p.add_argument("--scale", type=int, default=0, help="0: 4x4 (stable), 1: 8x8 (fading in)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    step = our_step(args.scale, args.batch) if args.who == "ours" else zoo_step(Path(args.zoo), args.scale, args.batch)
    for it in range(5):
        step(it)
    start = time.perf_counter()
    for it in range(5, 5 + args.steps):
        step(it)
    wall = (time.perf_counter() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for it in range(5 + args.steps, 5 + 2 * args.steps):
            step(it)
    ops = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ops) / args.steps / 1e3
    kernels = sum(e.self_cpu_time_total for e in ops if any(k in e.key for k in KERNELS)) / args.steps / 1e3
    print(f"{args.who}, {4 * 2 ** args.scale}x{4 * 2 ** args.scale}, batch {args.batch}: {wall * 1e3:.1f} ms/iteration "
          f"({args.batch / wall:.0f} img/s); profiled {total:.1f} ms, of which conv + matmul kernels {kernels:.1f} ms "
          f"({100 * kernels / total:.0f}%)")
    print(ops.table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
