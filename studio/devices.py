"""`--device auto|cpu|cuda|mps` for the app, the CLI and training, resolved in one place.

`auto` is CUDA when present, else Apple's MPS, else the CPU (the default that always works). A
device that is asked for but absent is refused in one line rather than failing deep inside torch.
"""
from __future__ import annotations

import argparse
import re

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")
_NAME = re.compile(r"(auto|cpu|cuda|mps)(?::(\d+))?")


class DeviceError(ValueError):
    """A device name that is unknown or not present on this machine."""


def cuda_available() -> bool:
    return torch.cuda.is_available()


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for `name` ("auto", "cpu", "cuda", "cuda:1", "mps"; None means auto)."""
    text = "auto" if name is None else str(name).strip().lower()
    m = _NAME.fullmatch(text)
    if m is None:
        raise DeviceError(f"unknown device {str(name)!r}; expected one of {', '.join(CHOICES)} (or cuda:N)")
    kind, index = m.group(1), m.group(2)
    if kind == "auto":
        if index is not None:
            raise DeviceError(f"unknown device {str(name)!r}; 'auto' takes no index")
        return torch.device("cuda" if cuda_available() else "mps" if mps_available() else "cpu")
    if kind == "cuda":
        if not cuda_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"--device {text}: {why}; use --device cpu (or auto)")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise DeviceError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not mps_available():
        raise DeviceError(f"--device {text}: Apple's MPS is not available here; use --device cpu (or auto)")
    if kind == "cpu" and index is not None:
        raise DeviceError(f"unknown device {str(name)!r}; the CPU takes no index")
    return torch.device(text)


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX tiles), so oneDNN's
    bfloat16 convolutions beat float32 ones (measured on AMD EPYC with AVX-512 BF16: 9 images of
    the celebAHQ-256 architecture, 4.8 s float32 against 0.96 s in bfloat16 channels-last)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def add_device_argument(parser: argparse.ArgumentParser, *, what: str = "") -> None:
    """The one `--device` option: a name, resolved (and refused when absent) by `resolve_device`."""
    parser.add_argument("--device", default="auto", metavar="{auto,cpu,cuda,mps}",
                        help="auto (default): CUDA when present, else Apple MPS, else the CPU" + (f"; {what}" if what else ""))


__all__ = ["CHOICES", "DeviceError", "resolve_device", "add_device_argument", "cpu_has_fast_bfloat16"]
