"""Browse: pages of generations from a seed, variations around a pick, slerp strips between two picks.

Callbacks are plain functions of (ctx, state, inputs) that return display values; `build` lays out
the tab and `wire` connects events once every tab exists. All of them are cheap (`context.FAST`).
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import torch

from studio.app import explore
from studio.app.context import Ctx, FAST, friendly
from studio.app.keep import export_node
from studio.app.render import describe, fresh_gallery, single, tiles
from studio.app.state import UserState, View
from studio.gif import save_gif

GRID_SIZES = (9, 16)
N_VARIATIONS = 8


def truncation_value(t: float | None) -> float | None:
    return float(t) if t else None  # the slider's 0 means "off"


def generate(ctx: Ctx, st: UserState, seed: float, page: float, n: float, truncation: float | None):
    """A page of `n` generations: seeds seed + page*n ... -> gallery items."""
    n = int(n)
    if n not in GRID_SIZES:
        raise ValueError(f"grid size must be one of {GRID_SIZES}, got {n}")
    t = truncation_value(truncation)
    seeds = explore.page_seeds(int(seed), int(page), n)
    model = ctx.model(st.session.model)
    z = model.latents_for_seeds(seeds, truncation=t)
    st.grid = View(z=z, kind="seed", infos=[{"seed": s, "truncation": t} for s in seeds])
    st.session.settings.update(seed=int(seed), page=int(page), grid=n, truncation=t)
    return tiles(ctx.render_page(st.session.model, z), [describe("seed", i) for i in st.grid.infos])


def select(ctx: Ctx, st: UserState, source: str, index: float):
    """Make tile `index` of the grid, the variations or the strip the current point -> its node."""
    views = {"grid": st.grid, "variations": st.variations, "strip": st.strip}
    if source not in views:
        raise ValueError(f"unknown source {source!r}; expected one of {sorted(views)}")
    view = views[source]
    z, info = view.pick(int(index))
    s = st.session
    current = s.nodes.get(s.current) if s.current is not None else None
    if current is not None and torch.equal(current.latent(), z):
        return current  # clicking the selected image again changes nothing
    parent = view.parent if source != "grid" else None
    node = s.add(z, kind=view.kind, parent=parent, info=info, select=True)
    st.variation_seed = 0
    return node


def vary(ctx: Ctx, st: UserState, strength: float, *, reshuffle: bool = False):
    """Variations around the current point -> gallery items (empty when nothing is selected)."""
    s = st.session
    if s.current is None:
        st.variations = View(kind="variation")
        return []
    if reshuffle:
        st.variation_seed += 1
    seed = s.current * 1000 + st.variation_seed  # visible in each variation's info
    z = explore.variations(s.node(s.current).latent(), n=N_VARIATIONS, strength=float(strength), seed=seed)
    st.variations = View(z=z, kind="variation", parent=s.current,
                         infos=[{"strength": float(strength), "seed": seed, "index": i} for i in range(len(z))])
    return tiles(ctx.render_page(s.model, z))


def selected_panel(ctx: Ctx, st: UserState):
    """(image, description, export file) of the current point."""
    s = st.session
    if s.current is None:
        return None, "Click an image to select it.", None
    node = s.node(s.current)
    image = single(ctx.render_node(s.model, node))
    text = f"**{describe(node.kind, node.info, node.id)}** · model `{s.model}`"
    if node.parent is not None:
        text += f" · from {describe(s.node(node.parent).kind, s.node(node.parent).info, node.parent)}"
    return image, text, str(export_node(ctx, st, node.id))


def set_end(ctx: Ctx, st: UserState, which: int):
    if st.session.current is None:
        raise ValueError("select an image first, then set it as an end of the interpolation")
    st.ends[which] = st.session.current
    return [single(ctx.render_node(st.session.model, st.session.node(i))) if i is not None else None
            for i in st.ends]


def interpolate(ctx: Ctx, st: UserState, steps: float):
    """The slerp strip from A to B -> gallery items."""
    a, b = st.ends
    if a is None or b is None:
        raise ValueError("set both ends first: select an image and press 'Set as A', then another for B")
    s = st.session
    z = explore.interpolation(s.node(a).latent(), s.node(b).latent(), steps=int(steps))
    ts = torch.linspace(0, 1, len(z)).tolist()
    st.strip = View(z=z, kind="interpolation", parent=a, infos=[{"from": a, "to": b, "t": round(t, 4)} for t in ts])
    return tiles(ctx.render_page(s.model, z), [f"{t:.2f}" for t in ts])


def interpolation_gif(ctx: Ctx, st: UserState) -> str:
    if st.strip.z is None:
        raise ValueError("make an interpolation strip first")
    frames = ctx.render(st.session.model, explore.interpolation(st.strip.z[0], st.strip.z[-1], steps=24))
    return str(save_gif(frames, ctx.scratch("interpolation.gif"), boomerang=True))


# -- layout and events ---------------------------------------------------------------------------

def build(ctx: Ctx) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row(elem_classes="toolbar"):
                ui.seed = gr.Number(0, label="Start seed", precision=0, minimum=0, min_width=110)
                ui.page = gr.Number(0, label="Page", precision=0, minimum=0, min_width=80)
                ui.n = gr.Radio(list(GRID_SIZES), value=9, label="Images", min_width=120)
                ui.truncation = gr.Slider(0, 2, value=0, step=0.1, min_width=200,
                                          label="Truncation ψ (0 = off; lower = more typical)")
            with gr.Row():
                ui.prev = gr.Button("◀ Previous", size="sm")
                ui.next = gr.Button("Next ▶", size="sm")
            ui.grid = gr.Gallery(label="Generations — click one", columns=3, allow_preview=False, format="png",
                                 object_fit="contain", elem_classes="tiles", elem_id="browse-grid",
                                 buttons=[], height="auto", interactive=False)
        with gr.Column(scale=2):
            ui.selected = gr.Image(label="Selected", format="png", interactive=False, height=300,
                                   elem_classes="big", elem_id="browse-selected", buttons=["download"])
            ui.info = gr.Markdown("Click an image to select it.", elem_id="browse-info")
            with gr.Row():
                ui.keep = gr.Button("☆ Keep", size="sm", elem_id="browse-keep")
                ui.export = gr.DownloadButton("Export PNG", size="sm", elem_id="browse-export")
                ui.compose = gr.Button("Compose from here →", size="sm", variant="primary")
            ui.strength = gr.Slider(0.05, 1.0, value=0.35, step=0.05, label="Variation strength")
            ui.variations = gr.Gallery(label="Variations — click one to walk there", columns=4,
                                       allow_preview=False, format="png", elem_classes="tiles small", fit_columns=False,
                                       elem_id="browse-variations", buttons=[], height="auto", interactive=False)
            ui.reshuffle = gr.Button("↻ Other variations", size="sm")
    with gr.Accordion("Interpolate between two picks (slerp)", open=True):
        with gr.Row(equal_height=False):
            ui.set_a = gr.Button("Set selected as A", size="sm")
            ui.set_b = gr.Button("Set selected as B", size="sm")
            ui.steps = gr.Slider(3, 16, value=8, step=1, label="Steps")
            ui.make_gif = gr.Button("Make GIF", size="sm")
        with gr.Row(equal_height=False):
            ui.end_a = gr.Image(label="A", format="png", interactive=False, height=120, min_width=120, scale=0,
                                elem_classes=["big", "end-image"], elem_id="browse-end-a", buttons=[])
            ui.strip = gr.Gallery(label="A → B", columns=8, allow_preview=False, format="png", scale=5,
                                  elem_classes="tiles small", fit_columns=False, elem_id="browse-strip", buttons=[], height="auto",
                                  interactive=False)
            ui.end_b = gr.Image(label="B", format="png", interactive=False, height=120, min_width=120, scale=0,
                                elem_classes=["big", "end-image"], elem_id="browse-end-b", buttons=[])
        ui.gif = gr.Image(label="Interpolation GIF", visible=False, format="gif", interactive=False, height=256)
    # API-only inputs: which gallery a programmatic selection refers to, and the tile index
    ui.api_source = gr.Textbox("grid", visible=False)
    ui.api_index = gr.Number(0, precision=0, visible=False)
    ui.api_select = gr.Button(visible=False)
    return ui


def wire(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    _wire_pages(ctx, ui, state)
    _wire_picks(ctx, ui, state)
    _wire_interpolation(ctx, ui, state)


def _wire_pages(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    @friendly
    def on_generate(st, seed, page, n, t):
        items = generate(ctx, st, seed, page, n, t)
        return st, fresh_gallery(items, columns=3 if int(n) == 9 else 4)

    def stepper(delta: int):
        @friendly
        def on_step(st, seed, page, n, t):
            page = max(0, int(page) + delta)
            return st, page, on_generate(st, seed, page, n, t)[1]
        return on_step

    page_inputs = [state, ui.seed, ui.page, ui.n, ui.truncation]
    ui.seed.submit(on_generate, page_inputs, [state, ui.grid], api_name="generate", **FAST)
    for trigger in (ui.n.change, ui.truncation.release, ui.page.submit):
        trigger(on_generate, page_inputs, [state, ui.grid], api_visibility="private", **FAST)
    ui.prev.click(stepper(-1), page_inputs, [state, ui.page, ui.grid], api_visibility="private", **FAST)
    ui.next.click(stepper(+1), page_inputs, [state, ui.page, ui.grid], api_visibility="private", **FAST)


def _wire_picks(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """A click on any gallery selects; the variations around the selection follow."""
    def after_select(st, strength):
        image, text, export = selected_panel(ctx, st)
        return st, image, text, export, fresh_gallery(vary(ctx, st, strength))

    def on_pick(source: str):
        @friendly
        def handler(st, strength, evt: gr.SelectData):
            select(ctx, st, source, evt.index)
            return after_select(st, strength)
        return handler

    @friendly
    def api_select(st, source, index, strength):
        select(ctx, st, source, index)
        return after_select(st, strength)

    @friendly
    def on_vary(st, strength):
        return st, fresh_gallery(vary(ctx, st, strength))

    @friendly
    def on_reshuffle(st, strength):
        return st, fresh_gallery(vary(ctx, st, strength, reshuffle=True))

    sel_out = [state, ui.selected, ui.info, ui.export, ui.variations]
    for source, gallery in (("grid", ui.grid), ("variations", ui.variations), ("strip", ui.strip)):
        gallery.select(on_pick(source), [state, ui.strength], sel_out, api_visibility="private", **FAST)
    ui.api_select.click(api_select, [state, ui.api_source, ui.api_index, ui.strength], sel_out,
                        api_name="select", **FAST)
    ui.strength.release(on_vary, [state, ui.strength], [state, ui.variations], api_name="variations", **FAST)
    ui.reshuffle.click(on_reshuffle, [state, ui.strength], [state, ui.variations], api_visibility="private", **FAST)


def _wire_interpolation(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    def end_setter(which: int):
        @friendly
        def on_set_end(st, steps):
            a, b = set_end(ctx, st, which)
            strip = interpolate(ctx, st, steps) if None not in st.ends else []
            return st, a, b, strip
        return on_set_end

    @friendly
    def on_interpolate(st, steps):
        return st, interpolate(ctx, st, steps)

    @friendly
    def on_gif(st):
        return gr.update(value=interpolation_gif(ctx, st), visible=True)

    ends = [state, ui.end_a, ui.end_b, ui.strip]
    ui.set_a.click(end_setter(0), [state, ui.steps], ends, api_visibility="private", **FAST)
    ui.set_b.click(end_setter(1), [state, ui.steps], ends, api_visibility="private", **FAST)
    ui.steps.release(on_interpolate, [state, ui.steps], [state, ui.strip], api_name="interpolate", **FAST)
    ui.make_gif.click(on_gif, [state], [ui.gif], api_name="interpolation_gif")
