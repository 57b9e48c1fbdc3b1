"""A trained PGAN behind the generator protocol, and our safetensors + JSON weight format."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch

from weightfile import WeightFileError, load_state, load_weights, save_weights

from .errors import CheckpointError
from .pgan import Discriminator, Generator, PGANConfig, pixel_norm, upscale2d

FORMAT = "studio-pgan/1"
# The largest PGAN a file may describe, checked before a network is built: 10 scales (2048 px),
# 4,096 channels, a 8,192-d latent, 200M numbers per network (celebAHQ-512's G has 23M).
MAX_SCALES, MAX_DEPTH, MAX_LATENT, MAX_PARAMETERS = 10, 4_096, 8_192, 200_000_000


def check_config(config: PGANConfig, path: str | Path = "checkpoint") -> None:
    """A CheckpointError when `config` describes networks too large to build from a file."""
    if len(config.depths) > MAX_SCALES:
        raise CheckpointError(f"{path}: the config has {len(config.depths)} scales "
                              f"({config.resolution} px), more than the limit of {MAX_SCALES}")
    if max(config.depths) > MAX_DEPTH or config.latent_dim > MAX_LATENT or config.decision_size > MAX_LATENT:
        raise CheckpointError(f"{path}: the config asks for {max(config.depths)} channels and a "
                              f"{config.latent_dim}-d latent (limits {MAX_DEPTH} and {MAX_LATENT})")


# numbers per network, by `parameter_bound`, that are built on the CPU in milliseconds (faces64: 1.9M)
SMALL_ENOUGH_TO_BUILD = 4_000_000


def parameter_bound(config: PGANConfig) -> int:
    """An upper bound on either network's size for `config`: per scale at most two 3x3 convolutions
    and one 1x1 of the widest depth (+1 for minibatch stddev), plus a 4x4 dense layer each way."""
    d, scales = max(config.depths) + 1, len(config.depths)
    dense = 16 * d * (max(config.latent_dim, config.decision_size) + d)
    return dense + scales * (2 * 9 * d * d + d * (config.channels + 1) + 3 * d)


def expected_shapes(config: PGANConfig, path: str | Path = "checkpoint") -> dict[str, dict[str, tuple[int, ...]]]:
    """{"G": {name: shape}, "D": {...}}: the tensors `config`'s networks have, found without
    allocating large ones (built on the meta device unless `parameter_bound` says they are small:
    the meta device's first use imports 0.8 s of torch, a tenth of a `studio inspire` run). Raises
    CheckpointError for a config over the limits."""
    check_config(config, path)
    with torch.device("cpu" if parameter_bound(config) <= SMALL_ENOUGH_TO_BUILD else "meta"):
        nets = {"G": Generator(config), "D": Discriminator(config)}
    shapes = {k: {n: tuple(t.shape) for n, t in net.state_dict().items()} for k, net in nets.items()}
    for k, net_shapes in shapes.items():
        count = sum(math.prod(s) for s in net_shapes.values())
        if count > MAX_PARAMETERS:
            raise CheckpointError(f"{path}: the config's {'generator' if k == 'G' else 'discriminator'} has "
                                  f"{count:,} parameters, more than the limit of {MAX_PARAMETERS:,}")
    return shapes


def default_device(device: str | torch.device | None = None) -> torch.device:
    """`device` as asked; None means CPU (the default that always works)."""
    return torch.device(device) if device is not None else torch.device("cpu")


class PGAN:
    """Generator protocol: latent_dim, resolution, channels, sample_latents, generate, realism.

    `generator` is the moving-average (EMA) generator used for generation; `discriminator` is
    optional and gives `realism`.
    """

    def __init__(self, config: PGANConfig, generator: Generator, discriminator: Discriminator | None = None,
                 *, device: str | torch.device | None = None, info: dict[str, Any] | None = None):
        self.config = config
        self.device = default_device(device)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.discriminator = discriminator.to(self.device).eval().requires_grad_(False) if discriminator else None
        self.info = dict(info or {})
        self.preview_heads: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # resolution -> fitted head
        self.display: Generator | None = None  # a bfloat16 channels-last copy for renders, see use_bfloat16
        self.display_discriminator: Discriminator | None = None  # the same for scores without gradient

    @classmethod
    def random(cls, config: PGANConfig, *, seed: int = 0, device: str | None = None) -> "PGAN":
        """Untrained networks, for tests and as a training start."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config, Generator(config), Discriminator(config), device=device)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def channels(self) -> int:
        return self.config.channels

    def to(self, device: str | torch.device) -> "PGAN":
        self.device = torch.device(device)
        self.generator.to(self.device)
        for net in (self.display, self.display_discriminator):
            if net is not None:
                net.to(self.device)
        if self.discriminator is not None:
            self.discriminator.to(self.device)
        return self

    def sample_latents(self, n: int, seed: int, *, truncation: float | None = None) -> torch.Tensor:
        """[n, latent_dim] standard normal latents; the same seed gives the same latents anywhere."""
        return sample_latents(n, self.latent_dim, seed, truncation=truncation)

    def latents_for_seeds(self, seeds: list[int], *, truncation: float | None = None) -> torch.Tensor:
        """One latent per seed (seed s always gives the same image, whatever the others are)."""
        return torch.cat([self.sample_latents(1, s, truncation=truncation) for s in seeds])

    def generate(self, z: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """[N, latent_dim] -> [N, C, R, R] in about [-1, 1]; differentiable when z requires grad
        (always float32; renders without gradient use the bfloat16 copy after `use_bfloat16`)."""
        z = z.to(self.device, torch.float32)
        if z.requires_grad:
            return self.generator(z)
        net, dtype = self.render_net()
        with torch.no_grad():
            return torch.cat([net(b.to(dtype)).float() for b in z.split(batch_size)]) if len(z) else \
                z.new_zeros(0, self.channels, self.resolution, self.resolution)

    def render_net(self) -> tuple[Generator, torch.dtype]:
        """The generator that renders without gradient (the bfloat16 copy after `use_bfloat16`)
        and the dtype its input takes."""
        net = self.display or self.generator
        return net, next(net.parameters()).dtype

    def use_bfloat16(self, on: bool = True) -> "PGAN":
        """Render images without gradient (pages, compose rounds, previews) with a bfloat16 copy
        of the generator in channels-last layout: on CPUs with AMX, oneDNN's bfloat16 kernels run
        that layout several times faster than float32 (plain autocast keeps NCHW and converts
        around every float32 op, and gains nothing). Searches still differentiate the float32
        generator. Close enough for display, not bit-identical: see benchmarks/large_models.py."""
        def copied(net):
            return copy.deepcopy(net).to(torch.bfloat16).to(memory_format=torch.channels_last) \
                if on and net is not None else None
        self.display, self.display_discriminator = copied(self.generator), copied(self.discriminator)
        return self

    def preview_resolutions(self) -> list[int]:
        """The sizes `preview` can render: every scale the generator grew through, 4 px upwards."""
        return [4 * 2 ** i for i in range(len(self.config.depths))]

    def preview(self, z: torch.Tensor, resolution: int, *, batch_size: int = 64) -> torch.Tensor:
        """[N, latent_dim] -> [N, C, r, r]: the generator stopped at a lower scale, drawn by that
        scale's own toRGB layer (progressive growing left one per scale in every checkpoint).

        Costs a fraction of a full render (the last scales hold most of the work); whether it looks
        like the full image depends on training (`preview_agreement` measures it). At the full
        resolution it is `generate`."""
        if resolution not in self.preview_resolutions():
            raise ValueError(f"preview resolution must be one of {self.preview_resolutions()}, got {resolution}")
        if resolution == self.resolution:
            return self.generate(z, batch_size=batch_size)
        level = self.preview_resolutions().index(resolution)
        head = self.preview_heads.get(resolution)
        z = z.to(self.device, torch.float32)
        if z.requires_grad:
            return forward_to(self.generator, z, level, head)
        net, dtype = self.render_net()
        with torch.no_grad():
            return torch.cat([forward_to(net, b.to(dtype), level, head).float() for b in z.split(batch_size)]) \
                if len(z) else z.new_zeros(0, self.channels, resolution, resolution)

    def fit_preview(self, resolution: int, *, n: int = 256, seed: int = 1) -> dict[str, float]:
        """Fit the `resolution` preview's colour head to this generator's own full renders
        (`fit_preview_head`; seconds at 256 px on a CPU for n = 256) and use it from now on.
        Returns the agreement before and after, on other latents."""
        before = preview_agreement(self, resolution, seed=seed + 1)
        self.preview_heads[resolution] = fit_preview_head(self, resolution, n=n, seed=seed)
        return {"before": before, "after": preview_agreement(self, resolution, seed=seed + 1)}

    def realism(self, images: torch.Tensor) -> torch.Tensor:
        """The discriminator's score [N] (higher is more real); needs a discriminator."""
        if self.discriminator is None:
            raise RuntimeError("this model has no discriminator, so no realism score")
        images = images.to(self.device, torch.float32)
        if images.requires_grad:
            return self.discriminator(images)[:, 0]
        with torch.no_grad():
            if self.display_discriminator is not None:  # after use_bfloat16 (D's spread: 2.4x faster at 256 px)
                x = images.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
                return self.display_discriminator(x)[:, 0].float()
            return self.discriminator(images)[:, 0]

    # -- our format ---------------------------------------------------------------------------

    def save(self, path: str | Path, *, info: dict[str, Any] | None = None) -> Path:
        """Write PATH.safetensors (G and D, config in metadata) and PATH.json (config + info)."""
        tensors = {f"G.{k}": v for k, v in self.generator.state_dict().items()}
        if self.discriminator is not None:
            tensors.update({f"D.{k}": v for k, v in self.discriminator.state_dict().items()})
        return save_weights(path, tensors, format=FORMAT, config=self.config.to_dict(),
                            info={**self.info, **(info or {})})

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, with_discriminator: bool = True) -> "PGAN":
        """Load our safetensors file (the JSON sidecar is optional: the config is also inside)."""
        def shapes(config_dict: dict[str, Any] | None) -> dict[str, tuple[int, ...]]:
            try:
                config = PGANConfig.from_dict(config_dict or {})
            except (TypeError, ValueError) as e:
                raise WeightFileError(f"{path}: its config does not describe a valid PGAN ({e})") from None
            expected = expected_shapes(config, path)  # CheckpointError (a WeightFileError) when too large
            return {f"{k}.{n}": s for k, net in expected.items() for n, s in net.items()}

        try:
            wf = load_weights(path, format=FORMAT, kind="PGAN generator", shapes=shapes)
            config = PGANConfig.from_dict(wf.config)
            g = Generator(config)
            load_state(g, {k[2:]: v for k, v in wf.tensors.items() if k.startswith("G.")}, path=wf.path,
                       what="generator")
            d = None
            d_state = {k[2:]: v for k, v in wf.tensors.items() if k.startswith("D.")}
            if with_discriminator and d_state:
                d = Discriminator(config)
                load_state(d, d_state, path=wf.path, what="discriminator")
        except WeightFileError as e:
            raise CheckpointError(str(e)) from None
        return cls(config, g, d, device=device, info=wf.info)


def features_at(g: Generator, z: torch.Tensor, level: int) -> torch.Tensor:
    """`Generator.forward`'s activations after scale `level` (0: 4 px), before any toRGB:
    [N, d] -> [N, depths[level], 4 * 2**level, ...]. No fade-in (a finished model's alpha is 0)."""
    c = g.config
    if z.dim() != 2 or z.shape[1] != c.latent_dim:
        raise ValueError(f"expected latents [N, {c.latent_dim}], got {list(z.shape)}")
    x = pixel_norm(z) if c.pixel_norm else z
    x = torch.nn.functional.leaky_relu(g.format_layer(x), c.leaky_relu).view(z.shape[0], -1, 4, 4)
    x = pixel_norm(x) if c.pixel_norm else x
    x = g._act(g.scale0(x))
    for c1, c2 in list(g.scales)[:level]:
        x = g._act(c2(g._act(c1(upscale2d(x)))))
    return x


def forward_to(g: Generator, z: torch.Tensor, level: int, head: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> torch.Tensor:
    """The generator stopped after scale `level`, drawn by `to_rgb[level]` or by `head` (weight
    [C, D], bias [C], from `fit_preview_head`): [N, d] -> [N, C, 4 * 2**level, ...]."""
    x = features_at(g, z, level)
    if head is None:
        x = g.to_rgb[level](x)
    else:
        weight, bias = head
        x = torch.einsum("cd,ndhw->nchw", weight.to(x), x) + bias.to(x)[None, :, None, None]
    return torch.tanh(x) if g.config.output_activation == "tanh" and head is None else x


@torch.no_grad()
def fit_preview_head(model: "PGAN", resolution: int, *, n: int = 256, seed: int = 1,
                     batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 colour head for the `resolution` scale fitted (least squares, closed form) to the full
    renders box-downsampled to that size, over n of the generator's own samples: no data needed.

    Progressive growing trains each lower toRGB only while its scale is the output; later scales
    keep changing the shared layers, so the old head drifts (`preview_agreement` measures how
    much). The fitted head draws what the full image would look like at that size instead."""
    level = model.preview_resolutions().index(resolution)
    z = model.sample_latents(n, seed)
    depth = model.config.depths[level]
    gram = torch.zeros(depth + 1, depth + 1, dtype=torch.float64)
    cross = torch.zeros(depth + 1, model.channels, dtype=torch.float64)
    net, dtype = model.render_net()  # the bfloat16 copy after use_bfloat16, as previews run
    for zb in z.split(batch):
        zb = zb.to(model.device)
        feats = features_at(net, zb.to(dtype), level).float()  # [b, D, r, r]
        # the full renders as displayed (the bfloat16 copy after use_bfloat16: 5x faster at 256 px)
        target = torch.nn.functional.adaptive_avg_pool2d(model.generate(zb), resolution)  # [b, C, r, r]
        a = torch.cat([feats, torch.ones_like(feats[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, depth + 1).double()
        y = target.permute(0, 2, 3, 1).reshape(-1, model.channels).double()
        gram += (a.T @ a).cpu()
        cross += (a.T @ y).cpu()
    ridge = 1e-6 * gram.diagonal().mean() * torch.eye(depth + 1, dtype=torch.float64)
    solution = torch.linalg.solve(gram + ridge, cross)  # [D + 1, C]
    return solution[:-1].T.float().contiguous(), solution[-1].float().contiguous()


@torch.no_grad()
def preview_agreement(model: "PGAN", resolution: int, *, n: int = 64, seed: int = 0) -> dict[str, float]:
    """How well `preview` at `resolution` stands for the full image: over n latents, the pixel
    correlation between each preview and its full render box-downsampled to the same size, the
    mean squared difference, and how often an image's preview is closer to its own downsampled
    render than to any other's (the "choose by it" rate)."""
    z = model.sample_latents(n, seed)
    full = torch.nn.functional.adaptive_avg_pool2d(model.generate(z), resolution).flatten(1).cpu()
    prev = model.preview(z, resolution).flatten(1).cpu()
    fc, pc = full - full.mean(1, keepdim=True), prev - prev.mean(1, keepdim=True)
    corr = (fc * pc).sum(1) / (fc.norm(dim=1) * pc.norm(dim=1)).clamp_min(1e-12)
    nearest = torch.cdist(prev, full).argmin(1)
    return {"resolution": resolution, "n": n, "correlation_mean": float(corr.mean()),
            "correlation_min": float(corr.min()), "mse": float((full - prev).pow(2).mean()),
            "identified": float((nearest == torch.arange(n)).float().mean())}


def sample_latents(n: int, latent_dim: int, seed: int, *, truncation: float | None = None) -> torch.Tensor:
    """[n, latent_dim] N(0, 1) draws from a CPU generator seeded with `seed` (portable).

    With `truncation` T, entries with |z| > T are redrawn until inside (truncated normal).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if truncation is not None and truncation <= 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(n, latent_dim, generator=gen)
    if truncation is not None:
        for _ in range(1000):
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
        z.clamp_(-truncation, truncation)
    return z
