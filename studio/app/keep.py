"""Keep and share: the gallery of kept images, PNG export/import with metadata, session files."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import torch

from studio.app import compose
from studio.app.context import Ctx
from studio.app.render import describe, single, tiles
from studio.app.state import UserState
from studio.imageio import ImageError, image_format, read_png_meta, save_png
from studio.session import Kept, Session, SessionError, image_meta, parse_image_meta

EXPORT_SIZE = 256  # exported PNGs are upscaled (bicubic) to at least this many pixels


def export_png(ctx: Ctx, model_id: str, node_like, *, settings: dict | None = None, name: str = "") -> Path:
    """A PNG of one latent point that carries its latent, model id and settings in its metadata."""
    image = single(ctx.render(model_id, node_like.latent()[None]), size=EXPORT_SIZE)
    meta = image_meta(model_id, node_like, settings=settings)
    return save_png(image, ctx.scratch(name or f"{model_id}-{node_like.kind}.png"), meta)


def export_node(ctx: Ctx, st: UserState, node_id: int) -> Path:
    s = st.session
    node = s.node(node_id)
    tag = f"seed{node.info['seed']}" if node.kind == "seed" and "seed" in node.info else f"{node.kind}{node.id}"
    return export_png(ctx, s.model, node, settings=s.settings, name=f"{s.model}-{tag}.png")


def kept_items(ctx: Ctx, st: UserState):
    """The kept gallery: every kept image rendered with its own model, in order."""
    kept = st.session.kept
    if not kept:
        return []
    images: list[torch.Tensor | None] = [None] * len(kept)
    for model_id in {k.model for k in kept}:
        idx = [i for i, k in enumerate(kept) if k.model == model_id]
        out = ctx.render_page(model_id, torch.stack([kept[i].latent() for i in idx]))
        for j, i in enumerate(idx):
            images[i] = out[j]
    shown = []
    for i, (k, im) in enumerate(zip(kept, images)):
        shown.extend(tiles(im[None], [f"{i + 1}. {k.label}"]))
    return shown


def keep_current(ctx: Ctx, st: UserState, where: str = "browse") -> Kept:
    """Keep the Browse selection, the composite so far, or the last inspiration result."""
    node_id = {"browse": st.session.current, "compose": st.compose_best(), "inspire": st.inspired}[where]
    if node_id is None:
        raise ValueError({"browse": "select an image first", "compose": "start a composite first",
                          "inspire": "run an inspiration search first"}[where])
    node = st.session.node(node_id)
    return st.session.keep(node_id, label=describe(node.kind, node.info))


def export_kept(ctx: Ctx, st: UserState, index: int) -> Path:
    k = _kept(st, index)
    node = SimpleNamespace(z=k.z, kind=k.info.get("kind", "seed"), info=k.info, latent=k.latent)
    return export_png(ctx, k.model, node, name=f"{k.model}-kept-{index + 1}.png")


def remove_kept(st: UserState, index: int) -> None:
    _kept(st, index)
    del st.session.kept[index]
    st.kept_index = None


def continue_from_kept(ctx: Ctx, st: UserState, index: int) -> str:
    """Make a kept image the current point (switching model if it was made with another)."""
    k = _kept(st, index)
    switched = _switch(st, k.model)
    st.session.add(k.z, kind="upload", info={"label": k.label}, select=True)
    return f"Continuing from kept image {index + 1}" + (f" (switched to model `{k.model}`)" if switched else "")


def save_session(ctx: Ctx, st: UserState) -> Path:
    compose.snapshot(st)
    return st.session.save(ctx.scratch(f"session-{st.session.model}.json"))


def open_file(ctx: Ctx, st: UserState, path: str | None) -> str:
    """A dropped studio PNG (continue from its latent) or session .json (restore it) -> a message."""
    if not path:
        raise ValueError("no file received")
    p = Path(path)
    kind = sniff(p)  # what the bytes are, whatever the name says
    if kind == "json":
        return _open_session(ctx, st, p)
    if kind != "PNG":
        raise ValueError(_not_studio_file(p, kind))
    try:
        meta = read_png_meta(p)
    except ImageError as e:
        raise ImageError(f"{p.name}: {str(e).split(': ', 1)[-1]}") from None
    model, z, rest = parse_image_meta(meta, latent_dims=ctx.latent_dims())
    switched = _switch(st, model)
    kind = rest.get("kind") if rest.get("kind") in ("seed", "variation", "interpolation", "inspire", "compose") \
        else "upload"
    info = rest.get("info") if isinstance(rest.get("info"), dict) else {}
    node = st.session.add(z, kind="upload", info={"file": p.name, "made_as": kind, **_small(info)}, select=True)
    return (f"Continuing from **{p.name}** ({describe(kind, info)} of model `{model}`)"
            + (" — switched model" if switched else "") + f"; it is node #{node.id}, selected in Browse.")


EXPECTED = "drop a PNG exported by the studio (it carries the latent) or a session .json saved here"


def sniff(p: Path) -> str:
    """'json', an image format as Pillow names it ('PNG', 'JPEG', 'GIF', 'TIFF', ...), or 'other'."""
    head = p.read_bytes()[:64] if p.is_file() else b""
    if head.lstrip().startswith((b"{", b"\xef\xbb\xbf{")):
        return "json"
    return image_format(p) or "other"


def _not_studio_file(p: Path, kind: str) -> str:
    """One line for a dropped file that is neither a PNG nor a session: what it is, what is expected."""
    if kind == "other" and p.suffix.lower() == ".json":
        return f"{p.name} is not a session file (its content is not JSON); {EXPECTED}."
    if kind == "other":
        return f"{p.name}: not an image file, nor a session .json; {EXPECTED}."
    return f"{p.name} is a {kind} image: {EXPECTED} (to find a similar generation, use the picture in Inspire)."


def _open_session(ctx: Ctx, st: UserState, p: Path) -> str:
    session = Session.load(p, latent_dims=ctx.latent_dims())
    restored = compose.restored_search(ctx, session)  # may refuse the file: change nothing before
    if st.search is not None:
        st.search.cancel()
    st.reset_model(session.model)
    st.session = session
    compose.attach(st, restored)
    return (f"Restored session **{p.name}**: model `{session.model}`, {len(session.nodes)} points, "
            f"{len(session.rounds)} compose rounds, {len(session.kept)} kept images.")


def _switch(st: UserState, model: str) -> bool:
    if model == st.session.model:
        return False
    if st.search is not None:
        st.search.cancel()
    st.reset_model(model)
    return True


def _kept(st: UserState, index: int | None) -> Kept:
    if index is None or not 0 <= int(index) < len(st.session.kept):
        raise IndexError("select a kept image first")
    return st.session.kept[int(index)]


def _small(info: dict) -> dict:
    """Foreign metadata is kept only as short scalars (it is shown, never trusted)."""
    return {str(k)[:40]: v for k, v in list(info.items())[:20]
            if isinstance(v, (int, float, str, bool)) and len(str(v)) < 200}


# -- layout --------------------------------------------------------------------------------------

def build(ctx: Ctx) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.kept = gr.Gallery(label="Kept images — click one", columns=6, allow_preview=False, format="png",
                                 elem_classes="tiles small", fit_columns=False, elem_id="kept-gallery", buttons=[], height="auto",
                                 interactive=False)
            with gr.Row():
                ui.kept_export = gr.DownloadButton("Export selected PNG", size="sm", elem_id="kept-export")
                ui.kept_continue = gr.Button("Continue from selected", size="sm")
                ui.kept_remove = gr.Button("Remove selected", size="sm", variant="stop")
        with gr.Column(scale=2):
            ui.open = gr.File(label="Drop a studio PNG (continues from it) or a session .json (restores it)",
                              file_count="single", type="filepath", elem_id="open-file", height=140)
            ui.open_msg = gr.Markdown(elem_id="open-msg")
            ui.save = gr.Button("Save session (.json)", size="sm", elem_id="save-session")
            ui.session_file = gr.File(label="Session file", visible=False, interactive=False, elem_id="session-file")
    return ui
