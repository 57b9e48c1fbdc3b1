"""SSL losses, one per module; each takes two views' embeddings [N, D] and returns a scalar."""
from .barlow import BarlowTwinsLoss, cross_correlation
from .dcl import DCLLoss, von_mises_fisher_weights
from .directclr import DirectCLRLoss
from .infonce import InfoNCELoss
from .vicreg import VICRegLoss, off_diagonal

__all__ = ["BarlowTwinsLoss", "DCLLoss", "DirectCLRLoss", "InfoNCELoss", "VICRegLoss",
           "cross_correlation", "off_diagonal", "von_mises_fisher_weights"]
