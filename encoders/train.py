"""`train_encoder`: one resumable training loop for IRMAE and every SSL method.

Batches come from a *stream* (`batch(n) -> [n, C, H, W]` in [-1, 1], `state_dict()`,
`load_state_dict()`), which `studio.data` provides; where images come from is not our business.
Checkpoints are safetensors (weights, optimizer moments, stream and augmentation state) with the
rest in JSON metadata: resuming never unpickles anything.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from .augment import Augment, preset
from .backbone import Encoder, adapt_images
from .config import EncoderConfig
from .distance import calibrate
from .io import save_encoder
from .irmae import IRMAE
from .ssl import SSLModel

CHECKPOINT = "checkpoint.safetensors"
CKPT_FORMAT = "studio-encoder-checkpoint/1"


class Stream(Protocol):
    def batch(self, n: int) -> torch.Tensor: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Optimisation settings (saved with the encoder, next to its `EncoderConfig`)."""

    steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup: int = 30
    seed: int = 0
    augment: str = "generic"  # preset name in `augment.PRESETS`
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.checkpoint_every < 1:
            raise ValueError("steps >= 1, batch_size >= 2, lr > 0 and checkpoint_every >= 1 are required")


@dataclass
class TrainResult:
    encoder: Encoder
    path: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def build_model(config: EncoderConfig) -> IRMAE | SSLModel:
    return IRMAE(config) if config.method == "irmae" else SSLModel(config)


def model_loss(model: IRMAE | SSLModel, images: torch.Tensor, augment: Augment) -> torch.Tensor:
    """IRMAE reconstructs lightly augmented images; SSL methods compare two augmented views."""
    if isinstance(model, IRMAE):
        return model.loss(augment(images))
    return model.loss(augment(images), augment(images))


def learning_rate(step: int, cfg: EncoderTrainConfig) -> float:
    """Linear warm-up, then cosine decay to 0 at `cfg.steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def train_encoder(config: EncoderConfig, stream: Stream, *, train: EncoderTrainConfig, out_dir: str | Path,
                  calibration_images: torch.Tensor | None = None, resume: bool = True,
                  device: str | torch.device = "cpu", progress: bool = True, info: dict[str, Any] | None = None,
                  on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train (or resume) an encoder, writing `out_dir/encoder.safetensors` + `.json` at the end.

    `calibration_images` (real images, e.g. a few thousand of the training set) set the distance
    normalisers (`calibrate`); IRMAE also reports its reconstruction error on them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train.seed)
    model = build_model(config).to(device)
    augment = Augment(preset(train.augment), seed=train.seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    start, seconds, cpu_seconds, losses = 0, 0.0, 0.0, []
    ckpt = out_dir / CHECKPOINT
    if resume and ckpt.is_file():
        start, seconds, cpu_seconds, losses = load_checkpoint(ckpt, model, opt, stream, augment, config, train)
        if progress:
            print(f"resuming {ckpt} at step {start}/{train.steps}")
    model.train()
    bar = tqdm(range(start, train.steps), initial=start, total=train.steps, desc=f"{config.method}",
               unit="step", disable=not progress, mininterval=5.0)
    t0, c0 = time.perf_counter(), time.process_time()  # wall clock and this process's CPU time
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, train)
        images = adapt_images(stream.batch(train.batch_size), channels=config.channels,
                              resolution=config.resolution).to(device)
        loss = model_loss(model, images, augment)
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss became {loss.item()} at step {step}; try a smaller --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        if (step + 1) % train.checkpoint_every == 0 and step + 1 < train.steps:
            save_checkpoint(ckpt, model, opt, stream, augment, config, train, step + 1,
                            seconds + time.perf_counter() - t0, cpu_seconds + time.process_time() - c0, losses)
    seconds += time.perf_counter() - t0
    cpu_seconds += time.process_time() - c0
    encoder = model.encoder.eval()
    meta: dict[str, Any] = {"train": asdict(train), "train_seconds": round(seconds, 1),
                            "train_cpu_seconds": round(cpu_seconds, 1), "steps": train.steps,
                            "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])), **(info or {})}
    if calibration_images is not None:
        cal = calibration_images.to(device)
        meta["calibration"] = calibrate(encoder, cal)
        if isinstance(model, IRMAE):
            model.eval()
            with torch.no_grad():
                meta["reconstruction_mse"] = float(sum(model.loss(b) * len(b) for b in cal.split(256)) / len(cal))
    path = save_encoder(encoder, out_dir / "encoder", info=meta)
    save_checkpoint(ckpt, model, opt, stream, augment, config, train, train.steps, seconds, cpu_seconds, losses)
    (out_dir / "losses.json").write_text(json.dumps(losses))
    return TrainResult(encoder, path, train.steps, seconds, losses)


def save_checkpoint(path: Path, model, opt, stream: Stream, augment: Augment, config: EncoderConfig,
                    train: EncoderTrainConfig, step: int, seconds: float, cpu_seconds: float, losses: list[float]) -> None:
    """Weights, Adam moments, stream and augmentation RNG state: safetensors + JSON metadata."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        for k, v in opt.state.get(p, {}).items():
            tensors[f"opt.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tensors["augment.rng"] = augment.generator.get_state()
    stream_json = {}
    for k, v in stream.state_dict().items():
        if isinstance(v, torch.Tensor):
            tensors[f"stream.{k}"] = v.contiguous()
        else:
            stream_json[k] = v
    meta = {"format": CKPT_FORMAT, "config": config.to_json(), "train": json.dumps(asdict(train)),
            "step": str(step), "seconds": str(seconds), "cpu_seconds": str(cpu_seconds),
            "stream": json.dumps(stream_json), "losses": json.dumps(losses)}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # atomic: a kill mid-write never leaves a broken checkpoint


def load_checkpoint(path: Path, model, opt, stream: Stream, augment: Augment, config: EncoderConfig,
                    train: EncoderTrainConfig) -> tuple[int, float, float, list[float]]:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path}: not an encoder training checkpoint")
    if json.loads(meta["config"]) != config.to_dict():
        raise ValueError(f"{path}: checkpoint was trained with another encoder config; use a new --out")
    saved_train = json.loads(meta["train"])
    if {k: v for k, v in saved_train.items() if k != "steps"} != \
            {k: v for k, v in asdict(train).items() if k != "steps"}:
        raise ValueError(f"{path}: checkpoint has other training settings; use a new --out")
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    params = [p for g in opt.param_groups for p in g["params"]]
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            opt.state[params[int(i)]][name] = v
    augment.generator.set_state(tensors["augment.rng"])
    state = json.loads(meta["stream"])
    state.update({k[7:]: v for k, v in tensors.items() if k.startswith("stream.")})
    stream.load_state_dict(state)
    return int(meta["step"]), float(meta["seconds"]), float(meta.get("cpu_seconds", 0)), json.loads(meta["losses"])
