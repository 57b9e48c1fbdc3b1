"""Image -> features: IRMAE and SSL encoders, their losses, training, distances and diagnostics."""
from .backbone import ConvBackbone, Encoder, adapt_images
from .config import ENCODER_METHODS, EncoderConfig
from .distance import Distance, calibrate
from .io import UnknownEncoderError, load_encoder, save_encoder, shipped_ids
from .irmae import IRMAE

__all__ = ["ENCODER_METHODS", "ConvBackbone", "Distance", "Encoder", "EncoderConfig", "IRMAE",
           "UnknownEncoderError", "adapt_images", "calibrate", "load_encoder", "save_encoder", "shipped_ids"]
