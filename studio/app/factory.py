"""`create_app(catalog)`: the studio's Blocks, built from the tab modules; no model is loaded here.

Every event goes through the queue (only queued events show their messages, see `context.FAST`);
cheap ones (a page, a pick, a compose round) without a concurrency limit, searches and GIFs with a
small one and a bounded queue, so one user's search cannot starve the others' clicks. State lives
in one `gr.State` per browser tab.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from studio.app import browse, compose, inspire, keep
from studio.app.context import Ctx, FAST, Limits, friendly
from studio.app.render import card_markdown, fresh_gallery, model_choices, samples_path
from studio.app.state import UserState
from studio.app.theme import PIXELATED_JS, goto_tab
from studio.catalog import Catalog

CACHE_CLEANUP = (3600, 3 * 3600)  # every hour, delete served image files older than 3 hours
STATE_TTL_S = 6 * 3600  # a tab's state is dropped after this long without use (and when it closes)
INTRO = ("# GAN studio\nBrowse generations, find the one closest to a picture, or compose one by picking "
         "the best of each round. Every image is reproducible from its latent.")


def create_app(catalog: Catalog, *, limits: Limits | None = None) -> gr.Blocks:
    """The studio UI for the generators in `catalog` (models load on first use)."""
    ctx = Ctx(catalog=catalog, limits=limits or Limits())
    models = catalog.ids("generator")
    if not models:
        raise ValueError(f"no generator in the catalog {catalog.path}: add one to start the studio")
    default = catalog.default_generator()

    with gr.Blocks(title="GAN studio", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        state = gr.State(UserState.new(default), time_to_live=STATE_TTL_S)  # deep-copied per browser tab
        head = _header(ctx, default)
        with gr.Tabs(selected="browse", elem_id="tabs") as tabs:
            with gr.Tab("Browse", id="browse", elem_id="tab-browse"):
                b = browse.build(ctx)
            with gr.Tab("Inspire", id="inspire", elem_id="tab-inspire"):
                i = inspire.build(ctx)
            with gr.Tab("Compose", id="compose", elem_id="tab-compose"):
                c = compose.build(ctx)
            with gr.Tab("Keep & share", id="keep", elem_id="tab-keep"):
                k = keep.build(ctx)
        ui = SimpleNamespace(head=head, browse=b, inspire=i, compose=c, keep=k, tabs=tabs)
        browse.wire(ctx, b, state)
        inspire.wire(ctx, i, state)
        compose.wire(ctx, c, state, ui)
        _wire_shared(demo, ctx, ui, state)
    demo.queue(default_concurrency_limit=ctx.limits.searches_at_once, max_size=ctx.limits.queue_size)
    demo.studio_ctx, demo.studio_ui = ctx, ui  # for tests and benchmarks
    return demo


def _header(ctx: Ctx, default: str) -> SimpleNamespace:
    h = SimpleNamespace()
    with gr.Row(elem_id="studio-header", equal_height=False):
        gr.Markdown(INTRO, elem_id="studio-title")
        h.model = gr.Dropdown(model_choices(ctx.catalog), value=default, label="Model", scale=0, min_width=340,
                              elem_id="model-picker", interactive=True)
        h.pixelated = gr.Checkbox(False, label="Sharp pixels", scale=0, min_width=140, elem_id="pixelated")
    # how this model's pages are drawn here (previews of a large model); filled on load, no model loads here
    h.display = gr.Markdown("", elem_id="display-note")
    with gr.Accordion("About this model", open=False, elem_id="model-card"):
        with gr.Row(equal_height=False):
            h.card = gr.Markdown(card_markdown(ctx.catalog, default))
            h.samples = gr.Image(samples_path(ctx.catalog, default), label="Samples", interactive=False,
                                 height=260, buttons=[], show_label=True, elem_classes="big")
    return h


def refresh_outputs(ui: SimpleNamespace) -> list:
    """Every display that depends on the whole session (after a model switch or a session load)."""
    b, k, h = ui.browse, ui.keep, ui.head
    return [h.model, h.card, h.samples, h.display, b.seed, b.page, b.n, b.truncation, b.grid, b.selected, b.info, b.export,
            b.variations, b.end_a, b.end_b, b.strip, k.kept] + compose.refresh_outputs(ui.compose) \
        + inspire.refresh_outputs(ui.inspire)


def refresh_values(ctx: Ctx, st: UserState) -> list:
    s = st.session
    settings = s.settings
    seed, page = int(settings.get("seed", 0)), int(settings.get("page", 0))
    n, t = int(settings.get("grid", 9)), settings.get("truncation") or 0
    grid = fresh_gallery(browse.generate(ctx, st, seed, page, n, t), columns=3 if n == 9 else 4)
    image, text, export = browse.selected_panel(ctx, st)
    variations = fresh_gallery(browse.vary(ctx, st, settings.get("strength", 0.35)))
    return [s.model, card_markdown(ctx.catalog, s.model), samples_path(ctx.catalog, s.model),
            ctx.display(s.model).note(), seed, page, n, t,
            grid, image, text, export, variations, None, None, [],
            keep.kept_items(ctx, st)] + compose.refresh_values(ctx, st) + inspire.refresh_values(ctx, st)


def _wire_shared(demo: gr.Blocks, ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """Events that reach across tabs: the page load, the model picker, Keep in every tab, Keep & share."""
    _wire_model(demo, ctx, ui, state)
    _wire_keep_buttons(ctx, ui, state)
    _wire_kept(ctx, ui, state)
    _wire_files(ctx, ui, state)


def _wire_model(demo: gr.Blocks, ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    @friendly
    def on_load(st):
        return [st] + refresh_values(ctx, st)

    @friendly
    def on_model(st, model_id):
        if model_id != st.session.model:
            ctx.catalog.get(model_id)
            if st.search is not None:
                st.search.cancel()
            st.reset_model(model_id)
        return [st] + refresh_values(ctx, st)

    h = ui.head
    everything = [state] + refresh_outputs(ui)
    demo.load(on_load, [state], everything, api_visibility="private", **FAST)
    h.model.input(on_model, [state, h.model], everything, api_name="set_model", **FAST)
    h.pixelated.change(None, [h.pixelated], None, js=PIXELATED_JS, api_visibility="private", **FAST)


def _wire_keep_buttons(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    def keeper(where: str):
        @friendly
        def on_keep(st):
            keep.keep_current(ctx, st, where)
            gr.Info("Kept — see the Keep & share tab")
            return st, keep.kept_items(ctx, st)
        return on_keep

    kept = ui.keep.kept
    ui.browse.keep.click(keeper("browse"), [state], [state, kept], api_name="keep", **FAST)
    ui.compose.keep.click(keeper("compose"), [state], [state, kept], api_visibility="private", **FAST)
    ui.inspire.keep.click(keeper("inspire"), [state], [state, kept], api_visibility="private", **FAST)


def _wire_kept(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """The gallery of kept images: select one, then export, remove or continue from it."""
    @friendly
    def on_kept_select(st, evt: gr.SelectData):
        st.kept_index = int(evt.index)
        return st, str(keep.export_kept(ctx, st, st.kept_index))

    @friendly
    def on_kept_remove(st):
        keep.remove_kept(st, st.kept_index)
        return st, keep.kept_items(ctx, st), None

    @friendly
    def on_kept_continue(st):
        message = keep.continue_from_kept(ctx, st, st.kept_index)
        return [st, message] + refresh_values(ctx, st)

    k = ui.keep
    k.kept.select(on_kept_select, [state], [state, k.kept_export], api_visibility="private", **FAST)
    k.kept_remove.click(on_kept_remove, [state], [state, k.kept, k.kept_export], api_visibility="private", **FAST)
    moved = [state, k.open_msg] + refresh_outputs(ui)
    goto_tab(k.kept_continue.click(on_kept_continue, [state], moved, api_visibility="private", **FAST), "browse")


def _wire_files(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """A dropped studio PNG or session file, and saving the session."""
    @friendly
    def on_open(st, path):
        message = keep.open_file(ctx, st, path)
        return [st, message] + refresh_values(ctx, st)

    @friendly
    def on_save(st):
        return gr.update(value=str(keep.save_session(ctx, st)), visible=True)

    k = ui.keep
    moved = [state, k.open_msg] + refresh_outputs(ui)
    opened = k.open.upload(on_open, [state, k.open], moved, api_name="open_file", concurrency_limit=4,
                           concurrency_id="uploads", show_progress="hidden")
    goto_tab(opened, "browse")
    # the box empties either way, ready for the next file (the message says what became of this one);
    # .then does not follow a failed event in Gradio 6.31 (measured), so .success and .failure
    for after in (opened.success, opened.failure):
        after(_empty, None, [k.open], api_visibility="private", **FAST)
    k.save.click(on_save, [state], [k.session_file], api_name="save_session", **FAST)


def _empty():
    return None  # an empty upload box
