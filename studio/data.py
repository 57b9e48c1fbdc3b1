"""Training and evaluation images: the three shipped data sets and any image folder.

Data sets (`load_dataset(name, split=...)` returns an `ImageSet` of uint8 images + labels):

- ``faces``: ``/work/shared/data/smiles-faces`` (or ``$STUDIO_FACES``), 12,303 grayscale 64x64
  JPEG faces cut from LFW (research use). Labels: the subfolder, ``smiling`` / ``neutral``.
- ``fashion``: Fashion-MNIST idx files (Debian ``dataset-fashion-mnist``, MIT), 28x28 padded
  with background to 32x32. Labels: class names ("T-shirt/top", ...).
- ``textures``: OpenArena ``pak4-textures.pk3`` (Debian ``openarena-081-textures``, GPL-2),
  JPG and TGA images, each downscaled by `TEXTURE_DOWNSCALE` so a 64x64 crop shows texture and
  not a few big pixels. Training draws random crops; ``load_dataset`` gives a fixed set of
  `TEXTURE_EVAL_CROPS` deterministic crops per file. Labels: the source file inside the .pk3.
- any other name is an image folder, searched recursively; the first subfolder under the root
  is the (optional) label.

Splits are deterministic and never overlap: an item is in ``val`` when the SHA-1 of its key
(path relative to the root, or the file name inside the .pk3) falls in the first
`VAL_FRACTION` of the hash range; Fashion-MNIST uses its official test file (10,000) as ``val``.

Training code consumes a *stream* (`make_stream`): ``batch(n) -> [n, C, R, R]`` float in
[-1, 1] with ``state_dict()`` / ``load_state_dict()`` so training resumes at the same position,
and ``rank`` / ``world_size`` so DDP replicas read disjoint images.
"""
from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.imageio import ImageError, open_image, to_mode

FACES_DIR = Path(os.environ.get("STUDIO_FACES", "/work/shared/data/smiles-faces"))
FASHION_DIR = Path(os.environ.get("STUDIO_FASHION", "/usr/share/datasets/fashion-mnist"))
TEXTURES_PK3 = Path(os.environ.get("STUDIO_TEXTURES", "/usr/share/games/openarena/baseoa/pak4-textures.pk3"))
VAL_FRACTION = 0.1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")
# most OpenArena textures are 256x256 or larger; 1/2 keeps detail in 64x64 (1 for a pack that is
# already shrunk, see scripts/pack_for_gpu.py)
TEXTURE_DOWNSCALE = int(os.environ.get("STUDIO_TEXTURES_DOWNSCALE", "2"))
TEXTURE_EVAL_CROPS = 4
SPLITS = ("train", "val", "all")


@dataclass
class ImageSet:
    """uint8 images [N, C, H, W] (or a list of differently sized [C, H, W] for texture sources)."""

    images: torch.Tensor | list[torch.Tensor]
    labels: list[str]
    keys: list[str] = field(default_factory=list)  # where each image came from
    skipped: int = 0  # unreadable files that were left out

    def __len__(self) -> int:
        return len(self.images)

    def float(self) -> torch.Tensor:
        """[N, C, H, W] float in [-1, 1] (fixed-size sets only)."""
        if not isinstance(self.images, torch.Tensor):
            raise ValueError("this set has images of different sizes; use crops first")
        return to_float(self.images)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, C, H, W] in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def in_split(key: str, split: str, val_fraction: float = VAL_FRACTION) -> bool:
    """Deterministic hash split: the same key is always in the same split, on any machine."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return True
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return (h < val_fraction) == (split == "val")


# -- image folders ---------------------------------------------------------------------------

def _square(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize (area when shrinking)."""
    w, h = img.size
    s = min(w, h)
    if w != h:
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if s != size:
        img = img.resize((size, size), Image.BOX if s > size else Image.BICUBIC)
    return img


def _pil_uint8(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def load_folder(root: str | Path, *, split: str = "train", size: int = 64, channels: int = 1,
                progress: bool = False) -> ImageSet:
    """Every image under `root` (recursive) -> uint8 [N, channels, size, size] + labels.

    Any size or mode is accepted (centre-cropped square, converted); unreadable or truncated
    files are skipped and counted in `skipped` (and reported on stderr). Raises ValueError when
    the folder does not exist or holds no readable image of this split.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{root}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)})")
    images, labels, keys, bad = [], [], [], []
    for p in files:
        rel = p.relative_to(root).as_posix()
        if not in_split(rel, split):
            continue
        try:
            img = to_mode(open_image(p), channels)
        except ImageError as e:
            bad.append(str(e))
            continue
        images.append(_pil_uint8(_square(img, size)))
        labels.append(rel.split("/")[0] if "/" in rel else "")
        keys.append(rel)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image(s) under {root}, e.g. {bad[0]}", file=sys.stderr)
    if not images:
        raise ValueError(f"{root}: no readable images in split {split!r} "
                         f"({len(files)} files, {len(bad)} unreadable)")
    return ImageSet(torch.stack(images), labels, keys, skipped=len(bad))


def conform(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> [N, channels, size, size] as a folder would load them (PIL's grey
    conversion, centre square, area resize); returned as is when it already has that shape."""
    if tuple(images.shape[1:]) == (channels, size, size):
        return images
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got images {tuple(images.shape)}")
    mode = "L" if images.shape[1] == 1 else "RGB"
    arrays = images.permute(0, 2, 3, 1).numpy()
    return torch.stack([_pil_uint8(_square(to_mode(Image.fromarray(a[:, :, 0] if mode == "L" else a, mode),
                                                    channels), size)) for a in arrays])


# -- Fashion-MNIST ---------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: unreadable idx file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    need = int(np.prod(dims))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != need:
        raise ValueError(f"{path}: truncated idx file ({data.size} of {need} bytes)")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem + ".xz"):
        if (root / name).is_file():
            return root / name
    raise ValueError(f"{root}: no {stem}[.gz|.xz] (install with: apt-get install -y dataset-fashion-mnist)")


def load_fashion(root: str | Path = FASHION_DIR, *, split: str = "train") -> ImageSet:
    """Fashion-MNIST: train = official train file (60k), val = official test file (10k).

    Images are 28x28 padded with 2 pixels of background (0) to uint8 [N, 1, 32, 32].
    """
    root = Path(root)
    parts = {"train": ["train"], "val": ["t10k"], "all": ["train", "t10k"]}.get(split)
    if parts is None:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    images, labels, keys = [], [], []
    for part in parts:
        x = _read_idx(_find(root, f"{part}-images-idx3-ubyte"))
        y = _read_idx(_find(root, f"{part}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{root}: {part} images {x.shape} and labels {y.shape} do not match")
        images.append(np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None])
        labels += [FASHION_CLASSES[int(c)] for c in y]
        keys += [f"{part}/{i}" for i in range(len(y))]
    return ImageSet(torch.from_numpy(np.concatenate(images)), labels, keys)


# -- OpenArena textures ----------------------------------------------------------------------

def load_texture_sources(pk3: str | Path = TEXTURES_PK3, *, split: str = "train", min_size: int = 64,
                         downscale: int = TEXTURE_DOWNSCALE) -> ImageSet:
    """Every JPG/TGA in the .pk3 (a zip), RGB, shrunk by `downscale`: a list of uint8 [3, H, W].

    Images smaller than `min_size` after shrinking are left out (icons, 8x8 fills), as are
    unreadable ones (counted in `skipped`).
    """
    pk3 = Path(pk3)
    if not pk3.is_file():
        raise ValueError(f"{pk3}: no such file (install with: apt-get install -y openarena-081-textures)")
    try:
        zf = zipfile.ZipFile(pk3)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{pk3}: not a readable .pk3/zip ({e})") from None
    images, labels, bad = [], [], 0
    with zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".tga")))
        for name in names:
            if not in_split(name, split):
                continue
            try:
                img = to_mode(open_image(zf.read(name)), 3)
            except (ImageError, zipfile.BadZipFile, OSError, EOFError):
                bad += 1
                continue
            w, h = img.size
            w2, h2 = w // downscale, h // downscale
            if min(w2, h2) < min_size:
                continue
            if downscale > 1:
                img = img.resize((w2, h2), Image.BOX)
            images.append(_pil_uint8(img))
            labels.append(name)
    if bad:
        print(f"warning: skipped {bad} unreadable texture(s) in {pk3}", file=sys.stderr)
    if not images:
        raise ValueError(f"{pk3}: no usable textures in split {split!r}")
    return ImageSet(images, labels, list(labels), skipped=bad)


def random_crops(sources: list[torch.Tensor], n: int, size: int, gen: torch.Generator,
                 *, augment: bool = True) -> tuple[torch.Tensor, list[int]]:
    """n crops uint8 [n, C, size, size] from randomly chosen sources, with flips and 90-degree
    rotations when `augment`; returns the crops and the source index of each."""
    idx = torch.randint(len(sources), (n,), generator=gen).tolist()
    out = []
    for i in idx:
        src = sources[i]
        _, h, w = src.shape
        y = int(torch.randint(h - size + 1, (1,), generator=gen))
        x = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = src[:, y:y + size, x:x + size]
        if augment:
            k, flip = torch.randint(4, (2,), generator=gen).tolist()
            crop = torch.rot90(crop, k, (1, 2))
            if flip % 2:
                crop = crop.flip(2)
        out.append(crop)
    return torch.stack(out), idx


def load_textures(pk3: str | Path = TEXTURES_PK3, *, split: str = "val", size: int = 64,
                  crops_per_file: int = TEXTURE_EVAL_CROPS, seed: int = 0) -> ImageSet:
    """A fixed, reproducible set of crops uint8 [N, 3, size, size]; label = source file."""
    src = load_texture_sources(pk3, split=split, min_size=size)
    gen = torch.Generator().manual_seed(seed)
    crops, labels = [], []
    for img, name in zip(src.images, src.labels):
        c, _ = random_crops([img], crops_per_file, size, gen, augment=False)
        crops.append(c)
        labels += [name] * crops_per_file
    return ImageSet(torch.cat(crops), labels, list(labels), skipped=src.skipped)


# -- one entry point ---------------------------------------------------------------------------

DATASETS = {"faces": (64, 1), "fashion": (32, 1), "textures": (64, 3)}
LICENSES = {"faces": "LFW faces via hromi/SMILEsmileD: research use only (no license stated)",
            "fashion": "Fashion-MNIST (Zalando): MIT", "textures": "OpenArena 0.8.1 textures: GPL-2"}


def data_license(name: str, otherwise: str = "see the data's own license") -> str:
    """The terms of a named set, recorded in the weights' sidecar of what is trained on it."""
    return LICENSES.get(name, otherwise)


def data_for_model(model_id: str) -> str | None:
    """The named set a model id (or model file) was trained on by its name: faces64 -> faces; else None."""
    return next((d for d in DATASETS if Path(model_id).stem.startswith(d)), None)


def dataset_shape(name: str) -> tuple[int, int]:
    """(resolution, channels) of a named set; folders default to 64x64 grayscale."""
    return DATASETS.get(name, (64, 1))


def load_dataset(name: str, *, split: str = "train", size: int | None = None,
                 channels: int | None = None) -> ImageSet:
    """``faces`` | ``fashion`` | ``textures`` | a folder path -> uint8 images [N, C, H, W] + labels,
    at `size` and `channels` when given (default: the set's own, `dataset_shape`).

    See the module docstring for sources, splits and labels.
    """
    res, ch = dataset_shape(name)
    size, channels = size or res, channels or ch
    if name == "faces":
        return load_folder(FACES_DIR, split=split, size=size, channels=channels)
    if name == "fashion":
        s = load_fashion(FASHION_DIR, split=split)
    elif name == "textures":
        s = load_textures(TEXTURES_PK3, split=split, size=size)
    else:
        return load_folder(name, split=split, size=size, channels=channels)
    s.images = conform(s.images, size, channels)
    return s


# -- streams for training --------------------------------------------------------------------

class TensorStream:
    """Endless shuffled batches from a fixed uint8 set [N, C, R, R], with optional mirroring.

    Every rank walks the same seeded permutation; rank r takes the r-th slice of each global
    batch, so replicas never read the same image in one step. State: (epoch, position).
    """

    def __init__(self, images: torch.Tensor, *, seed: int = 0, mirror: bool = False, rank: int = 0,
                 world_size: int = 1):
        if images.dim() != 4 or len(images) == 0:
            raise ValueError(f"expected uint8 images [N, C, H, W] with N > 0, got {list(images.shape)}")
        self.images, self.seed, self.mirror = images, seed, mirror
        self.rank, self.world_size = rank, world_size
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.images), generator=g)

    def _take(self, n: int) -> torch.Tensor:
        out = []
        while n > 0:
            k = min(n, len(self._perm) - self.pos)
            out.append(self._perm[self.pos:self.pos + k])
            self.pos += k
            n -= k
            if self.pos == len(self._perm):
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        return torch.cat(out)

    def batch(self, n: int) -> torch.Tensor:
        """This rank's share [n, C, R, R] of a global batch of n * world_size, float in [-1, 1]."""
        idx = self._take(n * self.world_size)[self.rank * n:(self.rank + 1) * n]
        x = to_float(self.images[idx])
        if self.mirror:
            flip = (idx * 2654435761 + self.epoch) % 2 == 1  # deterministic per image and epoch
            x[flip] = x[flip].flip(-1)
        return x

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)


class CropStream:
    """Endless batches of random crops from variable-size sources (textures)."""

    def __init__(self, sources: list[torch.Tensor], *, size: int = 64, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        if not sources:
            raise ValueError("no texture sources")
        self.sources, self.size = sources, size
        self.channels = sources[0].shape[0]
        self.resolution = size
        self.gen = torch.Generator().manual_seed(seed * 7919 + rank)

    def batch(self, n: int) -> torch.Tensor:
        return to_float(random_crops(self.sources, n, self.size, self.gen)[0])

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])


def make_stream(name: str, *, split: str = "train", seed: int = 0, rank: int = 0, world_size: int = 1,
                size: int | None = None, channels: int | None = None) -> TensorStream | CropStream:
    """The training stream for ``faces`` | ``fashion`` | ``textures`` | FOLDER (see module doc)."""
    res, ch = dataset_shape(name)
    if name == "textures":
        src = load_texture_sources(TEXTURES_PK3, split=split, min_size=size or res)
        return CropStream(src.images, size=size or res, seed=seed, rank=rank, world_size=world_size)
    data = load_dataset(name, split=split, size=size, channels=channels)
    # Faces are roughly symmetric: mirroring doubles the data; clothes and folders are not flipped.
    return TensorStream(data.images, seed=seed, mirror=name == "faces", rank=rank, world_size=world_size)
