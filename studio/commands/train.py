"""`train gan`: progressive-GAN training on faces | fashion | textures | FOLDER.

`train` is a command group: other modules add subcommands through `register_train(subparsers)`
(e.g. `studio.commands.train_encoder` adds `train encoder`). Multi-process: launch the same
command with `torchrun --nproc_per_node N -m studio train gan ...`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch

from studio.devices import add_device_argument
from studio.imageio import grid, save_png

# the shipped models' architectures, and per-scale batch sizes for a CPU (the GPU recipe,
# scripts/train_gpu.sh, passes larger ones). 64 at 8x8: 1.2x the images/s of 32 with Winograd's
# convolutions, and no worse per image (results/winograd_quality_fashion.md)
PRESETS = {
    "faces": dict(depths=(128, 128, 64, 32, 16), batch_sizes=(64, 64, 32, 16, 16)),
    "fashion": dict(depths=(128, 128, 64, 32), batch_sizes=(64, 64, 32, 16)),
    "textures": dict(depths=(128, 128, 64, 32, 16), batch_sizes=(64, 64, 32, 16, 16)),
}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train models (train gan | train encoder)")
    train_sub = p.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    register_gan(train_sub)
    try:
        extra = importlib.import_module("studio.commands.train_encoder")
    except ImportError:
        extra = None
    if extra is not None and hasattr(extra, "register_train"):
        extra.register_train(train_sub)


def register_gan(train_sub: argparse._SubParsersAction) -> None:
    from generators.train_config import LOSSES, PRECISIONS
    p = train_sub.add_parser("gan", help="train a progressive GAN",
                             description="Progressive GAN (WGAN-GP, or --loss logistic with R1). Per-scale lists have one value per "
                                         "scale starting at 4x4.")
    p.add_argument("--data", required=True, help="faces | fashion | textures | FOLDER of images")
    p.add_argument("--out", required=True, help="run folder (checkpoint, samples, log, final weights)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--max-minutes", type=float, help="plan phase lengths to fit this wall-clock budget")
    p.add_argument("--kimg", type=float, default=60.0,
                   help="without --max-minutes: thousands of images per fade and per stable phase")
    p.add_argument("--depths", type=_ints, help="channels per scale, e.g. 128,128,64,32,16")
    p.add_argument("--batch-sizes", type=_ints, help="global batch per scale (multiples of 4)")
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--resolution", type=int, help="image size for FOLDER data (default 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 for FOLDER data (default 1)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gp-every", type=int, default=1, help="lazy penalty (WGAN-GP's or R1) every k steps (deviation)")
    p.add_argument("--loss", choices=LOSSES, default="wgan-gp",
                   help="wgan-gp: the paper's; logistic: non-saturating logistic loss with an R1 penalty on reals "
                        "(StyleGAN2; use with --gp-every 16)")
    p.add_argument("--r1-gamma", type=float, default=0.1, help="R1 weight gamma of --loss logistic")
    p.add_argument("--augment", default="",
                   help="DiffAugment policy for D's inputs, comma-separated from color,translation,cutout")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: mixed precision, bfloat16 convolutions and matmuls (fast on CPUs with AMX and on GPUs)")
    p.add_argument("--ema-half-life", type=int, default=2000,
                   help="generator EMA half-life in images (0: the reference's 0.999 per step)")
    p.add_argument("--freeze-g-below", type=int, default=0, metavar="RES",
                   help="with --init: keep G's layers below this resolution (e.g. 32: the 4-16 px layers) as they "
                        "are, so fine-tuning refines detail without moving the coarse structure")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p, what="torchrun: each process takes its local rank's GPU")
    p.add_argument("--threads", type=int, help="torch CPU threads for this process")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_const", const=False, default=None,
                   help="on a single GPU, launch every kernel from Python instead of replaying a captured step")
    p.add_argument("--no-winograd", dest="winograd", action="store_const", const=False, default=None,
                   help="on a CPU in fp32, direct 3x3 convolutions at 4x4 and 8x8 instead of Winograd's algorithm")
    p.add_argument("--cpu-clock", action="store_true",
                   help="count --max-minutes (and checkpoint intervals) in this process's CPU time, not wall time: "
                        "fair budgets on a shared machine (use with --threads 1)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--max-steps", type=int, help="stop after this many steps (resumable)")
    p.add_argument("--export", help="also save the final model as EXPORT.safetensors + .json")
    p.add_argument("--init", metavar="MODEL",
                   help="continue a trained model (.safetensors with G and D, same architecture, or narrower: "
                        "--depths in integer multiples widens it first) at its final scale only: fine-tuning with "
                        "fresh optimizers, for --max-minutes or --kimg")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, resolution: int, channels: int):
    from generators.pgan import PGANConfig
    from generators.train_config import TrainConfig
    preset = PRESETS.get(args.data, {})
    depths = args.depths or preset.get("depths")
    if depths is None:
        depths = (128, 128, 64, 32, 16, 16, 16)[:max(1, (resolution // 4).bit_length())]
    model_res = 4 * 2 ** (len(depths) - 1)
    if model_res > resolution or resolution % model_res:
        raise ValueError(f"{len(depths)} depths give {model_res}px, which does not divide the data's {resolution}px")
    batches = args.batch_sizes or preset.get("batch_sizes") or (64, 64, 32, 16, 16, 16, 16)[:len(depths)]
    images = int(args.kimg * 1000)
    model = PGANConfig(latent_dim=args.latent_dim, depths=depths, channels=channels)
    return TrainConfig(model, batch_sizes=batches, fade_images=(0,) + (images,) * (len(depths) - 1),
                       stable_images=(images,) * len(depths), lr=args.lr, gp_every=args.gp_every, seed=args.seed,
                       ema_half_life=args.ema_half_life, precision=args.precision, loss=args.loss,
                       r1_gamma=args.r1_gamma, augment=args.augment, freeze_g_below=args.freeze_g_below)


def cpu_has_amx(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU has AMX bfloat16 units (Linux /proc/cpuinfo flags); None when unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), None)
    return None if flags is None else "amx_bf16" in flags.split()


def run(args: argparse.Namespace) -> int:
    from generators.train_run import setup_distributed, train
    from studio.data import data_license, make_stream
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision == "bf16" and args.device == "cpu" and cpu_has_amx() is False:
        print("note: this CPU has no AMX bfloat16 units; --precision bf16 will likely train slower than fp32",
              file=sys.stderr)
    dist_info = setup_distributed(args.device)
    stream = make_stream(args.data, seed=args.seed, rank=dist_info.rank, world_size=dist_info.world_size,
                         size=args.resolution, channels=args.channels)
    config = build_config(args, stream.resolution, stream.channels)
    init = None
    if args.init and not args.resume:
        from generators.model import PGAN
        init = PGAN.load(args.init)
        if init.config != config.model and init.config.depths != config.model.depths:
            from generators.widen import widen
            try:  # a wider --depths than the model's: widen it first (function-preserving)
                init = widen(init, config.model.depths, seed=args.seed)
            except ValueError as e:
                raise ValueError(f"--init {args.init}: {e}") from None
            print(f"widened {args.init} to depths {list(config.model.depths)}")
        if init.config != config.model:
            raise ValueError(f"--init {args.init}: its architecture {init.config.to_dict()} differs from this run's "
                             f"{config.model.to_dict()} (set --depths / --latent-dim to match)")
    out = Path(args.out)
    final_res = config.model.resolution

    def save_grid(trainer, phase, images: torch.Tensor) -> None:
        up = torch.nn.functional.interpolate(images, size=final_res, mode="nearest")
        path = out / "samples" / f"{trainer.phase_index:02d}_{phase.resolution}px_{phase.kind}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(grid(up, nrow=6), path)

    held_out = ("the official 10,000-image test file" if args.data == "fashion" else
                "the ~10% of files whose path hash falls in studio.data's val split")
    info = {"data": args.data, "license": data_license(args.data),
            "split": f"trained on studio.data split 'train'; held out: {held_out}"}
    if init is not None:
        info["continued_from"] = {"model": str(args.init), "training": init.info.get("training")}
    model = train(config, stream, out_dir=out, resume=args.resume, max_minutes=args.max_minutes,
                  device=args.device, dist_info=dist_info, checkpoint_minutes=args.checkpoint_minutes,
                  max_steps=args.max_steps, on_phase_end=save_grid, info=info, init=init,
                  cuda_graphs=args.cuda_graphs, winograd=args.winograd,
                  **({"clock": time.process_time} if args.cpu_clock else {}))
    if model is not None and args.export and dist_info.rank == 0:
        print(f"exported {model.save(args.export)}")
    return 0
