"""The image edge: what users upload, and our PNG metadata."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from studio.imageio import (ImageError, grid, load_image, open_image, read_png_meta, save_png, to_pil,
                            to_uint8)


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_uint8_round_trip():
    x = torch.linspace(-1, 1, 2 * 3 * 4 * 4).view(2, 3, 4, 4)
    u = to_uint8(x)
    assert u.shape == (2, 4, 4, 3) and u.dtype == np.uint8 and u.min() == 0 and u.max() == 255
    back = load_image(to_pil(x[0]), channels=3, size=4)
    assert (back - x[:1]).abs().max() <= 1 / 127.5 + 1e-6


def test_grid_layout():
    g = grid(torch.zeros(5, 1, 8, 8), nrow=3, pad=2)
    assert g.size == (3 * 10 + 2, 2 * 10 + 2) and g.mode == "L"


@pytest.mark.parametrize("make", [
    lambda: Image.new("CMYK", (40, 30), (0, 128, 0, 0)),
    lambda: Image.fromarray(np.full((20, 20), 40000, np.uint16)),
    lambda: Image.new("P", (20, 20)),
    lambda: Image.new("RGBA", (20, 20), (255, 0, 0, 0)),
    lambda: Image.new("LA", (20, 20)),
    lambda: Image.new("1", (20, 20)),
    lambda: Image.fromarray(np.ones((9, 9), np.float32)),
], ids=["cmyk", "16bit", "palette", "rgba", "la", "bilevel", "float"])
@pytest.mark.parametrize("channels", [1, 3])
def test_any_mode_becomes_a_valid_tensor(make, channels):
    img = make()
    fmt = "TIFF" if img.mode in ("CMYK", "F") else "PNG"
    x = load_image(_png_bytes(img, fmt), channels=channels, size=16)
    assert x.shape == (1, channels, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_transparent_pixels_become_white():
    x = load_image(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), channels=3, size=8)
    assert torch.allclose(x, torch.ones_like(x))


def test_16bit_range_is_kept():
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    x = load_image(_png_bytes(Image.fromarray(arr)), channels=1, size=8)
    assert x.min() == -1 and x.max() == 1


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (8, 8), v) for v in (0, 255)]
    data = _png_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert load_image(data, channels=1, size=8).max() == -1


def test_non_square_is_center_cropped():
    arr = np.zeros((10, 30), np.uint8)
    arr[:, 10:20] = 255
    x = load_image(Image.fromarray(arr), channels=1, size=10)
    assert x.min() == 1


@pytest.mark.parametrize("data,message", [
    (b"not an image at all", "not an image"),
    (b"", "not an image"),
])
def test_garbage_is_a_clear_error(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data, channels=1, size=8)


def test_truncated_image_is_an_error():
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(data[: len(data) // 2], channels=3, size=8)


def test_decompression_bomb_is_refused():
    data = _png_bytes(Image.new("1", (10000, 10000)))  # tiny file, 100 megapixels
    with pytest.raises(ImageError, match="too large|too many pixels"):
        open_image(data)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        open_image(tmp_path)


def test_png_metadata_round_trip_and_foreign_pngs(tmp_path):
    meta = {"model": "faces64", "latent": [0.5, -1.0], "settings": {"truncation": None}}
    path = save_png(Image.new("L", (4, 4)), tmp_path / "a.png", meta)
    assert read_png_meta(path) == meta
    assert read_png_meta(save_png(Image.new("L", (4, 4)), tmp_path / "b.png")) is None
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("gan-studio", "{tampered")
    Image.new("L", (4, 4)).save(tmp_path / "c.png", pnginfo=info)
    with pytest.raises(ImageError, match="damaged"):
        read_png_meta(tmp_path / "c.png")
