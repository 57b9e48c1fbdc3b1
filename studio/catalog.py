"""The catalog of shipped models (`assets/catalog.json`) and loading models by id or by path."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.errors import CheckpointError
from generators.ganzoo import is_zoo_file, load_zoo
from generators.model import PGAN

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CATALOG_PATH = ASSETS / "catalog.json"
CATALOG_ENV = "GAN_STUDIO_CATALOG"  # another catalog.json (tests, private model collections)


def default_catalog_path() -> Path:
    return Path(os.environ.get(CATALOG_ENV) or CATALOG_PATH)


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want a plain line
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    """One catalog row: a generator or an encoder with its card."""

    id: str
    kind: str  # "generator" | "encoder"
    title: str
    files: tuple[str, ...]
    data: str = ""
    license: str = ""
    resolution: int | None = None
    channels: int | None = None
    latent_dim: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    card: str | None = None  # markdown model card, relative to assets/
    samples: str | None = None  # sample grid image, relative to assets/
    status: str = ""
    default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def path(self, root: Path) -> Path:
        return root / self.files[0]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d["files"] = list(self.files)
        d.update(self.extra)
        return d


class Catalog:
    """Reads the catalog once; loads and caches models lazily (thread-safe)."""

    def __init__(self, path: str | Path | None = None, *, device: str | None = None):
        self.path = Path(path) if path is not None else default_catalog_path()
        self.device = device  # where generators load when the caller names no device (None: the CPU)
        self.root = self.path.parent
        raw = json.loads(self.path.read_text()) if self.path.is_file() else {"models": []}
        known = set(Entry.__dataclass_fields__) - {"extra"}
        self.entries: dict[str, Entry] = {}
        for row in raw.get("models", []):
            base = {k: v for k, v in row.items() if k in known}
            base["files"] = tuple(base.get("files", ()))
            self.entries[row["id"]] = Entry(**base, extra={k: v for k, v in row.items() if k not in known})
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def ids(self, kind: str | None = None) -> list[str]:
        return [i for i, e in self.entries.items() if kind is None or e.kind == kind]

    def get(self, model_id: str) -> Entry:
        if model_id not in self.entries:
            raise UnknownModelError(f"unknown model id {model_id!r}; known: {', '.join(self.entries) or 'none'}")
        return self.entries[model_id]

    def default_generator(self) -> str:
        gens = self.ids("generator")
        if not gens:
            raise UnknownModelError(f"no generator in {self.path}")
        return next((i for i in gens if self.entries[i].default), gens[0])

    def generator(self, id_or_path: str, *, device: str | None = None) -> PGAN:
        """A generator by catalog id, by our .safetensors path, or by a zoo .pth path (cached)."""
        device = self.device if device is None else device
        key = (id_or_path, str(device))
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load_generator(id_or_path, catalog=self, device=device)
            return self._cache[key]

    def resolve(self, id_or_path: str) -> Path:
        if id_or_path in self.entries:
            return self.get(id_or_path).path(self.root)
        p = Path(id_or_path)
        if p.suffix and (p.exists() or "/" in id_or_path or p.suffix in (".safetensors", ".pth", ".pt")):
            return p
        raise UnknownModelError(f"{id_or_path!r} is neither a catalog id ({', '.join(self.entries) or 'none'}) "
                                f"nor a model file")


def load_generator(id_or_path: str, *, catalog: Catalog | None = None, device: str | None = None) -> PGAN:
    catalog = catalog or Catalog()
    path = catalog.resolve(id_or_path)
    if is_zoo_file(path):
        return load_zoo(path, device=device)
    if path.suffix == ".safetensors":
        model = PGAN.load(path, device=device)
        if id_or_path in catalog.entries:
            model.info.setdefault("id", id_or_path)
        return model
    raise CheckpointError(f"{path}: unknown model file type (expected .safetensors, or a zoo .pth/.pt)")
