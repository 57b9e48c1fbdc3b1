"""Sessions as plain data: the tree, strict JSON, PNG metadata, and the same images after a reload."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from studio.imageio import read_png_meta, save_png
from studio.session import Session, SessionError, image_meta, parse_image_meta


def small_session(dim: int = 8) -> Session:
    s = Session(model="tiny", settings={"truncation": 0.7})
    g = torch.Generator().manual_seed(0)
    root = s.add(torch.randn(dim, generator=g), kind="seed", info={"seed": 3}, select=True)
    child = s.add(torch.randn(dim, generator=g), kind="variation", parent=root.id, info={"strength": 0.3})
    cands = [s.add(torch.randn(dim, generator=g), kind="compose", parent=child.id).id for _ in range(4)]
    r0 = s.add_round(cands, parent_round=None)
    r0.choice = [cands[2]]
    more = [s.add(torch.randn(dim, generator=g), kind="compose", parent=cands[2]).id for _ in range(4)]
    r1 = s.add_round(more, parent_round=r0.id)
    r1.choice = [more[1], more[0], more[3], more[2]]
    s.keep(child.id, label="nice")
    return s


def test_tree_paths_children_and_lineage():
    s = small_session()
    assert [n.id for n in s.path(s.rounds[1].choice[0])] == [0, 1, 4, 7]
    assert [n.id for n in s.children(1)] == [2, 3, 4, 5]
    assert [r.id for r in s.lineage(1)] == [0, 1]
    assert s.lineage(None) == []
    with pytest.raises(ValueError, match="parent node 99"):
        s.add([0.0] * 8, kind="seed", parent=99)
    with pytest.raises(ValueError, match="unknown node kind"):
        s.add([0.0] * 8, kind="magic")


def test_json_round_trip_is_exact_and_reproduces_images(tiny_model):
    s = small_session(tiny_model.latent_dim)
    again = Session.from_json(s.to_json(), latent_dims={"tiny": tiny_model.latent_dim})
    assert again.to_dict() == s.to_dict()
    for node_id, node in s.nodes.items():
        assert torch.equal(again.node(node_id).latent(), node.latent())  # bit-exact float32
    z = torch.stack([n.latent() for n in s.nodes.values()])
    z2 = torch.stack([n.latent() for n in again.nodes.values()])
    assert torch.equal(tiny_model.generate(z), tiny_model.generate(z2))
    assert again.kept[0].label == "nice" and again.current == 0


def test_save_and_load_file(tmp_path):
    s = small_session()
    path = s.save(tmp_path / "s.json")
    assert Session.load(path).to_dict() == s.to_dict()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="other"), "not a studio session"),
    (lambda d: d["nodes"][0].update(z=[1.0] * 3), "has 3 numbers, the model needs 8"),
    (lambda d: d["nodes"][0].update(z=["a"] * 8), "not a list of numbers"),
    (lambda d: d["nodes"][0].update(z=[float("nan")] * 8), "NaN"),
    (lambda d: d["nodes"][0].update(parent=1), "cycle"),
    (lambda d: d["nodes"][1].update(parent=77), "missing parent"),
    (lambda d: d["nodes"][1].update(id=0), "appears twice"),
    (lambda d: d["nodes"][0].update(kind="evil"), "unknown kind"),
    (lambda d: d["nodes"][0].update(id=True), "should be a int"),
    (lambda d: d["rounds"][0].update(candidates=[1000]), "not in the session"),
    (lambda d: d["rounds"][0].update(parent_round=1), "missing or later round"),
    (lambda d: d.update(current=500), "current node 500"),
    (lambda d: d.update(model="nope"), "does not have"),
    (lambda d: d.update(nodes="x"), "should be a list"),
])
def test_damaged_sessions_are_refused_with_one_line(mutate, message):
    d = json.loads(small_session().to_json())
    mutate(d)
    with pytest.raises(SessionError, match=message) as err:
        Session.from_json(json.dumps(d), latent_dims={"tiny": 8})
    assert "\n" not in str(err.value)


def test_not_json_is_refused():
    with pytest.raises(SessionError, match=r"not valid JSON \(Expecting .* at line 1, column 3\)"):
        Session.from_json(b"[1")
    with pytest.raises(SessionError, match="this file is a PNG image .*, not a studio session") as err:
        png = io.BytesIO()
        Image.new("L", (8, 8)).save(png, format="PNG")
        Session.from_json(png.getvalue())  # no decoder text ("'utf-8' codec can't decode byte 0x89")
    assert "codec" not in str(err.value)
    with pytest.raises(SessionError, match="this file is binary data, not a studio session"):
        Session.from_json(b"{\"a\": \"\xff\"}")
    with pytest.raises(SessionError, match="not a studio session"):
        Session.from_json("[1, 2]")


def test_png_metadata_round_trip_and_tampering(tmp_path):
    s = small_session()
    node = s.node(1)
    path = save_png(Image.new("L", (8, 8)), tmp_path / "x.png", image_meta("tiny", node, settings=s.settings))
    model, z, rest = parse_image_meta(read_png_meta(path), latent_dims={"tiny": 8})
    assert model == "tiny" and z == node.z and rest["kind"] == "variation"
    assert rest["settings"] == {"truncation": 0.7}
    with pytest.raises(SessionError, match="no studio metadata"):
        parse_image_meta(None, latent_dims={"tiny": 8})
    with pytest.raises(SessionError, match="not from the studio"):
        parse_image_meta({"Software": "GIMP"}, latent_dims={"tiny": 8})
    with pytest.raises(SessionError, match="model 'faces'"):
        parse_image_meta({"model": "faces", "latent": [0.0] * 8}, latent_dims={"tiny": 8})
    with pytest.raises(SessionError, match="has 2 numbers"):
        parse_image_meta({"model": "tiny", "latent": [0.0, 1.0]}, latent_dims={"tiny": 8})
    with pytest.raises(SessionError, match="not a list of numbers"):
        parse_image_meta({"model": "tiny", "latent": "0,0,0"}, latent_dims={"tiny": 8})


def test_cli_sample_metadata_is_understood(tmp_path):
    """`python -m studio sample` writes {"model", "seeds", "truncation", "latent"}: the studio reads it."""
    meta = {"model": "tiny", "seeds": [4], "truncation": None, "latent": [0.5] * 8}
    path = save_png(Image.new("L", (8, 8)), tmp_path / "cli.png", meta)
    model, z, rest = parse_image_meta(read_png_meta(path), latent_dims={"tiny": 8})
    assert (model, z, rest["seeds"]) == ("tiny", [0.5] * 8, [4])


# -- limits: a session file is something a user brings ------------------------------------------

def _largest_session(limits, dim: int = 8) -> dict:
    """A valid session dict at the node, round and kept limits."""
    s = Session(model="tiny")
    g = torch.Generator().manual_seed(1)
    z = torch.randn(limits.nodes, dim, generator=g)
    prev = None
    for i in range(limits.nodes):
        prev = s.add(z[i], kind="compose" if i else "seed", parent=prev if prev is not None and i % 3 else None).id
    rnd = None
    for r in range(limits.rounds):
        rnd = s.add_round([r, r + 1], parent_round=rnd).id
        s.rounds[rnd].choice = [r]
    for i in range(limits.kept):
        s.keep(i, label=f"kept {i}")
    return s.to_dict()


def test_the_largest_allowed_session_loads(tmp_path):
    from studio.session import LIMITS
    d = _largest_session(LIMITS)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(d))
    assert path.stat().st_size <= LIMITS.bytes
    s = Session.load(path, latent_dims={"tiny": 8})
    assert (len(s.nodes), len(s.rounds), len(s.kept)) == (LIMITS.nodes, LIMITS.rounds, LIMITS.kept)


@pytest.mark.parametrize("what, message", [
    ("nodes", "5001 points.*limit of 5000"),
    ("rounds", "501 compose rounds.*limit of 500"),
    ("kept", "201 kept images.*limit of 200"),
])
def test_counts_over_the_limits_are_refused_before_validation(what, message):
    from studio.session import LIMITS
    d = json.loads(small_session().to_json())
    limit = getattr(LIMITS, what)
    # garbage items: the count is refused before any item is looked at
    d[what] = [{"not": "checked"}] * (limit + 1)
    with pytest.raises(SessionError, match=message) as err:
        Session.from_json(json.dumps(d), latent_dims={"tiny": 8})
    assert "\n" not in str(err.value)


def test_composite_rounds_are_limited_too():
    d = json.loads(small_session().to_json())
    d["compose"] = {"rounds": [{}] * 501}
    with pytest.raises(SessionError, match="501 composite rounds"):
        Session.from_dict(d)


def test_deeply_nested_json_is_one_line_not_a_recursion_error():
    bomb = ("[" * 100_000 + "]" * 100_000).encode()  # 200 kB
    with pytest.raises(SessionError, match="nests JSON 100000 levels deep") as err:
        Session.from_json(bomb)
    assert "\n" not in str(err.value)
    d = json.loads(small_session().to_json())
    d["settings"]["x"] = json.loads("[" * 40 + "]" * 40)
    with pytest.raises(SessionError, match="nests JSON 42 levels"):  # the file's text is checked ...
        Session.from_json(json.dumps(d))
    with pytest.raises(SessionError, match="deeper than 32"):  # ... and so is a dict given directly
        Session.from_dict(d)


def test_brackets_inside_strings_are_not_nesting():
    from studio.session import json_depth
    assert json_depth(b'{"a": "[[[[{{{", "b": ["\\"[[["]}') == 2
    s = small_session()
    s.kept[0].label = "[" * 500 + '"\\' 
    assert Session.from_json(s.to_json()).kept[0].label == s.kept[0].label


def test_long_strings_and_keys_are_refused():
    d = json.loads(small_session().to_json())
    d["kept"][0]["label"] = "x" * 2001
    with pytest.raises(SessionError, match="text of 2001 characters"):
        Session.from_json(json.dumps(d))
    d = json.loads(small_session().to_json())
    d["nodes"][0]["info"] = {"k" * 3000: 1}
    with pytest.raises(SessionError, match="key of 3000 characters"):
        Session.from_json(json.dumps(d))


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from studio.session import LIMITS, SessionLimits
    path = tmp_path / "huge.json"
    with path.open("wb") as f:  # sparse: 13 MB on paper, nothing written
        f.truncate(13_000_000)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(SessionError, match="huge.json: 13.0 MB, larger than the limit of 8.0 MB"):
        Session.load(path)
    with pytest.raises(SessionError, match="larger than the limit of 0.0 MB"):
        Session.from_json("{}", limits=SessionLimits(bytes=1))
    assert LIMITS.bytes == 8_000_000
    with pytest.raises(ValueError, match="positive"):
        SessionLimits(kept=0)


def test_thousands_of_kept_images_are_refused_fast():
    """The hostile upload of issue 24: 9,000 kept images in ~13 MB (here under the size limit)."""
    import time
    from studio.session import SessionLimits
    d = json.loads(small_session().to_json())
    d["kept"] = [{"model": "tiny", "z": [0.5] * 64, "label": "k"}] * 9000
    text = json.dumps(d)
    start = time.perf_counter()
    with pytest.raises(SessionError, match="9000 kept images"):
        Session.from_json(text, limits=SessionLimits(bytes=50_000_000))
    assert time.perf_counter() - start < 5  # generous on a loaded machine; ~50 ms measured


def test_a_long_parent_chain_loads():
    s = Session(model="tiny")
    prev = None
    for i in range(5000):
        prev = s.add([0.0] * 8, kind="seed", parent=None if prev is None else prev.id)
    assert len(Session.from_json(s.to_json()).path(prev.id)) == 5000


def _composite_session(state: dict) -> Session:
    """A session whose composite is the preference search state `state` (its tree is not needed here)."""
    s = Session(model="tiny")
    s.compose = state
    return s


def test_a_composites_driver_options_round_trip_through_a_saved_session(tmp_path):
    from optimizers import DriverOptions, PreferenceSearch
    from optimizers.preference_drivers import ChoiceOptions, ImageOptions
    from tests.test_preference_protocol import Linear
    gen = Linear(1)
    options = DriverOptions("bayes-image", None, ChoiceOptions(error_rate=0.2), ImageOptions(steps=2, local=1))
    search = PreferenceSearch(6, k=4, method="pick", optimizer=options, generator=gen, seed=5, strength=0.6)
    for pick in (2, 0, 3):
        search.ask()
        search.tell_pick(pick)
    path = _composite_session(search.to_dict()).save(tmp_path / "s.json")
    again = PreferenceSearch.from_json(Session.load(path).compose, generator=gen)
    assert again.options == options
    torch.testing.assert_close(again.ask(), search.ask())


def test_sessions_saved_before_driver_options_still_load(tmp_path):
    """A composite saved by the code before typed options (tests/data, written at 47c7fee) loads from a
    session file and shows the round it showed then."""
    from optimizers import DriverOptions, PreferenceSearch
    from tests.test_preference_protocol import LEGACY, Linear
    for name, saved in json.loads(LEGACY.read_text()).items():
        path = _composite_session(saved["state"]).save(tmp_path / f"{name}.json")
        search = PreferenceSearch.from_json(Session.load(path).compose, generator=Linear(0))
        assert search.options == DriverOptions.legacy(saved["state"]["optimizer"]), name
        torch.testing.assert_close(search.ask(), torch.tensor(saved["next"]), atol=1e-5, rtol=0)
