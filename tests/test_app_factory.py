"""The factory: no model loaded at build time, cheap events off the queue, searches bounded, local only."""
from __future__ import annotations

import json

import pytest

import app as app_main
from studio.app import create_app, serve
from studio.app.testing import write_tiny_catalog
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


def test_cheap_events_skip_the_queue_and_searches_are_bounded(built):
    _catalog, demo = built
    fns = endpoints(demo)
    for name in ("generate", "select", "variations", "interpolate", "compose_start", "compose_round",
                 "compose_rewind", "keep", "stop", "save_session", "set_model"):
        assert fns[name].queue is False, name
    search = fns["inspire"]
    assert search.queue is not False and search.concurrency_limit == 1 and search.concurrency_id == "search"
    assert demo._queue.max_size == 64
    assert fns["compose_round"].concurrency_limit is None  # API clients queue even cheap events


def test_serve_is_local_only_whatever_it_is_asked(built):
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
