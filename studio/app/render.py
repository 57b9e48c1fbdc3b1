"""Tensors and catalog entries -> what Gradio components display (PIL tiles, markdown).

Tiles go out at the model's own resolution as PNG: encoding upscaled PNGs costs tens of ms per
round on 2 cores, so the browser upscales them (CSS in `theme.py`, smooth or pixelated).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from PIL import Image

from studio.catalog import Catalog, Entry
from studio.imageio import to_pil, to_pils


def tiles(images: torch.Tensor, captions: list[str] | None = None) -> list[tuple[Image.Image, str | None]]:
    """[N, C, H, W] -> gallery items (image, caption)."""
    pils = to_pils(images)
    caps = captions or [None] * len(pils)
    return list(zip(pils, caps))


def fresh_gallery(items: list, **kw) -> gr.Gallery:
    """A gallery's new images with no tile highlighted: Gradio keeps the last click's highlight on
    whatever lands at that position (another page, a new set of variations, another model).

    Not gr.update(selected_index=None): Gradio drops None-valued props from an update
    (gradio.utils.delete_none), so the highlight would stay. A Gallery returned from a handler is
    sent with its constructor's arguments as given; it is built without its images (a value given
    to the constructor would be encoded to PNG there and again when sent: 45 ms for 9 tiles at
    64 px, 225 ms at 256 px) and they are set on those arguments instead.
    """
    gallery = gr.Gallery(selected_index=None, **kw)
    gallery.constructor_args["value"] = items
    return gallery


def single(image: torch.Tensor, *, size: int | None = None) -> Image.Image:
    """[1, C, H, W] or [C, H, W] -> one PIL image; `size` upscales with bicubic (for exports)."""
    pil = to_pil(image)
    if size and size > pil.width:
        pil = pil.resize((size, size), Image.BICUBIC)
    return pil


def model_choices(catalog: Catalog) -> list[tuple[str, str]]:
    """(label, id) pairs for the model picker: the catalog title (it names size and colour)."""
    return [(catalog.get(i).title or i, i) for i in catalog.ids("generator")]


def card_markdown(catalog: Catalog, model_id: str) -> str:
    """The model card: its markdown file when there is one, plus data, license and metrics."""
    e: Entry = catalog.get(model_id)
    lines = [f"### {e.title or e.id}"]
    facts = [("id", f"`{e.id}`"), ("data", e.data), ("license", e.license),
             ("resolution", f"{e.resolution} px" if e.resolution else ""),
             ("channels", {1: "grayscale", 3: "RGB"}.get(e.channels or 0, "")),
             ("latent size", str(e.latent_dim) if e.latent_dim else ""), ("status", e.status)]
    lines += [f"- **{k}**: {v}" for k, v in facts if v]
    if e.metrics:
        lines.append("\n| metric | value |\n|---|---|")
        lines += [f"| {k} | {_fmt(v)} |" for k, v in e.metrics.items()]
    if e.card:
        path = catalog.root / e.card
        if path.is_file():
            lines.append("\n" + local_links(path.read_text()[:20_000], path.parent, catalog.root))
    return "\n".join(lines)


_IMAGE = re.compile(r"!\[[^\]]*\]\((?![a-z]+://)[^)]*\)\n?")  # ![alt](relative file)
_LINK = re.compile(r"\[([^\]]*)\]\((?![a-z]+://|#)([^)]*)\)")  # [text](relative file)


def local_links(card: str, folder: Path, root: Path) -> str:
    """A card's markdown without links to the files beside it, which the browser cannot fetch (a
    404 in the page): its sample grid is shown next to the card, other files are named instead."""
    def name(m: re.Match) -> str:
        target = (folder / m.group(2)).resolve()
        shown = f"`{root.name}/{target.relative_to(root.resolve())}`" if target.is_relative_to(root.resolve()) \
            else f"`{Path(m.group(2)).name}`"
        return shown if m.group(1) == target.name else f"{m.group(1)} ({shown})"
    return _LINK.sub(name, _IMAGE.sub("", card))


def samples_path(catalog: Catalog, model_id: str) -> str | None:
    e = catalog.get(model_id)
    if e.samples and (catalog.root / e.samples).is_file():
        return str(catalog.root / e.samples)
    return None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def describe(kind: str, info: dict[str, Any], node_id: int | None = None) -> str:
    """A short human label for a latent point, e.g. 'seed 12 (ψ 0.7)'."""
    if kind == "seed":
        t = info.get("truncation")
        return f"seed {info.get('seed')}" + (f" (ψ {t:g})" if t else "")
    label = {"variation": "variation", "interpolation": "blend", "inspire": "inspired",
             "compose": "composite", "upload": "from PNG", "random": "random"}.get(kind, kind)
    if kind == "compose" and "round" in info:
        label += f", round {info['round'] + 1}"
    return label + (f" #{node_id}" if node_id is not None else "")
