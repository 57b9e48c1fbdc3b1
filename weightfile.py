"""Our weight files, read and written in one place: PATH.safetensors + PATH.json.

The safetensors file holds the tensors, and in its metadata the file's `format` (e.g.
"studio-pgan/1") and its architecture `config` as JSON, so it loads on its own. The JSON sidecar
repeats format and config and adds `info` (training data, metrics, ...) for people and the catalog.
Nothing here unpickles anything.

This module sits below `generators`, `encoders` and `optimizers` (all three import it) and imports
none of the project.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

SIDECAR_KEYS = ("format", "config")  # sidecar entries that are not `info`


class WeightFileError(ValueError):
    """A weight file that cannot be used: missing, unreadable, of another kind, or not fitting its config."""


@dataclass(frozen=True)
class FileLimits:
    """The most a weight file a user brings may hold, checked before its tensors are read.

    The largest published pytorch_GAN_zoo PGAN (celebAHQ-512: G, its average and D) is about
    0.3 GB and 300 tensors; the defaults leave ten times that room."""

    bytes: int = 4_000_000_000  # the file
    tensors: int = 4_096  # entries (state-dict tensors, or storages in a torch zip)
    elements: int = 1_000_000_000  # numbers summed over all tensors (4 GB as float32)
    header: int = 64_000_000  # a torch zip's pickle (data.pkl), which holds no numbers itself


LIMITS = FileLimits()

Shapes = Mapping[str, Sequence[int]]


def check_size(path: str | Path, *, limits: FileLimits = LIMITS) -> int:
    """The file's size in bytes, or a WeightFileError when it is missing or over the limit."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"{path}: no such file")
    size = path.stat().st_size
    if size > limits.bytes:
        raise WeightFileError(f"{path}: {size / 1e9:.1f} GB, larger than the limit of {limits.bytes / 1e9:.1f} GB "
                              f"for a weights file")
    return size


def check_shapes(path: str | Path, found: Shapes, expected: Shapes | None = None, *, what: str = "",
                 limits: FileLimits = LIMITS) -> None:
    """Tensor shapes read from a file's header against the limits and, with `expected`, against what
    its config needs (a name the config has no tensor for, or another shape): before any is read.
    Names `expected` has that the file lacks are left to `load_state`, which reports them."""
    what = f"{what} " if what else ""
    if len(found) > limits.tensors:
        raise WeightFileError(f"{path}: {what}holds {len(found)} tensors, more than the limit of {limits.tensors}")
    total = 0
    for name, shape in found.items():
        if any(int(n) < 0 for n in shape):
            raise WeightFileError(f"{path}: {what}tensor {name} has a negative size {list(shape)}")
        total += math.prod(int(n) for n in shape)
    if total > limits.elements:
        raise WeightFileError(f"{path}: {what}holds {total:,} numbers, more than the limit of {limits.elements:,}")
    if expected is None:
        return
    for name, shape in found.items():
        if name not in expected:
            raise WeightFileError(f"{path}: {what}weights do not match its config (unexpected {name})")
        if tuple(int(n) for n in shape) != tuple(expected[name]):
            raise WeightFileError(f"{path}: {what}tensor {name} has shape {list(shape)}, "
                                  f"config expects {list(expected[name])}")


@dataclass(frozen=True)
class WeightFile:
    """What `load_weights` read: the tensors, the config from the metadata, the sidecar's info."""

    path: Path
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any] | None  # None only when the loader did not require one
    metadata: dict[str, str] = field(default_factory=dict)  # the raw safetensors metadata
    info: dict[str, Any] = field(default_factory=dict)  # sidecar entries other than format and config


def save_weights(path: str | Path, tensors: Mapping[str, torch.Tensor], *, format: str,
                 config: Mapping[str, Any] | None = None, info: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, str] | None = None, sidecar: bool = True) -> Path:
    """Write PATH.safetensors (format, config and `metadata` inside) and, with `sidecar`, PATH.json.

    Tensors are stored as given (detached, on CPU, contiguous); cast them first to store another
    dtype. The sidecar is {"format", "config", **info}. Returns the .safetensors path.
    """
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": format, **(metadata or {})}
    if config is not None:
        meta["config"] = json.dumps(dict(config), sort_keys=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    if sidecar:
        side = {"format": format, **({"config": dict(config)} if config is not None else {}), **(info or {})}
        path.with_suffix(".json").write_text(json.dumps(side, indent=2) + "\n")
    return path


def load_weights(path: str | Path, *, format: str, kind: str, require_config: bool = True,
                 shapes: Callable[[dict[str, Any] | None], Shapes] | None = None,
                 limits: FileLimits = LIMITS) -> WeightFile:
    """Read PATH (a .safetensors file of `format`) and its optional PATH.json sidecar.

    `kind` names the file in errors ("not a studio encoder file"). Raises WeightFileError for a
    missing file, an unreadable one, one of another format, or one without a readable config.
    The file's size, its tensor count and the sizes in its header are checked against `limits`
    before a tensor is read; `shapes(config)`, when given, says which tensors of which shapes the
    config needs (it may raise WeightFileError for a config too large to build).
    """
    path = Path(path)
    check_size(path, limits=limits)
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            found = meta.get("format")
            if found != format:
                found = f"format {found!r}" if found is not None else "no format in its metadata"
                raise WeightFileError(f"{path}: not a studio {kind} file ({found}, expected {format!r})")
            config = None
            if "config" in meta:
                config = _json_object(meta["config"], f"{path}: the {kind} config in its metadata")
            elif require_config:
                raise WeightFileError(f"{path}: studio {kind} file without its config")
            header = {k: f.get_slice(k).get_shape() for k in f.keys()}
            check_shapes(path, header, shapes(config) if shapes is not None else None, limits=limits)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except WeightFileError:
        raise
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightFileError(f"{path}: not a readable safetensors file ({e})") from None
    return WeightFile(path, tensors, config, meta, read_info(path))


def read_info(path: str | Path) -> dict[str, Any]:
    """The `info` of PATH's PATH.json sidecar (its entries other than format and config), {} without
    one; reads no weights. Raises WeightFileError for a sidecar that is not a JSON object."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    side = _json_object(sidecar.read_text(), f"{sidecar}: the sidecar")
    return {k: v for k, v in side.items() if k not in SIDECAR_KEYS}


def load_state(module: torch.nn.Module, state: Mapping[str, Any], *, path: str | Path, what: str = "") -> None:
    """Load `state` into `module` strictly: the same keys and shapes as the module's config gives.

    `what` ("generator", ...) prefixes the error. Values are cast to the module's dtypes (float16
    files load into float32 modules).
    """
    what = f"{what} " if what else ""
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightFileError(f"{path}: {what}weights do not match its config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise WeightFileError(f"{path}: {what}entry {k} is a {type(v).__name__}, not a tensor")
        if v.shape != expected[k].shape:
            raise WeightFileError(f"{path}: {what}tensor {k} has shape {list(v.shape)}, "
                                  f"config expects {list(expected[k].shape)}")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def check_config_keys(cls: type, d: Mapping[str, Any], what: str) -> None:
    """Configs load strictly: a key that dataclass `cls` has no field for (a file from another
    version, a typo) is a ValueError naming it, never silently dropped."""
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise WeightFileError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise WeightFileError(f"{what} is not a JSON object")
    return value


__all__ = ["WeightFile", "WeightFileError", "FileLimits", "LIMITS", "save_weights", "load_weights", "load_state",
           "check_size", "check_shapes", "check_config_keys"]
