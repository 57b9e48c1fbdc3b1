"""`train()`: a whole run (plan, resume, train, export) in one call; DDP setup for torchrun."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .model import PGAN
from .train import CHECKPOINT, BatchStream, Trainer, keep_freed_memory, measure_speed
from .train_config import Phase, TrainConfig, final_scale_only, plan_for_minutes

PLAN = "train_config.json"


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def setup_distributed(device: str) -> DistInfo:
    """Join the process group when started by torchrun (RANK / WORLD_SIZE set), else single."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


class RandomStream:
    """Uniform noise batches of a given shape: enough to time a training step."""

    def __init__(self, channels: int, resolution: int, seed: int = 0):
        self.channels, self.resolution = channels, resolution
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.channels, self.resolution, self.resolution, generator=self.gen) * 2 - 1

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])


def _broadcast(obj: Any, dist_info: DistInfo) -> Any:
    if dist_info.world_size <= 1:
        return obj
    import torch.distributed as dist
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def plan(config: TrainConfig, minutes: float, *, device: str = "cpu", log: Callable[[str], None] = print,
         **trainer_args: Any) -> tuple[TrainConfig, list[float]]:
    """Measure images/s per scale here, then size the phases so the run takes ~`minutes`.

    A schedule of the final scale alone (`final_scale_only`, continuing a trained model) stays
    one phase. Returns the planned config and the measured speeds (images/s per scale; 0 for
    scales the schedule never runs).
    """
    speeds = measure_speed(config, RandomStream(config.model.channels, config.model.resolution),
                           device=device, steps=3, warmup=2, **trainer_args)
    log("measured images/s per scale: " + ", ".join(f"{4 * 2 ** s}px {v:.0f}" for s, v in enumerate(speeds)))
    n = len(config.model.depths)
    if n > 1 and {ph.scale for ph in config.phases()} == {n - 1}:
        # 8% of the budget is kept for the calibration, checkpoints and sample grids
        planned = final_scale_only(config, int(minutes * 60 * 0.92 * speeds[-1]))
    else:
        planned = plan_for_minutes(config, minutes, speeds)
    log("planned images per phase: " + ", ".join(f"{ph.resolution}px {ph.kind} {ph.images}" for ph in planned.phases()))
    return planned, speeds


def train(config: TrainConfig, stream: BatchStream, *, out_dir: str | Path, resume: bool = False,
          max_minutes: float | None = None, device: str = "cpu", dist_info: DistInfo = DistInfo(),
          checkpoint_minutes: float = 5.0, max_steps: int | None = None, progress: bool = True,
          on_phase_end: Callable[[Trainer, Phase, torch.Tensor], None] | None = None,
          info: dict[str, Any] | None = None, log: Callable[[str], None] = print,
          init: PGAN | None = None, **trainer_args: Any) -> PGAN | None:
    """Train (or resume) a run in `out_dir`; returns the final model when the schedule is done.

    With `max_minutes`, phase lengths are measured and planned to fit that budget, and re-sized
    at each phase end from the speed actually seen (`Trainer._replan`); the schedule in force is
    in the checkpoint, so a resume follows it exactly. OUT/train_config.json is the first plan.
    Writes OUT/checkpoint.pt while training and OUT/final.safetensors (+ .json) at the end.
    """
    if torch.device(device).type == "cpu":
        keep_freed_memory()  # process-wide: a training process keeps its freed memory (see the function)
    clock = trainer_args.get("clock", time.monotonic)  # what the budget counts (see Trainer)
    t_start = clock()
    out_dir = Path(out_dir)
    main = dist_info.rank == 0
    plan_path, ckpt = out_dir / PLAN, out_dir / CHECKPOINT
    state, speeds = None, None
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt}: nothing to resume (train without --resume first)")
        state = torch.load(ckpt, map_location=device, weights_only=True)
        config = TrainConfig.from_dict(state["train_config"])
    else:
        if ckpt.is_file():
            raise ValueError(f"{out_dir} already holds a run: pass --resume, or choose another --out")
        if init is not None:
            config = final_scale_only(config, config.stable_images[-1])
        if max_minutes:
            config, speeds = _broadcast(plan(config, max_minutes, device=device, log=log if main else (lambda _: None),
                                             **trainer_args) if main else None, dist_info)
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)
            plan_path.write_text(config.to_json() + "\n")
    trainer = Trainer(config, stream, out_dir=out_dir, device=device, rank=dist_info.rank,
                      world_size=dist_info.world_size, progress=progress, on_phase_end=on_phase_end, **trainer_args)
    if speeds is not None:
        # 4% of the budget is left for checkpoints, sample grids and the final export
        trainer.budget = {"seconds": max_minutes * 60 * 0.96 - (clock() - t_start), "speeds": speeds}
    if init is not None and state is None:
        trainer.init_from(init)
    if state is not None:
        trainer.load_state_dict(state)
        trainer._replan()  # the machine may be busier or idler than before the stop
        log(f"resumed at {trainer.images_seen} images, phase {trainer.phase_index + 1}/{len(trainer.phases)}, "
            f"alpha {trainer.alpha:.3f}")
    trainer.run(max_steps=max_steps, checkpoint_every_s=checkpoint_minutes * 60)
    if not trainer.done:
        log(f"stopped at {trainer.images_seen} images, {trainer.images_left} to go; continue with --resume")
        return None
    model = trainer.model(info=info)
    if main:
        path = model.save(out_dir / "final.safetensors")
        log(f"done: {trainer.images_seen} images in {trainer.elapsed / 60:.1f} min; wrote {path}")
    return model


def model_from_checkpoint(path: str | Path) -> PGAN:
    """The EMA generator and discriminator of a run's checkpoint, as a model (a run in progress at
    its final scale: to measure, or ship, what a long run has reached without stopping it)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(state["train_config"])
    if int(state["scale"]) != len(config.model.depths) - 1:
        raise ValueError(f"{path}: the run is at scale {state['scale']}, not yet at its final resolution")
    from .pgan import Discriminator, Generator
    g, d = Generator(config.model), Discriminator(config.model)
    g.load_state_dict(state["g_ema"])
    d.load_state_dict(state["d"])
    info = {"training": {"images": int(state["images_seen"]), "steps": int(state["step"]),
                         "seconds": round(float(state["elapsed"])), "config": config.to_dict(),
                         "checkpoint": str(path)}}
    return PGAN(config.model, g.eval(), d.eval(), info=info)

