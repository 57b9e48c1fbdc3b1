"""An encoder with its training head and loss: a projector for the joint-embedding methods
(VICReg, Barlow Twins, SimCLR, DCL, DCLW), none for DirectCLR."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import Encoder
from .config import EncoderConfig
from .losses import BarlowTwinsLoss, DCLLoss, DirectCLRLoss, InfoNCELoss, VICRegLoss


def make_loss(config: EncoderConfig) -> nn.Module:
    """The SSL loss of a config's method (IRMAE's pixel loss lives in `IRMAE`)."""
    c = config
    losses = {
        "vicreg": lambda: VICRegLoss(c.vicreg_lambda, c.vicreg_mu, c.vicreg_nu),
        "barlow": lambda: BarlowTwinsLoss(c.barlow_lambda),
        "simclr": lambda: InfoNCELoss(c.temperature),
        "dcl": lambda: DCLLoss(c.temperature),
        "dclw": lambda: DCLLoss(c.temperature, sigma=c.dclw_sigma),
        "directclr": lambda: DirectCLRLoss(c.directclr_dims, c.temperature),
    }
    if c.method not in losses:
        raise ValueError(f"{c.method!r} is not a joint-embedding SSL method ({', '.join(losses)})")
    return losses[c.method]()


def projector(dim: int, hidden: int, *, layers: int = 3) -> nn.Sequential:
    """VICReg/Barlow-style MLP: (Linear, BatchNorm, ReLU) x (layers - 1), then Linear."""
    mods: list[nn.Module] = []
    d = dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, hidden))
    return nn.Sequential(*mods)


class SSLModel(nn.Module):
    """`loss(view1, view2)`: encoder -> projector (identity for DirectCLR) -> method's loss."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.encoder = Encoder(config)
        self.criterion = make_loss(config)
        contrastive = config.method in ("simclr", "dcl", "dclw")
        self.projector = nn.Identity() if config.method == "directclr" else \
            projector(config.dim, config.projector_dim, layers=2 if contrastive else 3)

    def loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        z = self.projector(self.encoder(torch.cat([view1, view2])))
        z1, z2 = z.chunk(2)
        return self.criterion(z1, z2)
