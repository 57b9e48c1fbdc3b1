"""The catalog of shipped models (`assets/catalog.json`) and loading models by id or by path.

Models a user brings (`python app.py --model PATH`) join the catalog with `add_model`: the file is
checked and loaded once, given an id, and described by a generated card (architecture, size,
source file, and which dependent files it lacks and what that costs, see `studio.usermodels`).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import assetpaths
from generators.errors import CheckpointError
from generators.ganzoo import is_zoo_file, load_zoo
from generators.model import PGAN

ASSETS = assetpaths.ROOT
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
        self.preferred: str | None = None  # the picker's first choice, when not the catalog's default
        self._cards: Path | None = None  # generated cards of added models (a temporary folder)

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
        if self.preferred in gens:
            return self.preferred
        return next((i for i in gens if self.entries[i].default), gens[0])

    def add_model(self, id_or_path: str, *, prefer: bool = False) -> str:
        """Make a model file (a zoo .pth or our .safetensors) one of the catalog's generators; returns
        its id. The file is loaded now, so a bad one fails here, with the loader's one-line
        CheckpointError; a catalog id is accepted as it is. With `prefer`, it becomes the default."""
        from studio.usermodels import describe_model  # card text; imports nothing back

        if id_or_path in self.entries:
            model_id = id_or_path
        else:
            path = Path(id_or_path).expanduser()
            if not path.is_file():
                raise UnknownModelError(f"{id_or_path}: no such model file, and not a catalog id "
                                        f"({', '.join(self.ids('generator')) or 'none'})")
            model = load_generator(str(path), catalog=self, device=self.device)
            model_id = self._free_id(path.stem)
            assetpaths.register(model_id, path)
            if self._cards is None:
                self._cards = Path(tempfile.mkdtemp(prefix="gan-studio-cards-"))
            card = self._cards / f"{model_id}.md"
            info = describe_model(model, path, model_id)
            card.write_text(info.card)
            self.entries[model_id] = Entry(
                id=model_id, kind="generator", title=info.title, files=(str(path.resolve()),),
                data=info.data, license="yours (brought with --model)", resolution=model.resolution,
                channels=model.channels, latent_dim=model.latent_dim, card=str(card), status=info.status,
                extra={"source": str(path.resolve()), "user": True})
            with self._lock:
                self._cache[(model_id, str(self.device))] = model
        if prefer:
            self.preferred = model_id
        return model_id

    def _free_id(self, stem: str) -> str:
        base = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem).lstrip("_.-") or "model"
        model_id, n = base, 2
        while model_id in self.entries:
            model_id, n = f"{base}-{n}", n + 1
        return model_id

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
