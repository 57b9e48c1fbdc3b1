"""Screenshots of the studio with the shipped models, for docs/TOUR.md (written to artifacts/).

Starts `python app.py`, drives Debian's chromium with Playwright through every tab and saves
full-page PNGs under artifacts/screenshots/tour-*.png; copy the good ones to docs/screenshots/.

    .venv/bin/python benchmarks/app_screenshots.py [--catalog assets/catalog.json] [--model faces64]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from benchmarks.app_common import ROOT, studio_process  # noqa: E402
from studio.catalog import Catalog  # noqa: E402
from studio.imageio import grid  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = ROOT / "artifacts" / "screenshots"


def target_image(catalog: Catalog, model_id: str) -> Path:
    """An example shipped for the model, or else one of its own generations (seed 4242)."""
    examples = sorted((catalog.root / "examples").glob(f"{model_id}/*.*")) + sorted((catalog.root / "examples").glob("*.*"))
    if examples:
        return examples[0]
    model = catalog.generator(model_id)
    path = Path(tempfile.mkdtemp()) / "target.png"
    grid(model.generate(model.sample_latents(1, 4242)), pad=0).resize((128, 128)).save(path)
    return path


def shoot(page, name: str, *, full_page: bool = True) -> None:
    """A screenshot without the toasts ("Kept — ...") that would cover the images."""
    time.sleep(1)
    page.locator(".toast-close").evaluate_all("els => els.forEach(e => e.click())")
    time.sleep(0.5)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog")
    p.add_argument("--model", help="model to show (default: the catalog's default)")
    p.add_argument("--width", type=int, default=1400)
    args = p.parse_args()
    catalog = Catalog(args.catalog)
    model_id = args.model or catalog.default_generator()
    OUT.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=120_000)
    with studio_process(args.catalog) as (_proc, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#browse-grid img").first.wait_for()
        if model_id != catalog.default_generator():
            page.locator("#model-picker input").click()
            page.get_by_role("option", name=catalog.get(model_id).title, exact=False).first.click()
            time.sleep(3)
        page.locator("#browse-grid img").nth(1).click()
        expect(page.locator("#browse-variations img")).to_have_count(8)
        page.get_by_role("button", name="Set selected as A").click()
        page.locator("#browse-grid img").nth(5).click()
        expect(page.locator("#browse-info")).to_contain_text("seed 5")
        page.get_by_role("button", name="Set selected as B").click()
        expect(page.locator("#browse-strip img")).to_have_count(8)
        page.locator("#browse-grid img").nth(4).click()
        expect(page.locator("#browse-info")).to_contain_text("seed 4")
        page.locator("#browse-keep").click()
        shoot(page, "tour-browse")

        page.get_by_role("tab", name="Inspire").click()
        page.locator("#inspire-upload input[type=file]").set_input_files(str(target_image(catalog, model_id)))
        expect(page.locator("#inspire-status")).to_contain_text("loaded")
        page.locator("#inspire-run").click()
        expect(page.locator("#inspire-status")).to_contain_text("Done", timeout=600_000)
        page.locator("#inspire-keep").click()
        shoot(page, "tour-inspire")

        page.get_by_role("tab", name="Compose").click()
        page.locator("#compose-new").click()
        expect(page.locator("#compose-candidates img")).to_have_count(9)
        for r, pick in enumerate((4, 2, 7, 0, 5)):
            page.locator("#compose-candidates img").nth(pick).click()
            expect(page.locator("#compose-status")).to_contain_text(f"Round {r + 2}")
        page.locator("#compose-keep").click()
        shoot(page, "tour-compose")

        page.get_by_role("tab", name="Keep & share").click()
        expect(page.locator("#kept-gallery img")).to_have_count(3)
        page.locator("#kept-gallery img").first.click()
        shoot(page, "tour-keep")
        page.get_by_role("button", name="About this model").click()
        shoot(page, "tour-card", full_page=False)
        browser.close()
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
