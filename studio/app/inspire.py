"""Inspire: find the generation closest to an image, streaming the search as it goes.

The search itself is `optimizers.inspire` (`prepare`, then `search(...).iterate()`, as the CLI);
this module loads the target through the image edge, builds the distance from the chosen weights,
shows the inversion's guess at once, throttles progress into a few updates a second, and stops on
Stop (keeping the best so far), the budget or a time limit.
"""
from __future__ import annotations

import math
import time
from typing import Any
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd
import torch

from encoders import Distance, load_encoder
from optimizers import STUDIO_REALISM, ProgressEvent, Weights, default_realism
from optimizers.inspire import GRADIENT, defaults, prepare, realism_unit, search as make_search, stored_spread
from optimizers.objective import realism_setting
from optimizers.inversion import fits, guess
from studio.shipped import shipped_encoder
from studio.app.context import Ctx, FAST, friendly
from studio.app.render import single
from studio.display import keep_measured, kept_spread
from weightfile import read_info
from studio.app.state import UserState
from studio.gif import save_gif
from studio.imageio import ImageError, load_image, open_image, to_pil

SEARCH_METHODS = ["gradient", "NGOpt", "CMA", "DiscreteOnePlusOne", "TwoPointsDE", "PSO", "OnePlusOne", "RandomSearch"]
ENCODER_SLOTS = 6  # perceptual terms offered beside `pixel` (the model's own encoders first)
# offered in this order: the measured ones first (docs/benchmarks/encoders.md; DCLW is faces64's best blend)
METHOD_ORDER = ("dclw", "vicreg", "irmae", "barlow", "simclr", "directclr", "dcl")
UPDATE_EVERY_S = 0.3  # streamed updates at most this often
EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def examples(ctx: Ctx, model_id: str) -> list[Path]:
    """Example targets: assets/examples/<model id>/* first, then assets/examples/*; without any,
    six of the model's own generations (seeds 1000-1005; a search should find them again)."""
    root = ctx.catalog.root / "examples"
    found = []
    for folder in (root / model_id, root):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix.lower() in EXAMPLE_SUFFIXES)
    return found[:12] or ctx.cached(("examples", model_id), lambda: _own_examples(ctx, model_id))


def _own_examples(ctx: Ctx, model_id: str) -> list[Path]:
    model = ctx.model(model_id)
    images = ctx.render(model_id, model.latents_for_seeds(list(range(1000, 1006))))
    folder = ctx.scratch("examples").parent
    paths = []
    for seed, image in zip(range(1000, 1006), images):
        path = folder / f"{model_id}-seed{seed}.png"
        single(image[None], size=128).save(path)
        paths.append(path)
    return paths


def encoder_ids(ctx: Ctx, model_id: str) -> list[str]:
    """Encoders offered for a model: those trained on its data (e.g. faces64-vicreg) first."""
    ids = ctx.catalog.ids("encoder")
    own = [i for i in ids if i.startswith(f"{model_id}-") or ctx.catalog.get(i).extra.get("generator") == model_id]
    method = lambda i: i.rsplit("-", 1)[-1]  # noqa: E731 - ids are <model>-<method>
    own.sort(key=lambda i: METHOD_ORDER.index(method(i)) if method(i) in METHOD_ORDER else len(METHOD_ORDER))
    return (own + [i for i in ids if i not in own])[:ENCODER_SLOTS]


MIN_TARGET_SIDE = 8  # a smaller centre square (a 1x1 image, a 4000x3 strip) would be a flat grey target
STRIP_RATIO = 3  # wider or taller than this: only the centre square is used, and the status says so


# Named distances, from the project's own measurements (docs/benchmarks/encoders.md, benchmarks/
# encoders_mix.py: held-out images inverted under each distance, judged by an independent
# classifier and by pixel MSE): pixels give the closest look-alike; pixels + the model's best
# encoder keep the expression (faces64 + DCLW: smile kept 71 of 96 against 63, at 5% more pixel
# MSE) or the class (fashion32 + VICReg: 85% against 83%); the encoder alone holds on to the gist
# and lets the likeness go (faces64 DCLW: smile 79%, pixel MSE 0.039 against 0.027).
PIXELS, LIKENESS, STYLE = "pixels", "likeness", "style"
PRESET_INFO = {PIXELS: "the closest look-alike, pixel by pixel",
               LIKENESS: "pixels + a learned encoder: keeps expression or kind, nearly as close",
               STYLE: "the learned encoder alone: the gist and look, not the exact pixels"}
PRESET_ENCODER = {"faces64": "dclw", "fashion32": "vicreg"}  # the measured best blend per model


def preset_encoder(ctx: Ctx, model_id: str) -> str | None:
    """The encoder the likeness and style presets use: the measured one, else the model's first."""
    names = encoder_ids(ctx, model_id)
    own = [n for n in names if n.startswith(f"{model_id}-")]
    wanted = f"{model_id}-{PRESET_ENCODER[model_id]}" if model_id in PRESET_ENCODER else None
    return wanted if wanted in names else (own[0] if own else None)


def preset_weights(ctx: Ctx, model_id: str, name: str) -> dict[str, float]:
    """A preset's distance weights for a model (pixels alone where the model has no encoder)."""
    if name not in PRESET_INFO:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_INFO)}")
    enc = preset_encoder(ctx, model_id)
    if name == PIXELS or enc is None:
        return {"pixel": 1.0}
    return {"pixel": 1.0, enc: 1.0} if name == LIKENESS else {enc: 1.0}


def preset_info(ctx: Ctx, model_id: str) -> str:
    enc = preset_encoder(ctx, model_id)
    text = " · ".join(f"{k}: {v}" for k, v in PRESET_INFO.items())
    return text + (f" (encoder: {enc})" if enc else " (this model has no encoder: every preset is pixels)")


def load_target(ctx: Ctx, st: UserState, path: str | None) -> torch.Tensor:
    """An uploaded or example image -> [1, C, R, R] in the model's format (cropped, resized)."""
    return load_target_noted(ctx, st, path)[0]


def load_target_noted(ctx: Ctx, st: UserState, path: str | None) -> tuple[torch.Tensor, str]:
    """`load_target` and what the crop and resize did to the image (`target_note`). A refused
    image clears the previous target too, so Search cannot run on a stale one."""
    if not path:
        raise ValueError("upload an image or pick an example first")
    model = ctx.model(st.session.model)
    name = Path(path).name
    try:
        image = open_image(path)
        w, h = image.size
        if min(w, h) < MIN_TARGET_SIDE:
            raise ImageError(f"{name}: {w}x{h} is too small to search for (its centre square is "
                             f"{min(w, h)}x{min(w, h)} pixels; at least {MIN_TARGET_SIDE}x{MIN_TARGET_SIDE})")
        target = load_image(image, channels=model.channels, size=model.resolution)
    except ImageError as e:
        st.target, st.target_path, st.target_name = None, None, ""
        raise ImageError(f"{name}: {str(e).split(': ', 1)[-1]}") from None
    st.target, st.target_path, st.target_name = target, str(path), name
    return target, target_note(w, h, model.resolution)


def target_note(w: int, h: int, resolution: int) -> str:
    """What the crop and resize did to a w x h image, when the person should know ('' otherwise)."""
    side = min(w, h)
    if max(w, h) > STRIP_RATIO * side:
        return f" Only its centre {side}x{side} square is used ({w}x{h} image)."
    if side < resolution // 2:
        return f" It is small ({w}x{h}): enlarged to {resolution}x{resolution}, so it looks blurry."
    return ""


def distance(ctx: Ctx, model_id: str, weights: dict[str, float]):
    """An encoders.Distance over the terms with weight > 0 (pixel alone when none is set)."""
    used = {k: float(v) for k, v in weights.items() if v and float(v) > 0}
    if not used:
        raise ValueError("set at least one distance weight above 0 (pixel, or a perceptual encoder)")
    encs = {}
    for name in used:
        if name != "pixel":
            e = ctx.catalog.get(name)
            encs[name] = ctx.cached(("encoder", name), lambda e=e: load_encoder(e.path(ctx.catalog.root),
                                                                     device=ctx.catalog.device))
    return Distance(used, encoders=encs)


def start_guess(model_id: str, model, target: torch.Tensor) -> torch.Tensor | None:
    """The model's inversion encoder's latent [d] for the target, where the search starts (as the
    CLI's `--start auto`), or None without an encoder: on 8 held-out images each, 200 steps of 8
    restarts from it ended lower than from random latents on 8 of 8 for faces64, 7 of 8 for
    fashion32, 3 of 8 for textures64 (all within 10%: a close first image there, not a better end)
    (`benchmarks/inspire_start.py`)."""
    encoder = shipped_encoder(model_id, device=getattr(model, "device", None))
    if encoder is None or not fits(encoder, model):
        return None
    return guess(encoder, target)


RANDOM_STARTS = 16  # without an inversion encoder: the closest of this many random latents starts


def closest_random(ctx: Ctx, model_id: str, target: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Without an inversion encoder: the latent [d] of the RANDOM_STARTS random samples whose page
    image (`Ctx.render_page`: a preview on a large model) is nearest the target at that size, a
    first image within a second and a closer start than one random latent."""
    model = ctx.model(model_id)
    z = model.sample_latents(RANDOM_STARTS, seed=10_000 + int(seed))
    images = ctx.render_page(model_id, z)
    small = torch.nn.functional.adaptive_avg_pool2d(target.float().cpu(), images.shape[-1])
    return z[int((images - small).pow(2).flatten(1).mean(1).argmin())]


def keep_realism_unit(ctx: Ctx, model_id: str, model, realism: float) -> None:
    """D's spread, the unit of the realism weight, for a model whose sidecar does not state it: read
    from what was kept beside its file, else measured now (`realism_unit`: seconds at 256 px) and kept."""
    if realism <= 0 or model.discriminator is None or stored_spread(model.info) is not None:
        return
    source = ctx.model_file(model_id)
    spread = kept_spread(source)
    if spread is None:
        spread = float(realism_unit(model))
        keep_measured(source, metadata={"realism_spread": repr(spread)})
    model.info.setdefault("inspire", {})["realism_spread"] = spread


def initial_realism(ctx: Ctx, model_id: str) -> float:
    """The model's own realism weight read from its sidecar, without loading it (the page's first
    value, before the load event asks the model itself through `default_realism`)."""
    try:
        value = realism_setting(read_info(ctx.catalog.resolve(model_id)))
    except (OSError, ValueError):  # WeightFileError and an unknown id are ValueErrors
        value = None
    return STUDIO_REALISM if value is None else value


def search(ctx: Ctx, st: UserState, *, method: str, budget: int, restarts: int, seed: int,
           weights: dict[str, float], prior: float = 1.0, realism: float | None = None):
    """Run a search on st.target; yields (event, done): first the start (the inversion's guess, step
    0) at once, then at most every UPDATE_EVERY_S, and the result at the end. `realism` None: the
    model's own default (`default_realism`)."""
    if st.target is None:
        raise ValueError("upload an image or pick an example first")
    budget = int(budget)
    if not 1 <= budget <= ctx.limits.max_budget:
        raise ValueError(f"budget must be between 1 and {ctx.limits.max_budget}")
    session = st.session
    model = ctx.model(session.model)
    realism = default_realism(model) if realism is None else float(realism)
    dist = distance(ctx, st.session.model, weights)
    if st.search is not None:
        st.search.cancel()  # one search per user: a new one replaces the old
    began = time.monotonic()
    start = start_guess(session.model, model, st.target)
    st.search_start = "inversion"
    if start is None:
        start, st.search_start = closest_random(ctx, session.model, st.target, seed=seed), "random"
    # the first image within a click: before D's spread is measured (once per model)
    yield ProgressEvent(0, budget, math.nan, start[None], {}, 0.0), False
    # D's spread: stated by the shipped models' sidecars, else measured once per model file and kept
    keep_realism_unit(ctx, session.model, model, realism)
    prepared = prepare(model, st.target, start=start, distance=dist,
                       weights=Weights(distance=1.0, prior=float(prior), realism=realism))
    run = make_search(prepared, method=method, budget=budget, restarts=max(1, int(restarts)), seed=int(seed))
    st.search, st.search_frames, st.search_timed_out = run, [], False
    last = began
    event = None
    try:
        for event in run.iterate():
            now = time.monotonic()
            if now - began > ctx.limits.max_seconds and not run.finished():
                run.cancel()
                st.search_timed_out = True
            if now - last >= UPDATE_EVERY_S:
                last = now
                st.search_frames.append(event.best_latent[0].clone())
                yield event, False
    finally:
        if st.search is run:
            st.search = None
    result = run.result()
    with st.lock():  # other callbacks of this tab may be adding nodes meanwhile
        if st.session is session:  # not if the user switched model or loaded a session meanwhile
            node = session.add(result.latent[0], kind="inspire",
                               info={"target": st.target_name, "method": method, "loss": round(result.loss, 6),
                                     "start": st.search_start,
                                     "steps": result.steps, "seed": int(seed), "stopped": result.stopped})
            st.inspired = node.id
            st.search_frames.append(result.latent[0].clone())
    yield result, True


def loss_frame(run_history: list[tuple[int, float, float]]) -> pd.DataFrame:
    """The loss curve's data, typed even when empty: the plot takes its axes' kinds from the first
    frame it gets, and an untyped empty one made both axes categorical (a label per loss value)."""
    rows = [(s, l) for s, l, _ in run_history if l == l and l != float("inf")]
    return pd.DataFrame({"step": pd.Series([s for s, _ in rows], dtype="int64"),
                         "best loss": pd.Series([l for _, l in rows], dtype="float64")})


def search_gif(ctx: Ctx, st: UserState) -> str:
    if not st.search_frames:
        raise ValueError("run a search first")
    frames = ctx.render(st.session.model, torch.stack(st.search_frames))
    return str(save_gif(frames, ctx.scratch("search.gif"), frame_ms=120))


# -- layout and events ---------------------------------------------------------------------------

def build(ctx: Ctx) -> SimpleNamespace:
    ui = SimpleNamespace()
    default = ctx.catalog.default_generator()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            ui.upload = gr.File(label="Target image (any picture: it is cropped to a square)", type="filepath",
                                file_count="single", elem_id="inspire-upload", height=120)
            # filled when the page loads (examples may be the model's own generations: no model here)
            ui.examples = gr.Gallery([], label="…or pick an example", columns=6, allow_preview=False,
                                     elem_classes="tiles small", fit_columns=False, buttons=[], height="auto",
                                     interactive=False, elem_id="inspire-examples")
            with gr.Row():
                ui.method = gr.Dropdown(SEARCH_METHODS, value="gradient", allow_custom_value=True, elem_id="inspire-method",
                                        label="Method (gradient, or any Nevergrad optimizer)", scale=3)
                ui.seed = gr.Number(0, label="Seed", precision=0, minimum=0, min_width=80, scale=1)
            with gr.Row():
                ui.budget = gr.Slider(10, ctx.limits.max_budget, value=GRADIENT.budget, step=10,
                                      label="Budget (steps / evaluations)", elem_id="inspire-budget")
                ui.restarts = gr.Slider(1, 32, value=GRADIENT.batch, step=1, label="Restarts / batch",
                                        elem_id="inspire-restarts")
            encs = encoder_ids(ctx, default)
            ui.preset = gr.Radio(list(PRESET_INFO), value=PIXELS, label="Closest in…", elem_id="inspire-preset",
                                 info=preset_info(ctx, default))
            with gr.Accordion("Advanced: distance weights", open=False, elem_id="inspire-advanced"):
                ui.w_enc = []
                with gr.Row():
                    ui.w_pixel = gr.Slider(0, 2, value=1.0, step=0.05, label="pixel", min_width=200)
                    ui.w_enc.append(_encoder_slider(encs, 0))
                for j in range(1, ENCODER_SLOTS, 2):
                    with gr.Row():
                        ui.w_enc += [_encoder_slider(encs, i) for i in range(j, min(j + 2, ENCODER_SLOTS))]
                ui.w_prior = gr.Slider(0, 2, value=1.0, step=0.05, label="latent prior")
            with gr.Row():
                ui.w_realism = gr.Slider(0, 0.5, value=initial_realism(ctx, default), step=0.005,
                                             label="realism (discriminator)", elem_id="inspire-realism",
                                             info="D's score in units of its spread over this model's samples; "
                                                  "each model starts at its own measured default")
            with gr.Row():
                ui.run = gr.Button("Search", variant="primary", elem_id="inspire-run")
                ui.stop = gr.Button("Stop (keep best)", variant="stop", elem_id="inspire-stop")
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                ui.target = gr.Image(label="Target (as the model sees it)", format="png", interactive=False,
                                     height=260, elem_classes="big", elem_id="inspire-target", buttons=[])
                ui.best = gr.Image(label="Best so far", format="png", interactive=False, height=260,
                                   elem_classes="big", elem_id="inspire-best", buttons=["download"])
            ui.status = gr.Markdown("Upload an image, then press Search.", elem_id="inspire-status",
                                    elem_classes="status")
            ui.curve = gr.LinePlot(x="step", y="best loss", label="Loss", height=200, elem_id="inspire-curve")
            with gr.Row():
                ui.compose = gr.Button("Compose from here →", size="sm", variant="primary", elem_id="inspire-compose")
                ui.keep = gr.Button("☆ Keep", size="sm", elem_id="inspire-keep")
                ui.make_gif = gr.Button("GIF of the search", size="sm")
            ui.gif = gr.Image(label="Search GIF", visible=False, format="gif", interactive=False, height=200)
    return ui


def _encoder_slider(encs: list[str], j: int) -> gr.Slider:
    return gr.Slider(0, 2, value=0.0, step=0.05, label=encs[j] if j < len(encs) else f"encoder {j}",
                     visible=j < len(encs), min_width=200)


def refresh_outputs(ui: SimpleNamespace) -> list:
    return [ui.examples, ui.preset, ui.w_pixel, *ui.w_enc, ui.w_realism, ui.target, ui.best, ui.status]


def refresh_values(ctx: Ctx, st: UserState) -> list:
    """After a model switch or a session load: that model's examples, encoders and realism weight."""
    model_id = st.session.model
    ex = examples(ctx, model_id)
    encs = encoder_ids(ctx, model_id)
    sliders = [gr.update(label=encs[j], value=0.0, visible=True) if j < len(encs) else gr.update(visible=False)
               for j in range(ENCODER_SLOTS)]
    target = single(st.target) if st.target is not None else None
    best = single(ctx.render_node(model_id, st.session.node(st.inspired))) if st.inspired is not None else None
    realism = default_realism(ctx.model(model_id))
    preset = gr.update(value=PIXELS, info=preset_info(ctx, model_id))
    return [gr.update(value=[str(p) for p in ex], visible=bool(ex)), preset, 1.0, *sliders, realism, target, best,
            "Upload an image, then press Search."]


def progress_text(ctx: Ctx, st: UserState, item: Any, done: bool) -> str:
    """The status line for one streamed search event (`done`: its final result)."""
    if done:
        why = {"cancelled": "stopped", "budget": "budget spent", "plateau": "no more progress"}.get(
            item.stopped, item.stopped)
        if st.search_timed_out:
            why = f"time limit of {ctx.limits.max_seconds:.0f} s"
        return (f"**Done** ({why}) · {item.steps} steps · best loss {item.loss:.4f} · "
                f"{item.seconds:.1f}s — 'Compose from here' continues from it.")
    if item.step == 0:
        if st.search_start == "random":
            return (f"Starting from the closest of {RANDOM_STARTS} random samples (this model has no inversion "
                    "encoder)…")
        return "Starting from the inversion encoder's guess…"
    return f"Searching… step {item.step}/{item.budget} · best loss {item.best_loss:.4f}"


def wire(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    _wire_target(ctx, ui, state)
    _wire_search(ctx, ui, state)


def _wire_target(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """Uploads and examples set the target; a refused upload leaves nothing stale on screen."""
    fast = FAST

    def show_target(st, path):
        target, note = load_target_noted(ctx, st, path)
        return st, single(target), f"Target **{st.target_name}** loaded. Press Search.{note}"

    def clear_refused(st):
        """After a refused upload (its message already shown): no file, no target, no stale status."""
        return st, None, None, "No target: that file was refused. Upload another image or pick an example."

    @friendly
    def on_target(st, path):
        return show_target(st, path)

    @friendly
    def on_example(st, evt: gr.SelectData):
        return show_target(st, str(examples(ctx, st.session.model)[int(evt.index)]))

    # queued: Gradio 6 shows no error toast for a non-queued upload event
    ui.upload.upload(on_target, [state, ui.upload], [state, ui.target, ui.status], api_name="set_target",
                     concurrency_limit=4, concurrency_id="uploads", show_progress="hidden").failure(
        clear_refused, [state], [state, ui.upload, ui.target, ui.status], api_visibility="private", **fast)
    ui.examples.select(on_example, [state], [state, ui.target, ui.status], api_visibility="private", **fast)


def _wire_search(ctx: Ctx, ui: SimpleNamespace, state: gr.State) -> None:
    """Search streams its best image, status and loss curve; presets, method defaults, stop, GIF."""
    fast = FAST

    @friendly
    def on_run(st, path, method, budget, restarts, seed, w_pixel, *rest):
        w_enc, (prior, realism) = rest[:ENCODER_SLOTS], rest[ENCODER_SLOTS:]
        if path and path != st.target_path:
            load_target(ctx, st, path)
        names = encoder_ids(ctx, st.session.model)
        weights = {"pixel": w_pixel, **{n: w for n, w in zip(names, w_enc)}}
        for item, done in search(ctx, st, method=str(method), budget=budget, restarts=restarts, seed=seed,
                                 weights=weights, prior=prior, realism=realism):
            latent = item.latent if done else item.best_latent
            history = item.history if done else (st.search.history if st.search is not None and item.step else [])
            image = single(ctx.render(st.session.model, latent))
            yield st, image, progress_text(ctx, st, item, done), loss_frame(history)

    def on_preset(st, name):
        """A named preset sets the raw weights under Advanced (which stay free to change)."""
        names = encoder_ids(ctx, st.session.model)
        w = preset_weights(ctx, st.session.model, str(name))
        return [w.get("pixel", 0.0)] + [w.get(n, 0.0) for n in names] + [0.0] * (ENCODER_SLOTS - len(names))

    def on_method(method):
        """A method's own default budget and batch (gradient: few steps of one restart; Nevergrad:
        hundreds of evaluations, 8 at a time)."""
        d = defaults(str(method)) if method else GRADIENT
        return gr.update(value=min(d.budget, ctx.limits.max_budget)), gr.update(value=d.batch)

    @friendly
    def on_stop(st):
        if st.search is not None:
            st.search.cancel()
        return "Stopping… the best so far is kept."

    @friendly
    def on_gif(st):
        return gr.update(value=search_gif(ctx, st), visible=True)

    inputs = [state, ui.upload, ui.method, ui.budget, ui.restarts, ui.seed, ui.w_pixel, *ui.w_enc,
              ui.w_prior, ui.w_realism]
    ui.run.click(on_run, inputs, [state, ui.best, ui.status, ui.curve], api_name="inspire",
                 concurrency_limit=ctx.limits.searches_at_once, concurrency_id="search", show_progress="minimal")
    ui.preset.change(on_preset, [state, ui.preset], [ui.w_pixel, *ui.w_enc], api_visibility="private", **fast)
    ui.method.change(on_method, [ui.method], [ui.budget, ui.restarts], api_visibility="private", **fast)
    ui.stop.click(on_stop, [state], [ui.status], api_name="stop", **fast)
    ui.make_gif.click(on_gif, [state], [ui.gif], api_name="search_gif", concurrency_id="search")
