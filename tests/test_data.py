"""Data sources: folders, Fashion-MNIST idx files, texture .pk3 zips, splits and streams.

Every input is built here in tmp_path; nothing needs the Debian data sets.
"""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio import data
from studio.data import (CropStream, TensorStream, in_split, load_fashion, load_folder, load_texture_sources,
                         load_textures)


def _png(path: Path, size: tuple[int, int], mode: str = "L", value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode in ("L", "I;16") else tuple([value] * len(mode))
    Image.new(mode, size, color).save(path)


def test_folder_mixed_sizes_modes_labels_and_bad_files(tmp_path: Path, capsys) -> None:
    root = tmp_path / "imgs"
    for i in range(30):
        _png(root / ("smiling" if i % 2 else "neutral") / f"{i}.png", (64, 64), "L", i * 8)
    _png(root / "neutral" / "wide.png", (100, 40), "RGB", 200)
    _png(root / "neutral" / "alpha.png", (20, 20), "RGBA", 50)
    _png(root / "loose.jpg", (64, 64), "L", 10)
    (root / "neutral" / "broken.jpg").write_bytes(b"not a jpeg at all")
    good = io.BytesIO()
    Image.new("L", (64, 64), 3).save(good, format="JPEG")
    (root / "smiling" / "truncated.jpg").write_bytes(good.getvalue()[:200])
    (root / "notes.txt").write_text("ignored")
    sets = {s: load_folder(root, split=s, size=32, channels=1) for s in ("train", "val", "all")}
    full = sets["all"]
    assert full.images.shape == (33, 1, 32, 32) and full.images.dtype == torch.uint8
    assert full.skipped == 2 and "skipped 2 unreadable" in capsys.readouterr().err
    assert set(full.labels) == {"smiling", "neutral", ""}
    assert len(sets["train"]) + len(sets["val"]) == len(full)
    assert not set(sets["train"].keys) & set(sets["val"].keys)
    rgb = load_folder(root, split="all", size=16, channels=3)
    assert rgb.images.shape[1:] == (3, 16, 16)
    assert full.float().min() >= -1 and full.float().max() <= 1


def test_folder_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such folder"):
        load_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no readable images"):
        load_folder(tmp_path / "bad", split="all")


def test_split_is_deterministic_and_about_ten_percent() -> None:
    keys = [f"f/{i}.jpg" for i in range(5000)]
    val = [k for k in keys if in_split(k, "val")]
    assert 400 < len(val) < 600
    assert val == [k for k in keys if in_split(k, "val")]
    assert not any(in_split(k, "train") for k in val)
    with pytest.raises(ValueError, match="split"):
        in_split("x", "test")


def _idx(path: Path, arr: np.ndarray, truncate: int = 0) -> None:
    raw = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    raw = raw[:len(raw) - truncate]
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def test_fashion_idx_files_padded_to_32(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (12, 28, 28)))
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(12) % 10)
    _idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (5, 28, 28)))
    _idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(5))
    train, val = load_fashion(tmp_path, split="train"), load_fashion(tmp_path, split="val")
    assert train.images.shape == (12, 1, 32, 32) and val.images.shape == (5, 1, 32, 32)
    assert train.images[:, :, :2].sum() == 0 and train.labels[:3] == ["T-shirt/top", "Trouser", "Pullover"]
    _idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (5, 28, 28)), truncate=10)
    with pytest.raises(ValueError, match="truncated"):
        load_fashion(tmp_path, split="val")
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        load_fashion(tmp_path / "nowhere")


def test_textures_from_a_pk3(tmp_path: Path) -> None:
    pk3 = tmp_path / "tex.pk3"
    with zipfile.ZipFile(pk3, "w") as zf:
        for i in range(12):
            buf = io.BytesIO()
            img = Image.fromarray(np.random.default_rng(i).integers(0, 255, (256, 192, 3), dtype=np.uint8))
            img.save(buf, format="TGA" if i % 3 == 0 else "JPEG")
            zf.writestr(f"textures/set/t{i}.{'tga' if i % 3 == 0 else 'jpg'}", buf.getvalue())
        small = io.BytesIO()
        Image.new("RGB", (64, 64)).save(small, format="JPEG")
        zf.writestr("textures/set/icon.jpg", small.getvalue())  # 32x32 after downscale: left out
        zf.writestr("textures/set/broken.jpg", b"nope")
    src = load_texture_sources(pk3, split="all")
    assert len(src) == 12 and src.skipped == 1
    assert src.images[0].shape == (3, 128, 96)  # downscaled by 2
    crops = load_textures(pk3, split="all", size=64)
    assert crops.images.shape == (48, 3, 64, 64) and len(set(crops.labels)) == 12
    again = load_textures(pk3, split="all", size=64)
    assert torch.equal(crops.images, again.images)
    stream = CropStream(src.images, size=64, seed=3)
    first = stream.batch(4)
    state = stream.state_dict()
    nxt = stream.batch(4)
    stream.load_state_dict(state)
    assert torch.equal(stream.batch(4), nxt) and first.shape == (4, 3, 64, 64)
    with pytest.raises(ValueError, match="openarena"):
        load_texture_sources(tmp_path / "none.pk3")


def test_tensor_stream_resumes_and_ranks_are_disjoint() -> None:
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 1, 2, 2).contiguous()
    s = TensorStream(images, seed=1)
    seen = torch.cat([s.batch(6) for _ in range(3)])  # crosses an epoch boundary
    assert seen.shape == (18, 1, 2, 2)
    state = s.state_dict()
    nxt = s.batch(6)
    s.load_state_dict(state)
    assert torch.equal(s.batch(6), nxt)
    r0, r1 = TensorStream(images, seed=1, rank=0, world_size=2), TensorStream(images, seed=1, rank=1, world_size=2)
    a, b = r0.batch(5), r1.batch(5)
    ids = lambda x: set(((x[:, 0, 0, 0] + 1) * 127.5).round().int().tolist())  # noqa: E731
    assert len(ids(a) | ids(b)) == 10


def test_data_for_model_reads_the_set_from_the_model_id() -> None:
    assert [data.data_for_model(m) for m in ("faces64", "assets/fashion32.safetensors", "textures64", "celeba")] \
        == ["faces", "fashion", "textures", None]


def test_conform_converts_like_a_folder_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    assert data.conform(rgb, 32, 3) is rgb  # already that shape
    for i, im in enumerate(rgb):
        Image.fromarray(im.permute(1, 2, 0).numpy(), "RGB").save(tmp_path / f"{i}.png")
    grey = data.conform(rgb, 16, 1)
    assert grey.shape == (2, 1, 16, 16) and grey.dtype == torch.uint8
    torch.testing.assert_close(grey, load_folder(tmp_path, split="all", size=16, channels=1).images)
    back = data.conform(grey, 16, 3)
    assert back.shape == (2, 3, 16, 16) and torch.equal(back[:, 0], back[:, 2])  # grey in three channels


def test_load_dataset_routes_folders(tmp_path: Path) -> None:
    for i in range(12):
        _png(tmp_path / "a" / f"{i}.png", (40, 40), "L", i)
    ds = data.load_dataset(str(tmp_path), split="all", size=32)
    assert ds.images.shape == (12, 1, 32, 32)
    stream = data.make_stream(str(tmp_path), split="all", size=32)
    assert stream.batch(3).shape == (3, 1, 32, 32)
