"""The one edge where images leave or enter the code as files, PIL images or uint8 arrays.

Inside, an image batch is a float tensor [N, C, H, W] in [-1, 1].
"""
from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, PngImagePlugin, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # larger uploads are refused (decompression bombs)
META_KEY = "gan-studio"  # PNG text chunk holding our JSON metadata


class ImageError(ValueError):
    """An image that cannot be used; the message says why in one line."""


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]."""
    if images.dim() != 4:
        raise ValueError(f"expected [N, C, H, W], got {list(images.shape)}")
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def to_pil(image: torch.Tensor, *, size: int | None = None) -> Image.Image:
    """One image [C, H, W] (or [1, C, H, W]) -> PIL, optionally upscaled (nearest) to `size`."""
    if image.dim() == 4:
        image = image[0]
    arr = to_uint8(image[None])[0]
    pil = Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")
    if size and size != pil.width:
        pil = pil.resize((size, size), Image.NEAREST)
    return pil


def to_pils(images: torch.Tensor, *, size: int | None = None) -> list[Image.Image]:
    return [to_pil(im, size=size) for im in images]


def grid(images: torch.Tensor, *, nrow: int | None = None, pad: int = 2, scale: int = 1) -> Image.Image:
    """[N, C, H, W] -> one PIL grid image, `nrow` images per row (square-ish by default)."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / nrow))
    arr = to_uint8(images)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y:y + h, x:x + w] = arr[i]
    pil = Image.fromarray(canvas[:, :, 0], "L") if c == 1 else Image.fromarray(canvas, "RGB")
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    return pil


def image_format(source: str | Path | bytes) -> str | None:
    """The image format of a file or its bytes as Pillow names it ('PNG', 'JPEG', 'GIF', 'TIFF', ...),
    from its header alone, or None when it is no image Pillow knows."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return str(im.format) if im.format else None
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def open_image(source: str | Path | bytes | Image.Image) -> Image.Image:
    """Open and fully decode an image, with clear errors for what users actually upload."""
    if isinstance(source, Image.Image):
        img = source
    else:
        name = "image" if isinstance(source, bytes) else str(source)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"{name}: {img.width}x{img.height} is too large "
                                     f"(limit {MAX_PIXELS // 1_000_000} megapixels)")
                img.seek(0)  # animated: first frame
                img.load()
        except ImageError:
            raise
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a folder, not an image") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{name}: too many pixels (possible decompression bomb)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageError(f"{name}: truncated or corrupt image ({e})") from None
    return img


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any mode (CMYK, 16-bit, palette, alpha, ...) -> 'L' or 'RGB'; alpha composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray((arr / hi * 255).clip(0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = arr.min(), arr.max()
        img = Image.fromarray(((arr - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8), "L")
    if img.mode in ("P", "PA") or "A" in img.getbands() or img.mode == "LA":
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("L" if channels == 1 else "RGB")


def load_image(source: str | Path | bytes | Image.Image, *, channels: int, size: int) -> torch.Tensor:
    """A user's image -> [1, C, size, size] in [-1, 1]: centre-cropped square, area-resized."""
    img = to_mode(open_image(source), channels)
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    img = img.resize((size, size), Image.BOX if s >= size else Image.BICUBIC)
    return pil_to_tensor(img)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """'L' or 'RGB' PIL -> [1, C, H, W] in [-1, 1]."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1)[None].div(127.5).sub(1.0).contiguous()


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, size, size] (area when shrinking, bilinear when growing)."""
    if images.shape[-1] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    return F.interpolate(images, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def save_png(image: Image.Image, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """PNG with our metadata (latent, model id, settings) as a JSON text chunk."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    if meta is not None:
        info.add_text(META_KEY, json.dumps(meta, separators=(",", ":")))
    image.save(path, format="PNG", pnginfo=info)
    return path


def read_png_meta(source: str | Path | bytes | Image.Image) -> dict[str, Any] | None:
    """Our metadata from a PNG, or None if it has none (foreign PNGs are fine, just no metadata)."""
    img = open_image(source)
    raw = getattr(img, "text", {}).get(META_KEY) if hasattr(img, "text") else img.info.get(META_KEY)
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ImageError("the image's studio metadata is damaged (not valid JSON)") from None
    if not isinstance(meta, dict):
        raise ImageError("the image's studio metadata is not a JSON object")
    return meta


ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated files are errors, never half-grey images
