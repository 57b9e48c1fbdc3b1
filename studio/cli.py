"""`python -m studio COMMAND ...`: each command lives in `studio/commands/<name>.py`.

A command module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Expected failures (bad input, bad files) print one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from generators.errors import CheckpointError

import studio.commands as commands
from studio.devices import resolve_device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio", description="GAN studio command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"studio.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:  # every command's --device, resolved once
            args.device = str(resolve_device(args.device))
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
        return 0
    except (CheckpointError, ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 2
