"""Sessions as plain data: the tree, strict JSON, PNG metadata, and the same images after a reload."""
from __future__ import annotations

import json

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
    with pytest.raises(SessionError, match="not valid JSON"):
        Session.from_json(b"\x89PNG\r\n")
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
