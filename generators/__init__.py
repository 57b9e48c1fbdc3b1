"""Latent -> image models: the progressive GAN, its training, checkpoint import and export."""
from .errors import CheckpointError
from .model import PGAN, sample_latents
from .pgan import Discriminator, Generator, PGANConfig

__all__ = ["CheckpointError", "PGAN", "PGANConfig", "Generator", "Discriminator", "sample_latents"]
