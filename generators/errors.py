"""Errors a user can act on: the CLI and the app print them as one line."""


class CheckpointError(ValueError):
    """A weights file that cannot be used: not a checkpoint, truncated, unsafe, or another model."""
