"""Errors a user can act on: the CLI and the app print them as one line."""
from weightfile import WeightFileError


class CheckpointError(WeightFileError):
    """A weights file that cannot be used: not a checkpoint, truncated, unsafe, or another model."""
