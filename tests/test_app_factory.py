"""The factory: no model loaded at build time, cheap events off the queue, searches bounded, local only."""
from __future__ import annotations

import json

import pytest
import torch

import app as app_main
from studio.app import create_app, serve
from studio.testing import write_tiny_catalog
from studio.catalog import Catalog



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    catalog = Catalog(write_tiny_catalog(tmp_path_factory.mktemp("assets"), encoder=False))
    return catalog, create_app(catalog)


def endpoints(demo) -> dict:
    return {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}


def test_building_loads_no_model(built):
    catalog, _demo = built
    assert catalog._cache == {}


def test_cheap_events_are_queued_without_a_limit_and_searches_are_bounded(built):
    _catalog, demo = built
    fns = endpoints(demo)
    for name in ("generate", "select", "variations", "interpolate", "compose_start", "compose_round",
                 "compose_rewind", "keep", "stop", "save_session", "set_model"):
        # queued: only queued events show their gr.Info / gr.Error on screen (issue 25, item 1);
        # without a concurrency limit, so they never wait behind a search
        assert fns[name].queue is not False and fns[name].concurrency_limit is None, name
    search = fns["inspire"]
    assert search.queue is not False and search.concurrency_limit == 1 and search.concurrency_id == "search"
    assert demo._queue.max_size == 64
    assert fns["compose_round"].concurrency_limit is None  # API clients queue even cheap events


def test_serve_is_local_only_whatever_it_is_asked(built, monkeypatch):
    _catalog, demo = built
    seen = {}

    class Fake:
        def launch(self, **kw):
            seen.update(kw)

    serve(Fake(), port=1234, share=True, server_name="0.0.0.0")
    assert seen["share"] is False and seen["server_name"] == "127.0.0.1" and seen["server_port"] == 1234


def test_app_refuses_an_empty_catalog(tmp_path, capsys):
    empty = tmp_path / "catalog.json"
    empty.write_text(json.dumps({"models": []}))
    assert app_main.main(["--catalog", str(empty)]) == 2
    assert "no generator" in capsys.readouterr().err


def test_heavy_compose_rounds_run_one_at_a_time(built, monkeypatch):
    """Compose events skip the queue; rounds whose proposals are inversions (bayes-image) take
    seconds of CPU, so two tabs ranking at once prepare their rounds one after the other."""
    import threading
    import time

    from optimizers import preference
    from studio.app import compose
    from studio.app.context import Ctx
    from studio.app.state import UserState

    catalog, _demo = built
    ctx = Ctx(catalog)
    running, overlaps, count = [0], [], threading.Lock()
    bridge = preference.generator_bridge

    def counting_bridge(*args, **kwargs):  # every tab's inversions sleep and count how many run at once
        render, invert = bridge(*args, **kwargs)

        def counted(images, init):
            with count:
                running[0] += 1
                overlaps.append(running[0])
            time.sleep(0.05)
            with count:
                running[0] -= 1
            return invert(images, init)
        return render, counted

    monkeypatch.setattr(preference, "generator_bridge", counting_bridge)
    tabs = [UserState.new("tiny") for _ in range(3)]
    for st in tabs:
        compose.start(ctx, st, k=4, method="rank", strength=0.6, source="random", seed=0, optimizer="bayes-image")
        compose.round_view(ctx, st)
    assert tabs[0].compose.heavy_rounds

    def play(st):
        for _ in range(3):
            compose.choose(ctx, st, [1, 0, 2, 3])
            compose.round_view(ctx, st)
    threads = [threading.Thread(target=play, args=(st,)) for st in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 9 and max(overlaps) == 1  # 3 tabs x 3 rounds, never two at once
    assert all(st.compose.rounds == 3 for st in tabs)

    for st in tabs:  # three tabs loading saved sessions at once: each replay plans its next round
        compose.snapshot(st)
    assert all(preference.PreferenceSearch.heavy_state(st.session.compose) for st in tabs)
    overlaps.clear()
    restored = []
    threads = [threading.Thread(target=lambda st=st: restored.append(compose.restored_search(ctx, st.session)))
               for st in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(restored) == 3 and all(r[0].rounds == 3 for r in restored)
    assert overlaps and max(overlaps) == 1


def test_inspire_starts_from_the_shipped_inversion_encoder(built):
    from studio.app.inspire import start_guess
    from studio.catalog import Catalog as Shipped

    catalog, _demo = built
    assert start_guess("tiny", catalog.generator("tiny"), torch.zeros(1, 1, 16, 16)) is None  # ships none
    model = Shipped().generator("fashion32")
    target = model.generate(torch.randn(1, 64, generator=torch.Generator().manual_seed(3)))
    z = start_guess("fashion32", model, target)
    assert z.shape == (64,)
    random = model.generate(torch.randn(16, 64, generator=torch.Generator().manual_seed(4)))
    assert (model.generate(z[None]) - target).pow(2).mean() < (random - target).pow(2).mean((1, 2, 3)).min()


def test_the_realism_slider_starts_from_the_sidecar_without_loading_the_model(tmp_path):
    from optimizers import STUDIO_REALISM
    from studio.app.context import Ctx
    from studio.app.inspire import initial_realism
    from studio.testing import TINYRGB_REALISM

    catalog = Catalog(write_tiny_catalog(tmp_path, encoder=False, examples=False))
    ctx = Ctx(catalog)
    assert initial_realism(ctx, "tinyrgb") == TINYRGB_REALISM and initial_realism(ctx, "tiny") == STUDIO_REALISM
    assert not catalog._cache  # read from the .json, no model loaded
    (tmp_path / "tinyrgb.json").write_text("{not json")
    assert initial_realism(ctx, "tinyrgb") == STUDIO_REALISM  # a broken sidecar: the studio's weight


def test_the_loss_curve_has_numeric_axes_from_its_first_empty_frame():
    # the plot keeps the axis kinds of the first frame it is sent: an untyped empty frame made them
    # categorical, one y label per loss value
    import gradio as gr

    from studio.app.inspire import loss_frame
    plot = gr.LinePlot(x="step", y="best loss")
    for history in ([], [(1, 0.5, 0.1), (2, 0.4, 0.2)]):
        assert plot.postprocess(loss_frame(history)).datatypes == {"step": "quantitative", "best loss": "quantitative"}


def test_serving_warms_the_nevergrad_import_in_the_background():
    import sys

    from studio.app.theme import warm_imports
    thread = warm_imports(delay_s=0.0)
    assert thread.daemon
    thread.join(60)
    assert "nevergrad" in sys.modules


def test_a_slow_cached_object_holds_up_only_its_own_key(tmp_path):
    import threading

    from studio.app.context import Ctx
    from studio.catalog import Catalog
    ctx = Ctx(Catalog(tmp_path / "none.json"))
    release, made = threading.Event(), []

    def slow():
        release.wait(30)
        made.append("a")
        return "A"
    worker = threading.Thread(target=lambda: ctx.cached("a", slow))
    worker.start()
    assert ctx.cached("b", lambda: "B") == "B"  # not behind the slow one
    release.set()
    worker.join(30)
    assert ctx.cached("a", lambda: "again") == "A" and made == ["a"]  # made once
