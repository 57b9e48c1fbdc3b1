"""What a progressive-GAN training run does: the config and its schedule of phases.

A run grows the networks one scale at a time (4x4, 8x8, ...). Scale 0 has one *stable* phase;
every later scale has a *fade* phase (alpha, the weight of the lower-resolution path, falls
linearly from 1 to 0) followed by a *stable* phase (alpha = 0). Phase lengths are counted in
images, so a schedule is exact and resumable; `plan_for_minutes` turns a wall-clock budget into
image counts from measured throughput.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from weightfile import check_config_keys

from .diffaugment import parse_policy
from .pgan import PGANConfig


PRECISIONS = ("fp32", "bf16")
# "wgan-gp": the paper's WGAN-GP with drift (pytorch_GAN_zoo); "logistic": the non-saturating
# logistic loss with an R1 penalty on real images (StyleGAN2), lazily every `gp_every` D steps
LOSSES = ("wgan-gp", "logistic")


@dataclass(frozen=True)
class Phase:
    scale: int  # 0 = 4x4
    kind: str  # "fade" | "stable"
    images: int
    batch_size: int

    @property
    def resolution(self) -> int:
        return 4 * 2 ** self.scale


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Per-scale tuples have one entry per scale of `model.depths`."""

    model: PGANConfig
    batch_sizes: tuple[int, ...]  # global batch per scale (split over DDP ranks)
    fade_images: tuple[int, ...]  # fade-in images per scale; entry 0 must be 0
    stable_images: tuple[int, ...]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.0, 0.99)
    gp_lambda: float = 10.0  # WGAN-GP
    gp_every: int = 1  # > 1: lazy penalty (WGAN-GP's or R1) every k D steps with weight x k (a deviation)
    drift: float = 0.001  # epsilon * D(real)^2 (wgan-gp only)
    loss: str = "wgan-gp"  # see LOSSES
    r1_gamma: float = 0.1  # logistic: (gamma / 2) * |grad D(real)|^2
    augment: str = ""  # DiffAugment policy for D's inputs, e.g. "color,translation,cutout" (generators.diffaugment)
    ema_decay: float = 0.999  # per step, as in pytorch_GAN_zoo (used when ema_half_life == 0)
    # > 0: the EMA forgets half its weight every this many images, whatever the batch size
    # (StyleGAN2's ema_kimg). Short runs need it: at 0.999 per step the EMA spans ~1,000 steps,
    # more than a whole phase of a CPU run, so newly grown layers would stay near their init.
    ema_half_life: int = 0
    precision: str = "fp32"  # "bf16": mixed precision (bfloat16 convolutions and matmuls, float32 weights)
    # > 0 (fine-tuning): G's layers that make the resolutions below this one stay as they are, so a
    # continuation refines fine detail without moving the coarse structure (0: every layer trains)
    freeze_g_below: int = 0

    def ema_beta(self, batch_size: int) -> float:
        """The EMA's per-step decay for a global batch of `batch_size` images."""
        return 0.5 ** (batch_size / self.ema_half_life) if self.ema_half_life > 0 else self.ema_decay
    seed: int = 0
    sample_seed: int = 1234  # fixed latents of the per-phase sample grids
    n_samples: int = 36

    def __post_init__(self) -> None:
        n = len(self.model.depths)
        for name in ("batch_sizes", "fade_images", "stable_images"):
            value = tuple(int(v) for v in getattr(self, name))
            object.__setattr__(self, name, value)
            if len(value) != n:
                raise ValueError(f"{name} needs one entry per scale ({n}), got {len(value)}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if min(self.batch_sizes) < 4 or any(b % 4 for b in self.batch_sizes):
            # minibatch-stddev groups of 4 must not straddle the real/fake halves of a D batch
            raise ValueError(f"batch sizes must be multiples of 4, got {self.batch_sizes}")
        if self.fade_images[0] != 0:
            raise ValueError("the first scale has nothing to fade from: fade_images[0] must be 0")
        if min(self.fade_images + self.stable_images) < 0 or self.stable_images[-1] < 1:
            raise ValueError("image counts must be >= 0 and the last stable phase > 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        parse_policy(self.augment)
        if self.freeze_g_below and (self.freeze_g_below & (self.freeze_g_below - 1) or self.freeze_g_below < 8
                                    or self.freeze_g_below > 4 * 2 ** (len(self.model.depths) - 1)):
            raise ValueError(f"freeze_g_below must be 0 or a power of two from 8 to the model's resolution, "
                             f"got {self.freeze_g_below}")
        if self.gp_every < 1:
            raise ValueError(f"gp_every must be >= 1, got {self.gp_every}")
        if self.model.alpha != 0.0:
            raise ValueError("model is the final, fully grown config: alpha must be 0")

    def phases(self) -> list[Phase]:
        out = []
        for s, b in enumerate(self.batch_sizes):
            if self.fade_images[s]:
                out.append(Phase(s, "fade", self.fade_images[s], b))
            if self.stable_images[s] or s == len(self.batch_sizes) - 1:
                out.append(Phase(s, "stable", self.stable_images[s], b))
        return out

    @property
    def total_images(self) -> int:
        return sum(self.fade_images) + sum(self.stable_images)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        for k in ("batch_sizes", "fade_images", "stable_images", "betas"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Strict: an unknown key is an error (a file from another version), never ignored."""
        check_config_keys(cls, d, "train config")
        return cls(**{**d, "model": PGANConfig.from_dict(d["model"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# Share of the wall-clock budget per scale (4x4 first), then split evenly into fade and stable.
# High resolutions cost most per image, so they get the biggest share of time but fewest images.
DEFAULT_TIME_SHARES = {3: (0.15, 0.3, 0.55), 4: (0.08, 0.15, 0.27, 0.5),
                       5: (0.05, 0.1, 0.17, 0.28, 0.4)}


def plan_for_minutes(config: TrainConfig, minutes: float, images_per_second: list[float],
                     *, time_shares: tuple[float, ...] | None = None, fade_fraction: float = 0.5) -> TrainConfig:
    """The same config with image counts set so the run takes about `minutes`.

    `images_per_second[s]` is the measured training speed at scale s (see `Trainer.measure_speed`).
    """
    n = len(config.model.depths)
    shares = time_shares or DEFAULT_TIME_SHARES.get(n) or tuple(1.0 / n for _ in range(n))
    if len(shares) != n or len(images_per_second) != n:
        raise ValueError(f"need {n} time shares and speeds, got {len(shares)} and {len(images_per_second)}")
    total = sum(shares)
    fade, stable = [], []
    for s in range(n):
        images = minutes * 60.0 * shares[s] / total * images_per_second[s]
        b = config.batch_sizes[s]
        f = 0 if s == 0 else int(images * fade_fraction) // b * b
        fade.append(f)
        stable.append(max(b, int(images - f) // b * b))
    return replace(config, fade_images=tuple(fade), stable_images=tuple(stable))


def final_scale_only(config: TrainConfig, images: int) -> TrainConfig:
    """The same config with a schedule of one stable phase of `images` at the last scale
    (continuing a trained model: see `Trainer.init_from`)."""
    n, b = len(config.model.depths), config.batch_sizes[-1]
    return replace(config, fade_images=(0,) * n, stable_images=(0,) * (n - 1) + (max(b, images // b * b),))


def rescale_remaining(config: TrainConfig, phase_index: int, factor: float,
                      img_in_phase: int = 0) -> tuple[TrainConfig, int]:
    """Multiply what is left of phase `phase_index` and of every later phase by `factor`.

    The current phase keeps the fraction already done (so a fade's alpha stays continuous);
    returns the new config and the new image position inside the current phase.
    """
    fade, stable = list(config.fade_images), list(config.stable_images)
    phases = config.phases()
    position = img_in_phase
    for i, ph in enumerate(phases[phase_index:], start=phase_index):
        counts = fade if ph.kind == "fade" else stable
        new = max(ph.batch_size, int(ph.images * factor) // ph.batch_size * ph.batch_size)
        if i == phase_index and img_in_phase:
            done = img_in_phase / ph.images
            position = int(done * new) // ph.batch_size * ph.batch_size
            new = max(new, position + ph.batch_size)
        counts[ph.scale] = new
    return replace(config, fade_images=tuple(fade), stable_images=tuple(stable)), position


def budget_factor(budget: dict[str, Any], *, scale: int, seconds: float, images: int,
                  remaining: list[tuple[int, int]], elapsed: float) -> float:
    """By how much to resize what is left of a schedule so that the run ends within `budget["seconds"]`.

    `budget` is {"seconds", "speeds" (measured images/s per scale)}; the `images` trained in the
    `seconds` since the last call are booked to `scale` in its "observed" [[images, seconds], ...]
    (it is saved with the checkpoints). A scale's speed is what was seen (after 30 s of it), else
    its measured speed corrected by how far the seen scales were off theirs (the machine is shared).
    `remaining`: (scale, images) still to train per phase, the current one first; `elapsed`: the
    seconds spent so far. The factor is clipped to [0.25, 4] (0.25 once the time is up).
    """
    seen = budget.setdefault("observed", [[0, 0.0] for _ in budget["speeds"]])
    seen[scale][0] += images
    seen[scale][1] += seconds
    calib = budget["speeds"]
    secs = sum(t for _, t in seen)
    k = sum(n / calib[s] for s, (n, _) in enumerate(seen) if n) / secs if secs > 0 else 1.0

    def speed(s: int) -> float:
        n, t = seen[s]
        return n / t if t >= 30 else calib[s] * k
    (first_scale, first_images), *later = remaining
    need = first_images / speed(first_scale)
    need += sum(n / speed(s) for s, n in later)
    left = budget["seconds"] - elapsed
    return min(4.0, max(0.25, left / need)) if left > 0 else 0.25
