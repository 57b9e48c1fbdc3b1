"""A PGAN training step recorded once as a CUDA graph and replayed, one graph per phase.

On a GPU, a step at the batch sizes of the low resolutions is a few hundred small kernels, each
launched from Python: the H200 measurement in the README had our eager trainer at 1.2-1.4x
pytorch_GAN_zoo at the same batch, both bound by launch overhead, not by the GPU. Replaying a
captured graph launches the whole step (both updates, the penalty's double backward, Adam and
the EMA) in one call.

What changes from step to step lives in tensors the graph reads in place:
- the real batch, copied into a static buffer before each replay;
- alpha, a 0-dim tensor the networks hold during a fade phase (`pgan.fading`), filled per step;
- random numbers: the trainer's generator is registered with the graph, so every replay draws
  new ones from where the last left off;
- Adam's step counts (`capturable=True`, see `train._adam`).
The first `WARMUP` steps run eagerly on a side stream (cuDNN/cuBLAS workspaces and Adam's state
are created lazily, outside the capture), the next is captured and replayed. The graph is
dropped when the phase ends, the networks are rebuilt or a checkpoint is loaded.

On a CPU nothing is captured: the same static-buffer step runs eagerly, which is what the tests
check against the plain step (everything but the capture itself).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .train import Trainer

WARMUP = 3


class StepGraph:
    """One captured training step of `trainer`'s current phase, replayed every step after the warmup."""

    def __init__(self, trainer: "Trainer"):
        self.capture = trainer.device.type == "cuda"
        self.fading = trainer.phase.kind == "fade"
        self.alpha = torch.zeros((), device=trainer.device)  # read by the graph
        trainer.g.alpha = trainer.d.alpha = self.alpha if self.fading else 0.0
        self.raw: torch.Tensor | None = None  # [n, C, R, R] real batch at the data's resolution
        self.graph: torch.cuda.CUDAGraph | None = None
        self.stats: dict[str, torch.Tensor] = {}
        self.eager_steps = 0

    def set_alpha(self, alpha: float) -> None:
        if self.fading:
            self.alpha.fill_(alpha)

    def step(self, trainer: "Trainer", raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training step on `raw` (CPU batch). The returned tensors are overwritten by the next."""
        if self.raw is None:
            self.raw = torch.empty(raw.shape, dtype=raw.dtype, device=trainer.device)
        elif raw.shape != self.raw.shape:
            raise ValueError(f"a captured step needs batches of {list(self.raw.shape)}, got {list(raw.shape)}")
        self.raw.copy_(raw, non_blocking=True)
        if not self.capture:
            return self._body(trainer)
        if self.graph is None:
            if self.eager_steps < WARMUP:
                self.eager_steps += 1
                side = torch.cuda.Stream(device=trainer.device)
                side.wait_stream(torch.cuda.current_stream(trainer.device))
                with torch.cuda.stream(side):
                    stats = self._body(trainer)
                torch.cuda.current_stream(trainer.device).wait_stream(side)
                return stats
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(trainer.gen)
            trainer.opt_d.zero_grad(set_to_none=True)  # gradients are allocated inside the capture
            trainer.opt_g.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                self.stats = self._body(trainer)
            self.graph = graph
        self.graph.replay()
        return self.stats

    def _body(self, trainer: "Trainer") -> dict[str, torch.Tensor]:
        assert self.raw is not None
        return trainer.update(self.raw, self.alpha if self.fading else 0.0)


__all__ = ["StepGraph", "WARMUP"]
