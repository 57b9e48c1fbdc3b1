"""End to end in a real browser: Playwright for Python driving Debian's chromium.

Enable with `apt-get install -y chromium` and `pip install -r requirements.txt` (playwright); `.ci/run`
does both. Screenshots go to artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
HOW = "install it with `apt-get install -y chromium` and `pip install -r requirements.txt` (or run .ci/run)"

if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need chromium at {CHROMIUM}: {HOW}", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip(f"browser tests need the playwright package: {HOW}", allow_module_level=True)

from studio.app.compose import LINEAGE_CELL, LINEAGE_GAP  # noqa: E402
from studio.app.testing import running  # noqa: E402
from studio.testing import write_tiny_catalog  # noqa: E402
from studio.imageio import read_png_meta  # noqa: E402

TIMEOUT_MS = 60_000  # the machine may be busy training models
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    catalog = write_tiny_catalog(tmp_path_factory.mktemp("assets"))
    with running(catalog) as (demo, url):
        yield url, catalog.parent


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, studio):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(studio[0])
    pg.locator("#browse-grid img").first.wait_for()
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_tab(pg, name: str) -> None:
    pg.get_by_role("tab", name=name).click()


def test_browse_click_shows_variations(page):
    expect(page.locator("#browse-grid img")).to_have_count(9)
    page.locator("#browse-grid img").nth(4).click()
    expect(page.locator("#browse-info")).to_contain_text("seed 4")
    expect(page.locator("#browse-variations img")).to_have_count(8)
    expect(page.locator("#browse-selected img")).to_have_count(1)
    expect(page.locator("#browse-grid .thumbnail-item.selected")).to_have_count(1)  # the clicked tile
    first = page.locator("#browse-variations img").first.get_attribute("src")
    page.locator("#browse-variations img").nth(1).click()  # walk to a variation
    expect(page.locator("#browse-info")).to_contain_text("variation")
    expect(page.locator("#browse-variations img").first).not_to_have_attribute("src", first)
    # the new variations are not the clicked one: no highlight left on tile 1
    expect(page.locator("#browse-variations .thumbnail-item.selected")).to_have_count(0)
    page.get_by_role("button", name="Next ▶").click()
    expect(page.locator("#browse-grid img").first).to_have_attribute("alt", "seed 9")
    expect(page.locator("#browse-grid .thumbnail-item.selected")).to_have_count(0)  # another page: none
    shot(page, "browse")


def test_upload_inspire_result(page, studio):
    open_tab(page, "Inspire")
    page.locator("#inspire-upload input[type=file]").set_input_files(str(studio[1] / "examples" / "gradient1.png"))
    expect(page.locator("#inspire-status")).to_contain_text("loaded")
    for slider, value in (("#inspire-budget", "10"), ("#inspire-restarts", "2"), ("#inspire-realism", "0")):
        box = page.locator(f"{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#inspire-run").click()
    expect(page.locator("#inspire-status")).to_contain_text("Done", timeout=120_000)
    expect(page.locator("#inspire-best img")).to_have_count(1)
    shot(page, "inspire")
    page.locator("#inspire-compose").click()  # hand the result to Compose
    expect(page.get_by_role("tab", name="Compose")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#compose-status")).to_contain_text("Round 1")


def test_three_compose_rounds_by_clicking(page):
    open_tab(page, "Compose")
    page.locator("#compose-new").click()
    expect(page.locator("#compose-candidates img")).to_have_count(9)
    def sources():
        return page.locator("#compose-candidates img").evaluate_all("els => els.map(e => e.src)")

    first_choice = None
    for r in range(3):
        before = sources()
        page.locator("#compose-candidates img").nth([4, 0, 8][r]).click()
        expect(page.locator("#compose-status")).to_contain_text(f"Round {r + 2}")
        first_choice = first_choice or page.locator("#compose-best img").get_attribute("src")
        expect(page.locator("#compose-lineage")).to_contain_text("round 1" if r == 0 else f"rounds 1–{r + 1}")
        expect(page.locator("#compose-candidates img").last).not_to_have_attribute("src", before[-1])
        assert len(set(sources()) - set(before)) >= 7  # new candidates (the current choice may stay)
        expect(page.locator("#compose-candidates .thumbnail-item.selected")).to_have_count(0)  # a new round
    expect(page.locator("#compose-best img")).to_have_count(1)
    shot(page, "compose")
    click_lineage_round(page, 0)  # back to round 1's choice: it is current again, round 2 to choose
    expect(page.locator("#compose-status")).to_contain_text("Round 2")
    expect(page.locator("#compose-lineage")).to_contain_text("Lineage: round 1 ")
    # served files are named by their content: the same picture as right after round 1
    expect(page.locator("#compose-best img")).to_have_attribute("src", first_choice)


def click_lineage_round(page, j: int) -> None:
    """Click the middle of round j's cell in the lineage strip image, wherever the page scaled it."""
    strip = page.locator("#compose-lineage img")
    x, y = strip.evaluate("""(img, c) => {
        const b = img.getBoundingClientRect();
        const r = Math.min(b.width / img.naturalWidth, b.height / img.naturalHeight, 1);
        return [(b.width - img.naturalWidth * r) / 2 + c * r, b.height / 2];
    }""", (LINEAGE_CELL + LINEAGE_GAP) * j + LINEAGE_CELL / 2)
    strip.click(position={"x": x, "y": y})


def test_export_png_and_load_it_back(page, tmp_path):
    page.locator("#browse-grid img").nth(6).click()
    expect(page.locator("#browse-info")).to_contain_text("seed 6")
    with page.expect_download() as download:
        page.locator("#browse-export").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert read_png_meta(path)["info"]["seed"] == 6
    page.locator("#browse-keep").click()
    open_tab(page, "Keep & share")
    expect(page.locator("#kept-gallery img")).to_have_count(1)
    page.locator("#open-file input[type=file]").set_input_files(str(path))
    expect(page.get_by_role("tab", name="Browse")).to_have_attribute("aria-selected", "true")  # switched
    expect(page.locator("#browse-info")).to_contain_text("from PNG")
    expect(page.locator("#browse-variations img")).to_have_count(8)
    shot(page, "reopened")
    open_tab(page, "Keep & share")
    expect(page.locator("#open-msg")).to_contain_text(re.compile(r"Continuing from .*seed 6"))


def test_bad_upload_shows_a_message_and_the_app_keeps_serving(page, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    open_tab(page, "Inspire")
    page.locator("#inspire-upload input[type=file]").set_input_files(str(bad))
    expect(page.get_by_text("notes.txt: not an image file")).to_be_visible()
    shot(page, "bad-upload")
    open_tab(page, "Browse")
    page.locator("#browse-grid img").nth(1).click()
    expect(page.locator("#browse-info")).to_contain_text("seed 1")
    time.sleep(0.2)


def toast(page, text: str):
    return page.locator("[data-testid=toast-body]").filter(has_text=text)


def test_quick_buttons_say_what_happened(page):
    page.locator("#browse-keep").click()  # nothing selected yet: a refusal on screen, not a silent 500
    expect(toast(page, "select an image first")).to_be_visible()
    page.get_by_role("button", name="Set selected as A").click()
    expect(toast(page, "then set it as an end of the interpolation")).to_be_visible()
    open_tab(page, "Compose")
    page.locator("#compose-keep").click()
    expect(toast(page, "start a composite first")).to_be_visible()
    page.locator("#compose-undo").click()  # a round event that fails: refused, and the cover goes
    expect(toast(page, "start a composite first (random, from Browse or from Inspire)")).to_be_visible()
    expect(page.locator("#compose-candidates.studio-busy")).to_have_count(0)
    open_tab(page, "Browse")
    page.locator("#browse-grid img").nth(2).click()
    expect(page.locator("#browse-info")).to_contain_text("seed 2")
    page.locator("#browse-keep").click()
    expect(toast(page, "Kept — see the Keep & share tab")).to_be_visible()
    shot(page, "kept-toast")


def test_a_slow_round_covers_the_candidates_and_takes_no_second_click(page, monkeypatch):
    from studio.app import compose

    def slow_choose(*args, **kwargs):
        time.sleep(3)  # a bayes-image round on a busy CPU
        return real_choose(*args, **kwargs)

    real_choose = compose.choose
    monkeypatch.setattr(compose, "choose", slow_choose)
    open_tab(page, "Compose")
    page.locator("#compose-new").click()
    expect(page.locator("#compose-candidates img")).to_have_count(9)
    page.locator("#compose-candidates img").nth(0).click()
    covered = page.locator("#compose-candidates.studio-busy")
    expect(covered).to_have_attribute("data-busy", "Working out the next round…")
    shot(page, "compose-busy")
    page.locator("#compose-candidates img").nth(1).click(force=True)  # lands on nothing while covered
    expect(page.locator("#compose-status")).to_contain_text("Round 2")
    expect(covered).to_have_count(0)
    time.sleep(4)  # a second pick, had it got through, would have finished by now
    expect(page.locator("#compose-status")).to_contain_text("Round 2")
    expect(page.locator("#compose-lineage")).to_contain_text("Lineage: round 1 ")


def test_an_optimizer_change_mid_composite_is_said_and_can_go_on_from_the_choice(page):
    open_tab(page, "Compose")
    page.locator("#compose-new").click()
    page.locator("#compose-candidates img").nth(3).click()
    expect(page.locator("#compose-status")).to_contain_text("Round 2")
    choice = page.locator("#compose-best img").get_attribute("src")
    page.locator("#compose-advanced").get_by_text("Advanced").click()
    page.locator("#compose-optimizer input").click()
    page.get_by_role("option", name="elitist", exact=True).click()
    status = page.locator("#compose-status")
    expect(status).to_contain_text("Optimizer elitist: applies to the next composite")
    expect(status).to_contain_text("Round 2")  # the composite in progress is untouched
    expect(toast(page, "applies to the next composite")).to_be_visible()
    page.locator("#compose-from-best").click()
    expect(status).to_contain_text("Round 1")
    expect(status).to_contain_text("optimizer elitist")
    expect(status).not_to_contain_text("applies to the next composite")
    expect(page.locator("#compose-best img")).to_have_attribute("src", choice)  # it goes on from the choice


def test_foreign_files_on_the_png_box_are_named_for_what_they_are(page, tmp_path):
    from PIL import Image

    open_tab(page, "Keep & share")
    for name, what in (("photo.jpg", "a JPEG image"), ("anim.gif", "a GIF image"), ("scan.tiff", "a TIFF image")):
        Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / name)
        page.locator("#open-file input[type=file]").set_input_files(str(tmp_path / name))
        expect(toast(page, f"{name} is {what}: drop a PNG exported by the studio")).to_be_visible()
    png = tmp_path / "renamed.json"  # a PNG with a session's name: no decoder text
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    page.locator("#open-file input[type=file]").set_input_files(str(png))
    expect(toast(page, "no studio metadata")).to_be_visible()
    expect(page.get_by_text("codec can't decode")).to_have_count(0)
