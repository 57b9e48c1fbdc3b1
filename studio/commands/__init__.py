"""CLI commands, one module each, discovered by `studio.cli`."""
