"""Where a model's files live, worked out in one place.

The shipped models' files are under assets/ (`SHIPPED`); a model a user brings (`python app.py
--model PATH`, the CLI's `--model PATH`) keeps its dependent files in a folder beside it,
PATH's folder / "<stem>.studio/", with the same layout. Both hold, per model id:

    inversion/<id>.safetensors             learned inversion encoder (Inspire's start, Compose's image driver)
    inversion/<id>-directions.safetensors  latent directions that move the image most (Compose's subspace)
    preference/<id>-metric.safetensors     latent metric of the "bayes" preference driver
    preference/<id>-pixels.safetensors     pixel prior of the "bayes-image" driver
    encoders/<id>.safetensors              perceptual encoders (shipped only)
    measured/<id>.safetensors              measured on a large model's first use: preview heads, D's spread (studio.display)

`find(kind, id_or_path)` answers for a catalog id, for a model registered by the catalog (a
user's file given an id), and for a model file path. Like `weightfile`, this module sits below
`generators`, `encoders` and `optimizers` and imports none of the project.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "assets"
LAYOUT = {
    "inversion": "inversion/{id}.safetensors",
    "directions": "inversion/{id}-directions.safetensors",
    "metric": "preference/{id}-metric.safetensors",
    "pixels": "preference/{id}-pixels.safetensors",
    "encoder": "encoders/{id}.safetensors",
    "measured": "measured/{id}.safetensors",
}
DEPENDENT = ("inversion", "directions", "metric", "pixels")  # what a generator's tabs use when present
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # an id, never a path
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")


@dataclass(frozen=True)
class AssetDir:
    """A folder in the assets layout; `name`, when set, names the files instead of the model id
    (a user's folder is named after their file, whatever id the studio gives the model)."""

    root: Path
    name: str | None = None

    def path(self, kind: str, model_id: str) -> Path:
        if kind not in LAYOUT:
            raise ValueError(f"unknown asset kind {kind!r}; expected one of {', '.join(LAYOUT)}")
        return self.root / LAYOUT[kind].format(id=self.name or model_id)

    def folder(self, kind: str) -> Path:
        return self.path(kind, "x").parent

    def find(self, kind: str, model_id: str) -> Path | None:
        path = self.path(kind, model_id)
        return path if path.is_file() else None


SHIPPED = AssetDir(ROOT)
_REGISTERED: dict[str, AssetDir] = {}
_LOCK = threading.Lock()


def beside(model_file: str | Path) -> AssetDir:
    """The dependent-assets folder of a model file: <folder>/<stem>.studio/, files named <stem>."""
    p = Path(model_file).resolve()
    return AssetDir(p.parent / f"{p.stem}.studio", name=p.stem)


def is_model_path(id_or_path: str | Path) -> bool:
    return isinstance(id_or_path, Path) or not MODEL_ID.fullmatch(str(id_or_path)) \
        or Path(str(id_or_path)).suffix.lower() in MODEL_SUFFIXES


def register(model_id: str, model_file: str | Path) -> AssetDir:
    """Give the studio's id for a user's model file (the catalog does this for `--model PATH`), so
    lookups by that id find the files beside it."""
    where = beside(model_file)
    with _LOCK:
        _REGISTERED[model_id] = where
    return where


def unregister(model_id: str) -> None:
    with _LOCK:
        _REGISTERED.pop(model_id, None)


def home(id_or_path: str | Path) -> tuple[AssetDir, str]:
    """(folder, id) where `id_or_path`'s dependent files are written and looked up first."""
    if is_model_path(id_or_path):
        p = Path(id_or_path).resolve()
        if p.parent == ROOT:  # assets/<id>.safetensors given by path is the shipped model
            return SHIPPED, p.stem
        return beside(p), p.stem
    with _LOCK:
        return _REGISTERED.get(str(id_or_path), SHIPPED), str(id_or_path)


def find(kind: str, id_or_path: str | Path) -> Path | None:
    """The file of `kind` for a model (catalog id, registered id or model path), or None."""
    where, model_id = home(id_or_path)
    return where.find(kind, model_id)


def output(kind: str, id_or_path: str | Path) -> Path:
    """Where a CLI writes the `kind` file for this model (its folder made when missing)."""
    where, model_id = home(id_or_path)
    path = where.path(kind, model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["ROOT", "LAYOUT", "DEPENDENT", "MODEL_ID", "AssetDir", "SHIPPED", "beside", "register", "unregister",
           "home", "find", "output", "is_model_path"]
