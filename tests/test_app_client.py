"""The studio's named endpoints through `gradio_client`, against a server running tiny models."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from studio.app.compose import LINEAGE_CELL, LINEAGE_GAP
from studio.app.factory import refresh_outputs
from optimizers import STUDIO_REALISM
from studio.app.testing import running
from studio.testing import TINYRGB_REALISM, write_tiny_catalog
from studio.imageio import read_png_meta, save_png

ENCODER_WEIGHTS = (0.0,) * 6  # the encoder slots of /inspire (tiny-enc is the first)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    catalog = write_tiny_catalog(tmp_path_factory.mktemp("assets"))
    with running(catalog) as (demo, url):
        yield demo, url, catalog.parent


@pytest.fixture
def client(server) -> Client:
    return Client(server[1], verbose=False, download_files=False)  # a fresh browser session each test


def refreshed(demo, component) -> int:
    """Where `component` is among the displays a model switch or a session load refreshes
    (`factory.refresh_outputs`): /set_model returns them in that order, /open_file after its message."""
    return [id(c) for c in refresh_outputs(demo.studio_ui)].index(id(component))


def paths(gallery) -> list[str]:
    items = gallery["value"] if isinstance(gallery, dict) and "value" in gallery else gallery
    return [item["image"]["path"] for item in items]


def strip_rounds(strip) -> int:
    """How many rounds the lineage strip image shows (cells of LINEAGE_CELL px, LINEAGE_GAP apart)."""
    value = strip.get("value", strip) if isinstance(strip, dict) and "__type__" in strip else strip
    if not value:
        return 0
    with Image.open(value["path"]) as im:
        assert im.height == LINEAGE_CELL and (im.width + LINEAGE_GAP) % (LINEAGE_CELL + LINEAGE_GAP) == 0
        return (im.width + LINEAGE_GAP) // (LINEAGE_CELL + LINEAGE_GAP)


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def inspire_args(target: str, *, method: str = "gradient", budget: int = 10, restarts: int = 2,
                 encoders: tuple = ENCODER_WEIGHTS):
    return (handle_file(target), method, budget, restarts, 0, 1.0, *encoders, 1.0, 0.0)


def test_named_endpoints_exist(client):
    names = set(client.view_api(return_format="dict")["named_endpoints"])
    for name in ("generate", "select", "variations", "interpolate", "inspire", "stop", "compose_start",
                 "compose_round", "compose_rewind", "keep", "open_file", "save_session", "set_model"):
        assert f"/{name}" in names


def test_a_model_switch_sets_that_models_realism_weight(client, server):
    realism = refreshed(server[0], server[0].studio_ui.inspire.w_realism)
    assert client.predict("tinyrgb", api_name="/set_model")[realism] == TINYRGB_REALISM
    assert client.predict("tiny", api_name="/set_model")[realism] == STUDIO_REALISM


def test_generate_pages_are_reproducible(client, server):
    first = client.predict(5, 0, 9, 0, api_name="/generate")
    again = client.predict(5, 0, 9, 0, api_name="/generate")
    assert len(paths(first)) == 9
    assert [i["caption"] for i in first["value"]] == [f"seed {s}" for s in range(5, 14)]
    assert [digest(p) for p in paths(first)] == [digest(p) for p in paths(again)]
    page1 = client.predict(5, 1, 16, 0, api_name="/generate")
    assert [i["caption"] for i in page1["value"]][:2] == ["seed 21", "seed 22"]
    truncated = client.predict(5, 0, 9, 0.5, api_name="/generate")
    assert "ψ 0.5" in truncated["value"][0]["caption"]
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(5, 0, 7, 0, api_name="/generate")


def test_select_then_variations(client):
    client.predict(0, 0, 9, 0, api_name="/generate")
    _image, info, export, variations = client.predict("grid", 4, 0.3, api_name="/select")
    assert "seed 4" in info and len(paths(variations)) == 8
    meta = read_png_meta(export["path"])
    assert meta["model"] == "tiny" and len(meta["latent"]) == 8 and meta["info"]["seed"] == 4
    wilder = client.predict(0.9, api_name="/variations")
    assert [digest(p) for p in paths(wilder)] != [digest(p) for p in paths(variations)]
    # walking: a variation becomes the selection, with the grid pick as its parent
    _image, info, _export, _ = client.predict("variations", 2, 0.3, api_name="/select")
    assert "variation" in info and "from seed 4" in info
    with pytest.raises(AppError, match="no image 12 on screen"):
        client.predict("grid", 12, 0.3, api_name="/select")


def test_interpolation_needs_both_ends(client):
    with pytest.raises(AppError, match="set both ends first"):
        client.predict(8, api_name="/interpolate")


def test_compose_three_rounds_rank_and_rewind(client):
    *_, status = client.predict("random", 9, "pick", 0.6, 3, api_name="/compose_start")
    assert "Round 1" in status and "9 candidates" in status
    seen = []
    for r, pick in enumerate((2, 5, 0)):
        candidates, lineage, _best, status = client.predict(str(pick), api_name="/compose_round")
        assert f"Round {r + 2}" in status and len(paths(candidates)) == 9 and strip_rounds(lineage) == r + 1
        seen.append([digest(p) for p in paths(candidates)])
    assert seen[0] != seen[1] != seen[2]
    # back to round 2: its candidates again, lineage of one, then a new branch
    candidates, lineage, _best, status = client.predict(1, api_name="/compose_rewind")
    assert "Round 2" in status and strip_rounds(lineage) == 1
    assert [digest(p) for p in paths(candidates)] == seen[0]
    with pytest.raises(AppError, match="ranking must list each candidate"):
        client.predict("1,2", api_name="/compose_round")
    *_, status = client.predict("random", 4, "rank", 0.6, 0, api_name="/compose_start")
    _c, lineage, _b, status = client.predict("3,1,0,2", api_name="/compose_round")
    assert "Round 2" in status and "4 candidates" in status and strip_rounds(lineage) == 1


def test_compose_with_the_image_driver(client):
    *_, status = client.predict("random", 4, "rank", 0.6, 1, "bayes-image", True, api_name="/compose_start")
    assert "Round 1" in status
    seen = []
    for r in range(2):
        candidates, lineage, _best, status = client.predict("3,1,0,2", api_name="/compose_round")
        assert f"Round {r + 2}" in status and len(paths(candidates)) == 4
        seen.append([digest(p) for p in paths(candidates)])
    candidates, lineage, _best, status = client.predict(1, api_name="/compose_rewind")
    assert "Round 2" in status and [digest(p) for p in paths(candidates)] == seen[0]


def test_compose_needs_a_start(client):
    with pytest.raises(AppError, match="start a composite first"):
        client.predict("0", api_name="/compose_round")
    with pytest.raises(AppError, match="nothing to start from yet"):
        client.predict("browse", 9, "pick", 0.6, 0, api_name="/compose_start")


def test_inspire_streams_and_hands_over_to_compose(client, server):
    target = str(server[2] / "examples" / "gradient0.png")
    job = client.submit(*inspire_args(target, budget=12), api_name="/inspire")
    _best, status, curve = job.result()
    assert "Done" in status and "12 steps" in status
    assert len(job.outputs()) >= 1 and curve["data"]  # the loss curve, one row per streamed step
    *_, status = client.predict("inspire", 9, "pick", 0.5, 0, api_name="/compose_start")
    assert "Round 1" in status
    # with a perceptual term and a Nevergrad optimizer
    job = client.submit(*inspire_args(target, method="TwoPointsDE", budget=24, restarts=8,
                                      encoders=(0.5, 0, 0, 0, 0, 0)), api_name="/inspire")
    assert "Done" in job.result()[1]


def test_inspire_refuses_bad_input_and_keeps_serving(client, server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(AppError, match="notes.txt: not an image file"):
        client.predict(*inspire_args(str(text)), api_name="/inspire")
    target = str(server[2] / "examples" / "gradient0.png")
    with pytest.raises(AppError, match="unknown search method 'Foo'"):
        client.predict(*inspire_args(target, method="Foo"), api_name="/inspire")
    with pytest.raises(AppError, match="greater than maximum"):
        client.predict(*inspire_args(target, budget=10**6), api_name="/inspire")
    assert len(paths(client.predict(0, 0, 9, 0, api_name="/generate"))) == 9  # still serving


def odd_images(folder: Path) -> dict[str, str]:
    """Images people really upload, each in a format that needs converting, plus a bomb."""
    out = {}
    base = Image.radial_gradient("L").resize((40, 30))
    base.convert("CMYK").save(folder / "cmyk.jpg")
    base.convert("I;16").save(folder / "sixteen.png")
    base.convert("P").save(folder / "palette.gif")
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    frames = [base, base.rotate(90), base.rotate(180)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    Image.new("1", (10_000, 10_000)).save(folder / "bomb.png")  # 100 megapixels in a few kB
    for name in ("cmyk.jpg", "sixteen.png", "palette.gif", "alpha.png", "animated.gif", "bomb.png"):
        out[name] = str(folder / name)
    return out


def test_inspire_targets_in_odd_formats(client, tmp_path):
    images = odd_images(tmp_path)
    bomb = images.pop("bomb.png")
    for name, path in images.items():
        _target, status = client.predict(handle_file(path), api_name="/set_target")
        assert f"Target **{name}** loaded" in status
    with pytest.raises(AppError, match="bomb.png: .*(too large|decompression bomb)"):
        client.predict(handle_file(bomb), api_name="/set_target")
    _target, status = client.predict(handle_file(images["alpha.png"]), api_name="/set_target")
    assert "loaded" in status  # still serving after the bomb


def test_export_png_and_continue_from_it(client, server):
    client.predict(0, 0, 9, 0, api_name="/generate")
    _image, _info, export, _ = client.predict("grid", 7, 0.3, api_name="/select")
    export = export["path"]
    assert read_png_meta(export)["info"]["seed"] == 7
    other = Client(server[1], verbose=False, download_files=False)
    out = other.predict(handle_file(export), api_name="/open_file")
    assert "Continuing from" in out[0] and "seed 7 of model `tiny`" in out[0]
    assert "from PNG" in out[1 + refreshed(server[0], server[0].studio_ui.browse.info)]
    # the other session continues from the same latent: composing from it starts there
    *_, status = other.predict("browse", 4, "pick", 0.5, 0, api_name="/compose_start")
    assert "Round 1" in status


def test_bad_files_get_one_line_messages(client, server, tmp_path):
    cases = {}
    (tmp_path / "notes.txt").write_text("hello")
    cases["notes.txt"] = "not an image file"
    Image.new("RGB", (16, 16)).save(tmp_path / "plain.png")
    cases["plain.png"] = "no studio metadata"
    save_png(Image.new("L", (8, 8)), tmp_path / "foreign.png", {"model": "faces999", "latent": [0.0] * 8})
    cases["foreign.png"] = "faces999"
    save_png(Image.new("L", (8, 8)), tmp_path / "tampered.png", {"model": "tiny", "latent": [0.0] * 3})
    cases["tampered.png"] = "has 3 numbers"
    Image.effect_noise((128, 128), 64).save(tmp_path / "noise.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "noise.png").read_bytes()[:4000])
    cases["cut.png"] = "truncated or corrupt"
    (tmp_path / "s.json").write_text(json.dumps({"schema": "gan-studio-session/1", "model": "tiny", "nodes": 3}))
    cases["s.json"] = "should be a list"
    for name, message in cases.items():
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(tmp_path / name)), api_name="/open_file")
    assert len(paths(client.predict(0, 0, 9, 0, api_name="/generate"))) == 9


def test_session_saves_and_restores_the_same_images(client, server):
    client.predict(3, 1, 9, 0, api_name="/generate")
    client.predict("grid", 4, 0.3, api_name="/select")
    client.predict(api_name="/keep")
    client.predict("random", 4, "pick", 0.6, 0, api_name="/compose_start")
    candidates, *_ = client.predict("1", api_name="/compose_round")
    saved = client.predict(api_name="/save_session")["value"]["path"]
    data = json.loads(Path(saved).read_text())
    assert data["settings"]["seed"] == 3 and len(data["kept"]) == 1 and len(data["rounds"]) == 1
    fresh = Client(server[1], verbose=False, download_files=False)
    out = fresh.predict(handle_file(saved), api_name="/open_file")
    assert "Restored session" in out[0]
    # the compose round on screen comes back identical, and the lineage with it
    compose = server[0].studio_ui.compose
    shown = paths(out[1 + refreshed(server[0], compose.candidates)])
    assert [digest(p) for p in shown] == [digest(p) for p in paths(candidates)]
    assert strip_rounds(out[1 + refreshed(server[0], compose.lineage)]) == 1
    restored = fresh.predict(3, 1, 9, 0, api_name="/generate")
    original = client.predict(3, 1, 9, 0, api_name="/generate")
    assert [digest(p) for p in paths(restored)] == [digest(p) for p in paths(original)]
    *_, status = fresh.predict("0", api_name="/compose_round")
    assert "Round 3" in status
    # a tampered composite is refused as a whole, and the session in use stays as it was
    data["compose"]["rounds"][0]["order"] = [99]
    bad = Path(saved).with_name("tampered.json")
    bad.write_text(json.dumps(data))
    with pytest.raises(AppError, match="composite cannot be restored"):
        fresh.predict(handle_file(str(bad)), api_name="/open_file")
    *_, status = fresh.predict("0", api_name="/compose_round")
    assert "Round 4" in status


def test_two_clients_never_share_state(server):
    a = Client(server[1], verbose=False, download_files=False)
    b = Client(server[1], verbose=False, download_files=False)
    a.predict("random", 9, "pick", 0.6, 0, api_name="/compose_start")
    a.predict("4", api_name="/compose_round")
    with pytest.raises(AppError, match="start a composite first"):
        b.predict("4", api_name="/compose_round")
    b.predict(100, 0, 9, 0, api_name="/generate")
    with pytest.raises(AppError, match="no image 0 on screen"):
        a.predict("grid", 0, 0.3, api_name="/select")  # a never generated a page; b's page is not a's
