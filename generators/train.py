"""Progressive-GAN training (Karras et al. 2018), resumable, single process or DDP.

Losses as in the paper and pytorch_GAN_zoo: WGAN-GP (lambda 10) with drift epsilon * D(real)^2,
Adam(betas 0, 0.99), an exponential moving average of the generator (decay 0.999 per step, or a
half-life in images for short runs, see `TrainConfig.ema_half_life`) and real images faded
between scales like the generator. Differences that make it fast, none of
which changes the mathematics of a step:

- the discriminator sees real and fake images in one batch (minibatch-stddev groups of 4 never
  straddle the halves, because batch sizes are multiples of 4);
- per-scale batch sizes (large at low resolution, where a step is mostly Python overhead);
- no host synchronisation per step (losses are read every `log_every` steps), fused Adam and a
  foreach EMA update;
- on a single GPU the step is captured as a CUDA graph and replayed (`generators.step_graph`);
- on a CPU, 3x3 convolutions at 4x4 and 8x8 by Winograd's algorithm (`generators.winograd`), and
  freed memory kept by the allocator (`keep_freed_memory`, which `train_run.train` calls: it changes
  malloc for the whole process, so constructing a Trainer does not).
Optional deviation: `gp_every = k > 1` applies the penalty every k-th D step with weight
lambda * k ("lazy regularisation", StyleGAN2); off by default.

The losses and penalties are in `generators.train_losses`; the arithmetic of a run's time budget
(re-planning what is left of the schedule) in `train_config.budget_factor`.

The loop reads an object with ``batch(n) -> [n, C, R, R]`` in [-1, 1] and ``state_dict`` /
``load_state_dict`` (see `studio.data`); with those, stopping and resuming continues exactly:
networks, optimizers, EMA, alpha, data position and random state are in the checkpoint.
"""
from __future__ import annotations

import copy
import ctypes
import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Protocol

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .model import PGAN
from .pgan import Discriminator, Generator, downscale2d, fading, grown, upscale2d, use_winograd
from .step_graph import WARMUP as GRAPH_WARMUP
from .step_graph import StepGraph
from .diffaugment import diff_augment, parse_policy
from .train_config import Phase, TrainConfig, budget_factor, rescale_remaining
from .train_losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty

CHECKPOINT = "checkpoint.pt"


class BatchStream(Protocol):
    def batch(self, n: int) -> torch.Tensor: ...  # [n, C, R, R] float in [-1, 1]
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class IterableStream:
    """Adapts a plain iterable of batches; resuming restarts the iterable (not exact)."""

    def __init__(self, batches: Callable[[], Iterator[torch.Tensor]]):
        self._make, self._it, self._buf = batches, batches(), None

    def batch(self, n: int) -> torch.Tensor:
        parts, have = [], 0
        while have < n:
            if self._buf is None:
                try:
                    self._buf = next(self._it)
                except StopIteration:
                    self._it = self._make()
                    continue
            take = self._buf[:n - have]
            self._buf = self._buf[n - have:] if len(self._buf) > n - have else None
            parts.append(take)
            have += len(take)
        return torch.cat(parts)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse (process-wide; True if it took).

    By default it maps large blocks (from 128 kB, adapting up to 32 MB) afresh from the system and
    hands freed ones back, so a training step's many temporaries of a few MB each were page-faulted
    and zeroed by the kernel on every step: 13-14k page faults and 25-27 ms of system time per
    step at 8x8, batch 64 (a step being ~500 ms); with these settings about 60 and 2-3 ms. Blocks up
    to 32 MB (glibc's ceiling) then come from the heap, which is never trimmed: the process keeps
    its peak memory, as PyTorch's caching allocators do on GPUs. No-op where libc is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, (1 << 31) - 1))
    except (OSError, AttributeError):
        return False


def _adam(params, config: TrainConfig, capturable: bool = False) -> torch.optim.Adam:
    """Fused Adam where the device has it; `capturable` keeps its step counts on the device (CUDA graphs)."""
    try:
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True, capturable=capturable)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, foreach=True, capturable=capturable)


def frozen_generator_layers(g: Generator, below: int) -> list[torch.nn.Module]:
    """G's layers that make the resolutions below `below` (0: none): the latent's linear layer and
    the 4x4 convolution, then each scale's convolutions and RGB layer."""
    if not below:
        return []
    layers: list[torch.nn.Module] = [g.format_layer, g.scale0, g.to_rgb[0]] if below > 4 else []
    for i, pair in enumerate(g.scales, start=1):
        if 4 * 2 ** i < below:
            layers += [pair, g.to_rgb[i]]
    return layers


def _fake_rgb_layers_frozen(net: torch.nn.Module, layers: torch.nn.ModuleList, keep: set[int]) -> None:
    """Only the RGB layers in `keep` train (the others are not on the forward path)."""
    for i, layer in enumerate(layers):
        layer.requires_grad_(i in keep)


class Trainer:
    """One training run. `run()` trains to the end of the schedule (or a stop), checkpointing."""

    def __init__(self, config: TrainConfig, stream: BatchStream, *, out_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1,
                 progress: bool = True, log_every: int = 50, channels_last: bool = False,
                 cuda_graphs: bool | None = None, winograd: bool | None = None,
                 on_phase_end: Callable[["Trainer", Phase, torch.Tensor], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.config, self.stream, self.device = config, stream, torch.device(device)
        self.out_dir = Path(out_dir) if out_dir else None
        self.rank, self.world_size = rank, world_size
        self.distributed = world_size > 1
        self.progress, self.log_every, self.on_phase_end = progress, log_every, on_phase_end
        # what `elapsed` and the time budget count: wall time, or e.g. time.process_time to compare
        # runs at equal CPU time on a shared machine (one thread each)
        self.clock = clock
        self._policy = parse_policy(config.augment)
        self.channels_last = channels_last  # NHWC convolutions: faster at high resolution on CPU
        # CUDA graphs (`generators.step_graph`): by default on a single GPU with the penalty on every
        # step; True on a CPU runs the graph's static-buffer step eagerly (no speed-up, for tests)
        graphable = world_size == 1 and config.gp_every == 1
        if cuda_graphs and not graphable:
            raise ValueError("CUDA graphs need a single process and the penalty on every step (gp_every 1)")
        self.cuda_graphs = graphable and self.device.type == "cuda" if cuda_graphs is None else cuda_graphs
        self._graph: StepGraph | None = None
        # 3x3 convolutions at 4x4 and 8x8 by Winograd's algorithm (`generators.winograd`): by default
        # in float32 on a CPU, where they made a step at 8x8 about 1.7x faster
        self.winograd = self.device.type == "cpu" and config.precision == "fp32" if winograd is None else winograd
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # shapes are fixed within a phase: pick the fastest kernels once
        self.phases = config.phases()
        for ph in self.phases:
            if ph.batch_size % (4 * world_size):
                raise ValueError(f"batch {ph.batch_size} must split into multiples of 4 over {world_size} ranks")
        # visible progress state
        self.phase_index, self.img_in_phase, self.step, self.images_seen, self.elapsed = 0, 0, 0, 0, 0.0
        self.phase_started, self._mark_images = 0.0, 0  # `elapsed` and images at the last re-plan
        # wall-clock budget {"seconds", "speeds" (images/s per scale)}: set by `train()`; at each
        # phase end the remaining phases are resized so the run ends on time (see `_replan`)
        self.budget: dict[str, Any] | None = None
        self.gen = torch.Generator(self.device).manual_seed(config.seed * 1000 + rank)
        self.sample_z = torch.randn(config.n_samples, config.model.latent_dim,
                                    generator=torch.Generator().manual_seed(config.sample_seed))
        self._stop = threading.Event()
        self._build(self.phases[0].scale, old=None)
        self._enter_phase()

    # -- networks --------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.phases[min(self.phase_index, len(self.phases) - 1)]

    @property
    def alpha(self) -> float:
        """Fade-in weight of the lower scale: 1 -> 0 linearly over a fade phase, else 0."""
        ph = self.phase
        return 1.0 - self.img_in_phase / ph.images if ph.kind == "fade" and self.phase_index < len(self.phases) else 0.0

    @property
    def images_left(self) -> int:
        """Images still to train in this schedule (re-planning can change it)."""
        if self.done:
            return 0
        return self.phase.images - self.img_in_phase + sum(ph.images for ph in self.phases[self.phase_index + 1:])

    @property
    def done(self) -> bool:
        return self.phase_index >= len(self.phases)

    def _build(self, scale: int, old: tuple[Generator, Discriminator, Generator] | None) -> None:
        """Networks for `scale`; with `old`, carry over the lower scales' weights (growing)."""
        cfg = grown(self.config.model, self.config.model.depths[:scale + 1], 0.0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 100 + scale)
            g, d = Generator(cfg), Discriminator(cfg, penalty_relu=True)  # see generators.pgan._LeakyReLU
        ema = copy.deepcopy(g)  # direct convolutions: the samples and the export's reference
        use_winograd(g, self.winograd)
        use_winograd(d, self.winograd)
        if old is not None:
            for new, prev in zip((g, d, ema), old):
                missing, unexpected = new.load_state_dict(prev.state_dict(), strict=False)
                if unexpected or not all(k.startswith(("scales.", "to_rgb.", "from_rgb.")) for k in missing):
                    raise RuntimeError(f"growing to scale {scale}: unexpected weights {unexpected}, {missing}")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.g, self.d, self.g_ema = (m.to(self.device, memory_format=fmt) for m in (g, d, ema))
        self.g_ema.requires_grad_(False)
        capturable = self.cuda_graphs and self.device.type == "cuda"
        self.opt_g = _adam(self.g.parameters(), self.config, capturable)
        self.opt_d = _adam(self.d.parameters(), self.config, capturable)
        self.scale = scale

    def _enter_phase(self) -> None:
        """Freeze RGB layers that are off the forward path, set alpha, (re)wrap for DDP."""
        self._graph = None  # a new phase (or rebuilt networks, or a loaded checkpoint) is a new step
        if self.done:
            return
        ph = self.phase
        if ph.scale != self.scale:
            self._build(ph.scale, old=(self.g, self.d, self.g_ema))
        keep = {ph.scale, ph.scale - 1} if ph.kind == "fade" else {ph.scale}
        _fake_rgb_layers_frozen(self.g, self.g.to_rgb, keep)
        _fake_rgb_layers_frozen(self.d, self.d.from_rgb, keep)
        for layer in frozen_generator_layers(self.g, self.config.freeze_g_below):
            layer.requires_grad_(False)  # no gradient, so Adam leaves them as they are
        self._g_params = [p for p in self.g.parameters()]
        self._ema_params = [p for p in self.g_ema.parameters()]
        self._d_trainable = [p for p in self.d.parameters() if p.requires_grad]
        self._set_alpha()
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.g_step_net = DDP(self.g)
            self.d_step_net = DDP(self.d)
        else:
            self.g_step_net, self.d_step_net = self.g, self.d

    def init_from(self, model: PGAN) -> None:
        """Start from a trained model: its (EMA) generator as both G and the EMA, its discriminator
        as D. Only for a schedule that starts at the model's own final scale (fine-tuning); the
        optimizers start fresh."""
        if model.config != self.config.model:
            raise ValueError(f"--init model {model.config} does not match the training config {self.config.model}")
        if self.phase.scale != len(self.config.model.depths) - 1 or self.images_seen:
            raise ValueError("init_from needs a fresh run whose schedule starts at the final scale")
        if model.discriminator is None:
            raise ValueError("the --init model has no discriminator to continue from")
        self.g.load_state_dict(model.generator.state_dict())
        self.g_ema.load_state_dict(model.generator.state_dict())
        self.d.load_state_dict(model.discriminator.state_dict())
        self._set_alpha()

    def _set_alpha(self) -> None:
        a = self.alpha
        self.g_ema.alpha = a
        if self._graph is not None:
            self._graph.set_alpha(a)  # G and D hold its tensor
        else:
            self.g.alpha = self.d.alpha = a

    # -- one step --------------------------------------------------------------------------

    def _fade_reals(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        """[n, C, r, r] real images at the current scale, faded like the generator, from the data's [n, C, R, R]."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        factor = x.shape[-1] // self.phase.resolution
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if fading(alpha):
            low = upscale2d(downscale2d(x))
            x = torch.lerp(x, low, alpha)
        return x

    def train_step(self) -> dict[str, torch.Tensor]:
        """One discriminator and one generator update on this rank's share of a batch.

        With CUDA graphs the returned tensors are the graph's outputs, overwritten by the next step.
        """
        n = self.phase.batch_size // self.world_size
        raw = self.stream.batch(n)  # [n, C, R, R] at the data's resolution
        if self.cuda_graphs and self._graph is None:
            self._graph = StepGraph(self)
        self._set_alpha()
        if self._graph is not None:
            try:
                stats = self._graph.step(self, raw)
            except RuntimeError as error:
                if self._graph.graph is not None:  # a replay failed: not a capture problem
                    raise
                stats = self._without_graphs(error, raw)
        else:
            stats = self.update(raw.to(self.device, non_blocking=True), self.alpha)
        self.step += 1
        self.img_in_phase += self.phase.batch_size
        self.images_seen += self.phase.batch_size
        return stats

    def _without_graphs(self, error: RuntimeError, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """A capture that fails (a driver or an op that cannot be captured) costs speed, not the run."""
        warnings.warn(f"CUDA graph capture failed, training on without graphs: {error}", RuntimeWarning)
        self.cuda_graphs, self._graph = False, None
        for p in self._d_trainable:  # the capture may have stopped inside the generator's update
            p.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        self._set_alpha()
        return self.update(raw.to(self.device, non_blocking=True), self.alpha)

    def update(self, raw: torch.Tensor, alpha: float | torch.Tensor) -> dict[str, torch.Tensor]:
        """The arithmetic of a step on device tensors only (what a CUDA graph captures): both
        networks' updates and the EMA, on real images `raw` [n, C, R, R] faded by `alpha`."""
        real = self._fade_reals(raw, alpha)
        stats = self._update_d(real)
        stats["loss_g"] = self._update_g(real.shape[0])
        with torch.no_grad():
            torch._foreach_lerp_(self._ema_params, self._g_params, 1.0 - self.config.ema_beta(self.phase.batch_size))
        return stats

    def _update_d(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's update: real and fake images in one batch, then (every `gp_every` steps) the penalty."""
        cfg, n = self.config, real.shape[0]
        z = torch.randn(n, cfg.model.latent_dim, generator=self.gen, device=self.device)
        with torch.no_grad(), self._autocast():
            fake = self.g(z).float()
        out = self._scores(self.d_step_net, torch.cat([real, fake]))
        d_real, d_fake = out[:n], out[n:]
        loss_d = discriminator_loss(cfg.loss, d_real, d_fake, drift=cfg.drift)
        stats = {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        if self.step % cfg.gp_every == 0:
            if cfg.loss == "logistic":
                critic = lambda x: self._scores(self.d_step_net, x, augment=False)  # noqa: E731
                penalty = r1_penalty(critic, self._augment(real.detach()))
            else:
                eps = torch.rand(n, 1, 1, 1, generator=self.gen, device=self.device)
                penalty = gradient_penalty(lambda x: self._scores(self.d_step_net, x), real, fake, eps)
            weight = (cfg.r1_gamma / 2 if cfg.loss == "logistic" else cfg.gp_lambda) * cfg.gp_every
            loss_d = loss_d + weight * penalty
            stats["gp"] = penalty.detach()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        stats["loss_d"] = loss_d.detach()
        return stats

    def _update_g(self, n: int) -> torch.Tensor:
        """G's update through a frozen D (the plain module: no DDP gradient sync for D); its loss."""
        for p in self._d_trainable:
            p.requires_grad_(False)
        z = torch.randn(n, self.config.model.latent_dim, generator=self.gen, device=self.device)
        with self._autocast():
            fake = self.g_step_net(z)
        loss_g = generator_loss(self.config.loss, self._scores(self.d, fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in self._d_trainable:
            p.requires_grad_(True)
        return loss_g.detach()

    def _scores(self, net: torch.nn.Module, x: torch.Tensor, *, augment: bool = True) -> torch.Tensor:
        """D's scores [n] (float32) of images x [n, C, r, r], through the DiffAugment policy unless
        `augment` is False, under the precision's autocast."""
        with self._autocast():
            return net(self._augment(x) if augment else x)[:, 0].float()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """D's input through the config's DiffAugment policy (identity without one)."""
        return diff_augment(x, self._policy, self.gen) if self._policy else x

    def _autocast(self) -> torch.autocast:
        """bfloat16 convolutions and matmuls when `precision` is bf16 (weights, Adam and the EMA stay float32).

        On CPUs with AMX (oneDNN) a bfloat16 3x3 convolution forward ran 2.5-4x faster than float32 at
        [32, 256, 8, 8] and [16, 128, 16, 16], its weight gradient only 1.3x. No weight cache: the
        layers scale their weights at run time anyway, and a cache does not mix with CUDA graphs."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16",
                              cache_enabled=False)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, *, max_steps: int | None = None, checkpoint_every_s: float = 300.0) -> None:
        """Train until the schedule ends, `max_steps` more steps, or SIGINT/SIGTERM (then save)."""
        main = self.rank == 0
        restore = self._install_signal_handlers()
        bar = tqdm(total=self.images_seen + self.images_left, initial=self.images_seen, unit="img", unit_scale=True,
                   disable=not (self.progress and main), mininterval=1.0 if os.isatty(2) else 30.0,
                   dynamic_ncols=True, smoothing=0.05)
        log = (self.out_dir / "log.jsonl").open("a") if self.out_dir and main else None
        last_ckpt, t0, steps = self.clock(), self.clock(), 0
        try:
            while not self.done and (max_steps is None or steps < max_steps) and not self._stop_requested():
                stats = self.train_step()
                steps += 1
                bar.update(self.phase.batch_size)
                if self.step % self.log_every == 0:
                    self._log(stats, bar, log, t0)
                if self.img_in_phase >= self.phase.images:
                    t0 = self._book_time(t0)
                    self._next_phase(bar)
                    last_ckpt = self.clock()
                elif main and self.out_dir and self.clock() - last_ckpt > checkpoint_every_s:
                    t0 = self._book_time(t0)
                    if not self.distributed:  # ranks would disagree; DDP re-plans at phase ends only
                        self._replan()
                        bar.total = self.images_seen + self.images_left
                    self.save_checkpoint()
                    last_ckpt = self.clock()
        finally:
            self.elapsed += self.clock() - t0
            bar.close()
            if log:
                log.close()
            restore()
        if main and self.out_dir:
            self.save_checkpoint()

    def _stop_requested(self) -> bool:
        """A stop was asked for (signal or `request_stop`); under DDP, on any rank (all ranks stop together)."""
        if not self.distributed:
            return self._stop.is_set()
        stop = torch.tensor([float(self._stop.is_set())], device=self.device)
        torch.distributed.all_reduce(stop)
        return stop.item() > 0

    def _book_time(self, t0: float) -> float:
        """Add the time since `t0` to `elapsed`; returns the new start."""
        self.elapsed += self.clock() - t0
        return self.clock()

    def _log(self, stats: dict[str, torch.Tensor], bar: tqdm, log: IO[str] | None, t0: float) -> None:
        """One row of losses and progress (`elapsed` counting the time since `t0`): on the bar, and
        as a line of OUT_DIR/log.jsonl (`log`, if open)."""
        row = {k: round(float(v), 4) for k, v in stats.items()}
        row.update(step=self.step, images=self.images_seen, res=self.phase.resolution,
                   alpha=round(self.alpha, 4), elapsed=round(self.elapsed + self.clock() - t0, 1))
        bar.set_postfix(res=row["res"], alpha=f"{row['alpha']:.2f}", d=row["loss_d"], g=row["loss_g"])
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()

    def _next_phase(self, bar: tqdm) -> None:
        """The current phase is done: samples to `on_phase_end`, re-plan, grow or re-freeze, checkpoint."""
        main, finished = self.rank == 0, self.phase
        self.phase_index += 1
        self.img_in_phase = 0
        if main and self.on_phase_end:
            self.on_phase_end(self, finished, self.samples())
        self._replan()
        bar.total = self.images_seen + self.images_left
        self._enter_phase()
        if main and self.out_dir:
            self.save_checkpoint()

    def _replan(self) -> None:
        """Resize what is left of the schedule so the run ends within `budget["seconds"]`
        (`train_config.budget_factor`). Called at phase ends and checkpoints; the time and images
        since the last call are booked to the scale that ran."""
        seconds, images = self.elapsed - self.phase_started, self.images_seen - self._mark_images
        self.phase_started, self._mark_images = self.elapsed, self.images_seen
        if not self.budget or self.done:
            return
        remaining = [(self.phase.scale, self.phase.images - self.img_in_phase)]
        remaining += [(ph.scale, ph.images) for ph in self.phases[self.phase_index + 1:]]
        factor = budget_factor(self.budget, scale=self.scale, seconds=seconds, images=images, remaining=remaining,
                               elapsed=self.elapsed)
        if self.distributed:  # every rank must follow rank 0's schedule
            t = torch.tensor([factor if self.rank == 0 else 0.0], device=self.device)
            torch.distributed.all_reduce(t)
            factor = float(t.item())
        if abs(factor - 1.0) > 0.02:
            self.config, self.img_in_phase = rescale_remaining(self.config, self.phase_index, factor, self.img_in_phase)
            self.phases = self.config.phases()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, lambda *_: self._stop.set())

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)
        return restore

    def request_stop(self) -> None:
        self._stop.set()

    # -- outputs ---------------------------------------------------------------------------

    def samples(self) -> torch.Tensor:
        """The EMA generator on fixed latents [n_samples, C, r, r] at the current scale."""
        with torch.no_grad():
            return self.g_ema(self.sample_z.to(self.device)).cpu()

    def model(self, *, info: dict[str, Any] | None = None) -> PGAN:
        """The fully grown result: EMA generator and discriminator (only when training is done)."""
        if not self.done:
            raise RuntimeError(f"training is not finished (phase {self.phase_index + 1} of {len(self.phases)})")
        cfg = self.config.model
        g, d = Generator(cfg), Discriminator(cfg)
        g.load_state_dict(self.g_ema.state_dict())
        d.load_state_dict(self.d.state_dict())
        meta = {"training": {"images": self.images_seen, "steps": self.step, "seconds": round(self.elapsed),
                             "config": self.config.to_dict()}}
        return PGAN(cfg, g, d, info={**meta, **(info or {})})

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"train_config": self.config.to_dict(), "phase_index": self.phase_index,
                "img_in_phase": self.img_in_phase, "step": self.step, "images_seen": self.images_seen,
                "elapsed": self.elapsed, "scale": self.scale, "g": self.g.state_dict(), "d": self.d.state_dict(),
                "g_ema": self.g_ema.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "stream": self.stream.state_dict(),
                "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "phase_started": self.phase_started, "mark_images": self._mark_images,
                "budget": self.budget}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = TrainConfig.from_dict(state["train_config"])
        if saved != self.config:
            raise ValueError("the checkpoint was made with another training config; "
                             "resume with the same settings (or start a new --out)")
        self.phase_index, self.img_in_phase = int(state["phase_index"]), int(state["img_in_phase"])
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.elapsed = float(state["elapsed"])
        self.phase_started, self.budget = float(state.get("phase_started", 0.0)), state.get("budget")
        if "mark_images" not in state:  # checkpoint from before per-scale speed booking
            self.phase_started = self.elapsed
        self._mark_images = int(state.get("mark_images", self.images_seen))
        self._build(int(state["scale"]), old=None)
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.g_ema.load_state_dict(state["g_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.stream.load_state_dict(state["stream"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self._enter_phase()

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Atomic write of everything needed to continue (default OUT_DIR/checkpoint.pt)."""
        path = Path(path) if path else self.out_dir / CHECKPOINT
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else self.out_dir / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))


def measure_speed(config: TrainConfig, stream: BatchStream, *, steps: int = 6, warmup: int = 2,
                  device: str = "cpu", **trainer_args: Any) -> list[float]:
    """Training images/s per scale (fade phases, the costlier kind), on a throwaway trainer."""
    speeds = []
    for s in range(len(config.model.depths)):
        index = next((i for i, ph in enumerate(config.phases()) if ph.scale == s), None)
        if index is None:  # a schedule without this scale (fine-tuning the last one)
            speeds.append(0.0)
            continue
        t = Trainer(config, stream, device=device, progress=False, **trainer_args)
        t.phase_index = index
        t._enter_phase()
        if t.cuda_graphs:
            warmup = max(warmup, GRAPH_WARMUP + 2)  # time replays, not the eager steps and the capture
        sync = torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None)  # GPU work is asynchronous
        for i in range(warmup + steps):
            if i == warmup:
                sync()
                start = time.perf_counter()
            t.train_step()
            t.img_in_phase = min(t.img_in_phase, t.phase.images // 2)  # stay mid-fade
        sync()
        speeds.append(steps * t.phase.batch_size / (time.perf_counter() - start))
    return speeds


__all__ = ["Trainer", "BatchStream", "IterableStream", "measure_speed", "CHECKPOINT"]
