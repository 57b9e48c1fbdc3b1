"""Per-step interleaved A/B of one CPU training saving, in one process.

    python -m benchmarks.train_step_ab --toggle malloc|pool|c [--scale 1] [--batch 64] [--pairs 40]

On a shared machine, timings of whole runs move by tens of percent from one minute to the next;
alternating single training steps with and without a saving (order swapped every pair) and taking
the median of the per-pair ratios cancels most of that. Configuration as `benchmarks/train_speed.py`
(depths 256/256/..., latent 128; scale 1 is the 8x8 fade). Toggles:
- malloc: `generators.train.keep_freed_memory` (glibc's mallopt) against glibc's defaults (thresholds
  128 kB; glibc's own adaptive thresholds cannot be restored in-process, so "off" is slightly harsher);
- pool: `pgan.downscale2d` (a matmul) against F.avg_pool2d;
- c: Winograd's transforms as generated C (`generators.winograd_c`) against the matmuls.
Prints both medians (ms per step) and the speed-up's median and quartiles.
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def switch(toggle: str):
    """on(flag): turn the saving on (True) or off (False)."""
    import torch.nn.functional as F
    from generators import pgan, train, winograd, winograd_c
    if toggle == "malloc":
        libc = ctypes.CDLL("libc.so.6")

        def on(flag: bool) -> None:
            if flag:
                train.keep_freed_memory()
            else:
                libc.mallopt(-3, 128 * 1024), libc.mallopt(-1, 128 * 1024)  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        return on
    if toggle == "pool":
        fast, slow = pgan.downscale2d, (lambda x: F.avg_pool2d(x, 2))

        def on(flag: bool) -> None:
            pgan.downscale2d = train.downscale2d = fast if flag else slow
        return on
    if not winograd_c.available():
        raise SystemExit("the C transforms are not available here (no compiler?)")
    sizes = winograd.C_SIZES

    def on(flag: bool) -> None:
        winograd.C_SIZES = sizes if flag else ()
    return on


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--toggle", choices=("malloc", "pool", "c"), required=True)
    p.add_argument("--scale", type=int, default=1, help="0: 4x4, 1: 8x8 (fading in)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from benchmarks.train_speed import our_step
    step, on = our_step(args.scale, args.batch), switch(args.toggle)
    for i in range(3):
        for flag in (False, True):
            on(flag)
            step(i)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.pairs):
        for flag in ((False, True) if i % 2 else (True, False)):
            on(flag)
            start = time.perf_counter()
            step(i)
            times[flag].append(time.perf_counter() - start)
    ratios = [off / with_ for off, with_ in zip(times[False], times[True])]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"{args.toggle}, {4 * 2 ** args.scale}x{4 * 2 ** args.scale}, batch {args.batch}: without "
          f"{statistics.median(times[False]) * 1e3:.1f} ms, with {statistics.median(times[True]) * 1e3:.1f} ms per step; "
          f"speed-up median {statistics.median(ratios):.3f} (quartiles {q1:.3f}-{q3:.3f}, {args.pairs} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
