"""Compose by preference: k candidates a round, the user picks (or ranks), the next round follows.

The preference search (`optimizers.PreferenceSearch`) proposes; the session records every round
(candidates as nodes under the previous choice, and the choice), so the lineage strip, undo and
branching from an earlier round are views of that tree. A round is cheap: one batch of k
generations and k small PNGs, no concurrency limit; except with bayes-image, whose proposals are inversions
(seconds of CPU), so those rounds are computed one at a time (`Ctx.heavy_round`). The lineage
goes out as one strip image (a click maps its x to a round): Gradio checks and caches every file
of a response, ~2 ms each on 2 cores, so 24 thumbnails as gallery items cost more than the
round's generations.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import torch
from PIL import Image

from optimizers import PreferenceSearch, resolve_optimizer
from studio.app.context import Ctx, FAST, friendly
from studio.app.render import fresh_gallery, single, tiles
from studio.app.state import UserState, View
from studio.app.theme import busy_js, goto_tab
from studio.imageio import to_pil
from studio.session import Session, SessionError
from studio.shipped import optimizer_assets, shipped_inversion, shipped_metric, shipped_subspace

K_CHOICES = (4, 9, 16)
OPTIMIZERS = ("auto", "elitist", "bayes", "bayes-image", "DiscreteOnePlusOne", "CMA", "OnePlusOne")
FEEDBACK_LABELS = {"pick": "Pick the best", "rank": "Rank them"}
LINEAGE_SHOWN = 24  # rounds shown in the lineage strip (the most recent ones)
LINEAGE_CELL, LINEAGE_GAP = 64, 4  # px per round in the strip (smaller models upscaled), px between
LINEAGE_HINT = "click one to go back to that choice and branch from it"


def start(ctx: Ctx, st: UserState, *, k: int, method: str, strength: float, source: str, seed: int,
          optimizer: str = "auto", directions: bool = True) -> None:
    """A new composite: from random latents, the Browse selection, or the last inspiration result.

    `optimizer` "auto" and the others mean what `optimizers.preference.resolve_optimizer` says for
    the model's shipped files; `directions` searches along the model's shipped image directions
    when it has them and the driver does not search the whole latent space (bayes-image, and
    "auto" picks).
    """
    k = int(k)
    if k not in K_CHOICES:
        raise ValueError(f"candidates per round must be one of {K_CHOICES}, got {k}")
    s = st.session
    start_node = {"random": None, "browse": s.current, "inspire": st.inspired, "best": st.compose_best()}.get(source, -1)
    if start_node == -1:
        raise ValueError(f"unknown start {source!r}; expected random, browse, inspire or best")
    if source != "random" and start_node is None:
        where = {"browse": "select an image in Browse", "inspire": "run an inspiration search",
                 "best": "compose a few rounds"}[source]
        raise ValueError(f"nothing to start from yet: {where} first, or start from random")
    z0 = s.node(start_node).latent() if start_node is not None else None
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    name, whole_space = resolve_optimizer(optimizer, method, model=s.model,
                                          has_encoder=shipped_inversion(s.model) is not None,
                                          has_metric=shipped_metric(s.model) is not None)
    generator = ctx.model(s.model)
    assets = optimizer_assets(name, generator)  # what that driver uses of the model's files (loaded once)
    sub = ctx.cached(("directions", s.model), lambda: shipped_subspace(s.model)) \
        if directions and not whole_space else None
    st.compose = PreferenceSearch(ctx.latent_dim(s.model), k=k, method=method, strength=float(strength),
                                  seed=int(seed), start=z0, optimizer=name, generator=generator, assets=assets,
                                  basis=None if sub is None else sub.basis, center=None if sub is None else sub.center)
    st.compose_round, st.compose_parent, st.ranking = None, start_node, []
    st.lineage_thumbs, st.compose_pending = {}, None
    s.settings["compose"] = {"k": k, "method": method, "strength": float(strength), "seed": int(seed),
                             "start": start_node, "optimizer": optimizer, "directions": sub is not None}


def round_view(ctx: Ctx, st: UserState):
    """(candidates, lineage, best image, status) for the round on screen."""
    pref = _pref(st)
    with ctx.heavy_round(pref.heavy_rounds):
        z = pref.ask()  # [k, d]
    images = ctx.render_page(st.session.model, z)
    st.compose_view = View(z=z, kind="compose", parent=st.compose_parent,
                           infos=[{"round": pref.rounds, "index": i} for i in range(len(z))])
    st.compose_images = images
    # a new round: no tile highlighted (the gallery would keep the last click's highlight)
    candidates = fresh_gallery(_candidates(st, images), columns=_columns(pref.k))
    return candidates, lineage_update(ctx, st), best_image(ctx, st), status(st)


def choose(ctx: Ctx, st: UserState, order: list[int]) -> None:
    """Finish the round on screen with a pick ([i]) or a full ranking (best first)."""
    pref, s, view = _pref(st), st.session, st.compose_view
    if view.z is None:
        raise ValueError("no round on screen")
    with ctx.heavy_round(pref.heavy_rounds):  # the driver prepares the next round as it learns
        if len(order) == 1:
            pref.tell_pick(int(order[0]))
        else:
            pref.tell_ranking([int(i) for i in order])
    ids = [s.add(z, kind="compose", parent=st.compose_parent, info=info).id for z, info in zip(view.z, view.infos)]
    rnd = s.add_round(ids, parent_round=st.compose_round)
    rnd.choice = [ids[i] for i in order]
    st.compose_round, st.compose_parent, st.ranking = rnd.id, rnd.choice[0], []
    st.lineage_thumbs[rnd.choice[0]] = to_pil(st.compose_images[order[0]])


def click(ctx: Ctx, st: UserState, index: int) -> bool:
    """A click on candidate `index`: a pick, or the next place in a ranking. True when the round is done."""
    pref = _pref(st)
    if not 0 <= index < pref.k:
        raise IndexError(f"no candidate {index} on screen")
    if pref.method == "pick":
        choose(ctx, st, [index])
        return True
    if index in st.ranking:  # clicking a ranked one again takes it (and those after it) back
        st.ranking = st.ranking[:st.ranking.index(index)]
        return False
    st.ranking.append(index)
    if len(st.ranking) == pref.k - 1:  # the last one is implied
        choose(ctx, st, st.ranking + [i for i in range(pref.k) if i not in st.ranking])
        return True
    return False


def rewind(ctx: Ctx, st: UserState, to_round: int) -> None:
    """Back to round `to_round` (0-based) of the current lineage, to choose again (a new branch)."""
    pref = _pref(st)
    to_round = int(to_round)
    if not 0 <= to_round <= pref.rounds:
        raise ValueError(f"no round {to_round + 1} to go back to (this composite has {pref.rounds} rounds)")
    lineage = st.session.lineage(st.compose_round)
    with ctx.heavy_round(pref.heavy_rounds):
        pref.undo(to_round)
    kept = lineage[:to_round]
    st.compose_round = kept[-1].id if kept else None
    st.compose_parent = kept[-1].choice[0] if kept else st.session.settings.get("compose", {}).get("start")
    st.ranking = []


def set_strength(ctx: Ctx, st: UserState, strength: float) -> None:
    _pref(st).set_strength(float(strength))
    st.ranking = []
    st.session.settings.setdefault("compose", {})["strength"] = float(strength)


MAX_RESTORED_ROUNDS = 5000  # replaying a session's preference search costs time per round


def restored_search(ctx: Ctx, session: Session) -> tuple[PreferenceSearch | None, int | None, int | None]:
    """(search, round id, parent node) rebuilt from a loaded session; nothing is changed yet."""
    if not session.compose:
        return None, None, None
    rounds = session.compose.get("rounds")
    if isinstance(rounds, list) and len(rounds) > MAX_RESTORED_ROUNDS:
        raise SessionError(f"the session's composite has {len(rounds)} rounds (limit {MAX_RESTORED_ROUNDS})")
    try:
        with ctx.heavy_round(PreferenceSearch.heavy_state(session.compose)):  # replays, then plans a round
            generator = ctx.model(session.model)
            name = session.compose.get("optimizer")
            assets = optimizer_assets(name if isinstance(name, str) else None, generator)  # the files it was made with
            pref = PreferenceSearch.from_json(session.compose, generator=generator, assets=assets)
    except ValueError as e:
        raise SessionError(f"the session's composite cannot be restored: {e}") from None
    if pref.latent_dim != ctx.latent_dim(session.model):
        raise SessionError(f"the session's composite has latents of size {pref.latent_dim}, "
                           f"model {session.model!r} needs {ctx.latent_dim(session.model)}")
    info = session.settings.get("compose") if isinstance(session.settings.get("compose"), dict) else {}
    round_id = info.get("round") if info.get("round") in session.rounds else None
    start = info.get("start") if info.get("start") in session.nodes else None
    if len(session.lineage(round_id)) != pref.rounds:
        raise SessionError(f"the session's composite has {pref.rounds} rounds but its tree records "
                           f"{len(session.lineage(round_id))}")
    parent = session.rounds[round_id].choice[0] if round_id is not None and session.rounds[round_id].choice else start
    return pref, round_id, parent


def attach(st: UserState, restored: tuple[PreferenceSearch | None, int | None, int | None]) -> None:
    st.compose, st.compose_round, st.compose_parent = restored
    st.ranking, st.lineage_thumbs = [], {}


def snapshot(st: UserState) -> None:
    """Write the live search into the session before it is saved."""
    if st.compose is not None:
        st.session.compose = st.compose.to_dict()
        st.session.settings.setdefault("compose", {})["round"] = st.compose_round


def lineage_rounds(ctx: Ctx, st: UserState) -> tuple[int, list[Image.Image]]:
    """(number of rounds before the shown ones, thumbnail of each shown round's choice)."""
    lineage = st.session.lineage(st.compose_round)
    rounds = lineage[-LINEAGE_SHOWN:]
    missing = [r.choice[0] for r in rounds if r.choice[0] not in st.lineage_thumbs]
    if missing:
        images = ctx.render_page(st.session.model, torch.stack([st.session.node(i).latent() for i in missing]))
        st.lineage_thumbs.update({i: to_pil(im) for i, im in zip(missing, images)})
    shown = {r.choice[0] for r in rounds}
    st.lineage_thumbs = {i: im for i, im in st.lineage_thumbs.items() if i in shown}  # bounded memory
    return len(lineage) - len(rounds), [st.lineage_thumbs[r.choice[0]] for r in rounds]


def lineage_strip(thumbs: list[Image.Image]) -> Image.Image | None:
    """The shown rounds side by side in cells of LINEAGE_CELL px, LINEAGE_GAP px apart."""
    if not thumbs:
        return None
    step = LINEAGE_CELL + LINEAGE_GAP
    gray = 230 if thumbs[0].mode == "L" else (230, 230, 230)  # the page background between cells
    strip = Image.new(thumbs[0].mode, (len(thumbs) * step - LINEAGE_GAP, LINEAGE_CELL), color=gray)
    for j, im in enumerate(thumbs):
        if im.size != (LINEAGE_CELL, LINEAGE_CELL):
            im = im.resize((LINEAGE_CELL, LINEAGE_CELL), Image.NEAREST)
        strip.paste(im, (j * step, 0))
    return strip


def lineage_round_at(st: UserState, x: float) -> int:
    """The lineage round (0-based) under pixel column `x` of the strip on screen."""
    total = len(st.session.lineage(st.compose_round))
    shown = min(total, LINEAGE_SHOWN)
    if not shown:
        raise ValueError("no rounds yet to go back to")
    cell = min(max(int(x) // (LINEAGE_CELL + LINEAGE_GAP), 0), shown - 1)
    return total - shown + cell


def lineage_label(first: int, count: int) -> str:
    if not count:
        return "Lineage — your choices appear here, one per round"
    span = f"round {first + 1}" if count == 1 else f"rounds {first + 1}–{first + count}"
    return f"Lineage: {span} — {LINEAGE_HINT}"


def lineage_update(ctx: Ctx, st: UserState):
    first, thumbs = lineage_rounds(ctx, st)
    return gr.update(value=lineage_strip(thumbs), label=lineage_label(first, len(thumbs)))


def best_image(ctx: Ctx, st: UserState):
    node = st.compose_best()
    if node is None:
        return None
    if node in st.lineage_thumbs and not ctx.display(st.session.model).previews:
        return st.lineage_thumbs[node]  # thumbnails are previews on a large model: the best is full size
    return single(ctx.render_node(st.session.model, st.session.node(node)))


def status(st: UserState) -> str:
    pref = _pref(st)
    optimizer = st.session.settings.get("compose", {}).get("optimizer", "auto")
    head = f"**Round {pref.rounds + 1}** · {pref.k} candidates · strength {pref.strength:g} · optimizer {optimizer}"
    if pref.method == "pick":
        text = head + " — click the one closest to what you want."
    else:
        ranked = ", ".join(str(i + 1) for i in st.ranking) or "none yet"
        text = head + f" — click them from best to worst ({len(st.ranking)}/{pref.k - 1}; ranked: {ranked})."
    return text + (f"\n\n{st.compose_pending}" if st.compose_pending else "")


def pending_settings(st: UserState, *, k: int, method: str, optimizer: str) -> str | None:
    """What the start-only settings on screen change for the composite in progress (they apply when
    a composite starts), as a sentence; None when nothing differs or no composite runs."""
    if st.compose is None:
        return None
    live = st.session.settings.get("compose", {})
    changed = [f"optimizer {optimizer}" if optimizer != live.get("optimizer", "auto") else "",
               f"{int(k)} candidates" if int(k) != live.get("k") else "",
               FEEDBACK_LABELS.get(method, method).lower() if method != live.get("method") else ""]
    changed = [c for c in changed if c]
    if not changed:
        return None
    return (f"{', '.join(changed).capitalize()}: applies to the next composite. This one keeps "
            f"{live.get('optimizer', 'auto')}; press **Start from current choice** to go on from your "
            "current choice with the new settings.")


def _candidates(st: UserState, images: torch.Tensor):
    ranks = {i: r for r, i in enumerate(st.ranking)}
    captions = [f"#{ranks[i] + 1}" if i in ranks else f"{i + 1}" for i in range(len(images))]
    return tiles(images, captions)


def _columns(k: int) -> int:
    return {4: 2, 9: 3, 16: 4}.get(k, 4)


def _pref(st: UserState) -> PreferenceSearch:
    if st.compose is None:
        raise ValueError("start a composite first (random, from Browse or from Inspire)")
    return st.compose


# -- layout and events ---------------------------------------------------------------------------

def build(ctx: Ctx) -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.status = gr.Markdown("Start a composite: from random faces, your Browse pick or an inspiration.",
                                    elem_id="compose-status", elem_classes="status")
            ui.candidates = gr.Gallery(label="Candidates", columns=3, allow_preview=False, format="png",
                                       elem_classes="tiles", elem_id="compose-candidates", buttons=[],
                                       height="auto", interactive=False)
        with gr.Column(scale=2):
            ui.best = gr.Image(label="Current choice", format="png", interactive=False, height=300,
                               elem_classes="big", elem_id="compose-best", buttons=["download"])
            with gr.Row():
                ui.keep = gr.Button("☆ Keep", size="sm", elem_id="compose-keep")
                ui.undo = gr.Button("↶ Undo round", size="sm", elem_id="compose-undo")
            ui.strength = gr.Slider(0.1, 2.0, value=0.6, step=0.05, label="Variation strength (subtle … wild)")
            with gr.Row():
                ui.k = gr.Radio(list(K_CHOICES), value=9, label="Candidates per round", min_width=150)
                ui.method = gr.Radio([(v, k) for k, v in FEEDBACK_LABELS.items()], value="pick", label="Feedback",
                                     min_width=150)
            with gr.Accordion("Advanced", open=False, elem_id="compose-advanced"):
                with gr.Row():
                    ui.seed = gr.Number(0, label="Seed", precision=0, minimum=0, min_width=80)
                    ui.optimizer = gr.Dropdown(list(OPTIMIZERS), value="auto", label="Optimizer", min_width=160,
                                               elem_id="compose-optimizer")
                ui.directions = gr.Checkbox(True, label="Move along the model's main image directions (when shipped)")
            with gr.Row():
                ui.new_random = gr.Button("New from random", size="sm", variant="primary", elem_id="compose-new")
                ui.from_browse = gr.Button("Start from Browse pick", size="sm")
                ui.from_inspire = gr.Button("Start from inspiration", size="sm")
                ui.from_best = gr.Button("Start from current choice", size="sm", elem_id="compose-from-best")
    ui.lineage = gr.Image(label=lineage_label(0, 0), format="png", interactive=False, buttons=[],
                          elem_classes="gstrip", elem_id="compose-lineage", height=LINEAGE_CELL + 40)
    ui.api_choice = gr.Textbox(visible=False)  # "3" (a pick) or "3,0,1,..." (a ranking), 0-based
    ui.api_round = gr.Button(visible=False)
    ui.api_source = gr.Textbox("random", visible=False)
    ui.api_start = gr.Button(visible=False)
    ui.api_to_round = gr.Number(0, precision=0, visible=False)
    ui.api_rewind = gr.Button(visible=False)
    return ui


def refresh_outputs(c: SimpleNamespace) -> list:
    return [c.candidates, c.lineage, c.best, c.status]


def refresh_values(ctx: Ctx, st: UserState) -> list:
    if st.compose is None:
        return [[], gr.update(value=None, label=lineage_label(0, 0)), None,
                "Start a composite: from random, your Browse pick or an inspiration."]
    return list(round_view(ctx, st))


# a spinner on the outputs: most drivers answer in milliseconds, but "bayes-image" inverts every
# proposal (seconds a round on the CPU) and computes its pixel prior when it starts
ROUND_EVENTS = {**FAST, "show_progress": "minimal"}


def wire(ctx: Ctx, ui: SimpleNamespace, state: gr.State, app: SimpleNamespace) -> None:
    out = [state] + refresh_outputs(ui)
    _wire_starts(ctx, ui, state, app, out)
    _wire_rounds(ctx, ui, state, out)
    _wire_moves(ctx, ui, state, out)
    _wire_settings(ui, state)


def _round_event(trigger, fn, inputs: list, outputs: list, **kwargs):
    """`trigger(fn, ...)` for a callback that works out a new round: the candidates and the lineage
    are covered ("Working out the next round…") and take no clicks until it answers, success or not."""
    trigger(None, None, None, js=busy_js(True), queue=False, show_progress="hidden", api_visibility="private")
    event = trigger(fn, inputs, outputs, **ROUND_EVENTS, **kwargs)
    for after in (event.success, event.failure):  # (.then does not follow a failed event in Gradio 6.31)
        after(None, None, None, js=busy_js(False), queue=False, show_progress="hidden", api_visibility="private")
    return event


def _wire_starts(ctx: Ctx, ui: SimpleNamespace, state: gr.State, app: SimpleNamespace, out: list) -> None:
    def starter(source: str | None):
        @friendly
        def on_start(st, *args):
            src, (k, method, strength, seed, optimizer, directions) = (source, args) if source else (args[0], args[1:])
            start(ctx, st, k=k, method=method, strength=strength, source=src, seed=seed, optimizer=optimizer,
                  directions=directions)
            return [st, *round_view(ctx, st)]
        return on_start

    settings = [ui.k, ui.method, ui.strength, ui.seed, ui.optimizer, ui.directions]
    for button, source in ((ui.new_random, "random"), (ui.from_browse, "browse"), (ui.from_inspire, "inspire"),
                           (ui.from_best, "best")):
        _round_event(button.click, starter(source), [state, *settings], out, api_visibility="private")
    for button, source in ((app.browse.compose, "browse"), (app.inspire.compose, "inspire")):
        goto_tab(_round_event(button.click, starter(source), [state, *settings], out, api_visibility="private"),
                 "compose")
    _round_event(ui.api_start.click, starter(None), [state, ui.api_source, *settings], out, api_name="compose_start")


def _wire_rounds(ctx: Ctx, ui: SimpleNamespace, state: gr.State, out: list) -> None:
    @friendly
    def on_click(st, evt: gr.SelectData):
        if click(ctx, st, int(evt.index)):
            return [st, *round_view(ctx, st)]
        return [st, _candidates(st, st.compose_images), gr.skip(), gr.skip(), status(st)]

    @friendly
    def api_round(st, choice):
        try:
            order = [int(x) for x in str(choice).replace(" ", "").split(",") if x != ""]
        except ValueError:
            raise ValueError(f"choice must be a candidate index or a ranking like 3,0,1,... got {choice!r}") from None
        if not order:
            raise ValueError("choice is empty: give a candidate index (0-based) or a full ranking")
        choose(ctx, st, order)
        return [st, *round_view(ctx, st)]

    _round_event(ui.candidates.select, on_click, [state], out, api_visibility="private")
    _round_event(ui.api_round.click, api_round, [state, ui.api_choice], out, api_name="compose_round")


def _wire_moves(ctx: Ctx, ui: SimpleNamespace, state: gr.State, out: list) -> None:
    """Back along the lineage (a click on a round's choice, undo) and a new strength."""
    @friendly
    def on_lineage(st, evt: gr.SelectData):
        if not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
            raise ValueError("click a round in the lineage strip")
        # a thumbnail is that round's choice: back to it, choosing again from the round after it
        rewind(ctx, st, lineage_round_at(st, evt.index[0]) + 1)
        return [st, *round_view(ctx, st)]

    @friendly
    def api_rewind(st, to_round):
        rewind(ctx, st, int(to_round))
        return [st, *round_view(ctx, st)]

    @friendly
    def on_undo(st):
        rewind(ctx, st, _pref(st).rounds - 1 if _pref(st).rounds else 0)
        return [st, *round_view(ctx, st)]

    @friendly
    def on_strength(st, strength):
        if st.compose is None:
            return [st, gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        set_strength(ctx, st, strength)
        return [st, *round_view(ctx, st)]

    _round_event(ui.lineage.select, on_lineage, [state], out, api_visibility="private")
    _round_event(ui.api_rewind.click, api_rewind, [state, ui.api_to_round], out, api_name="compose_rewind")
    _round_event(ui.undo.click, on_undo, [state], out, api_visibility="private")
    _round_event(ui.strength.release, on_strength, [state, ui.strength], out, api_visibility="private")


def _wire_settings(ui: SimpleNamespace, state: gr.State) -> None:
    """The optimizer, k and feedback apply when a composite starts: say so when they change mid-way."""
    @friendly
    def on_setting(st, k, method, optimizer):
        st.compose_pending = pending_settings(st, k=k, method=method, optimizer=optimizer)
        if st.compose_pending:
            gr.Info(st.compose_pending)
        return st, status(st) if st.compose is not None else gr.skip()

    for control in (ui.k, ui.method, ui.optimizer):
        control.input(on_setting, [state, ui.k, ui.method, ui.optimizer], [state, ui.status],
                      api_visibility="private", **FAST)
