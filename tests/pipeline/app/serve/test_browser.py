"""The web page end to end in headless Chromium against a live server: token, search, archives, segmentation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-color-profile=srgb",
]
TOKEN = "browser-test-token"  # the live_server fixture's

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page (own session storage) opened with the token in the URL fragment, loaded and ready."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server}/#token={TOKEN}")
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()


def shot(locator, path: Path) -> np.ndarray:
    """An element's screenshot, saved to `path`, as (H, W, 3) uint8 without its border (2 px cut: sub-pixel edges)."""
    data = locator.screenshot(path=str(path))
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[2:-2, 2:-2]


def test_page_asks_for_the_token_then_loads(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_server)
    page.wait_for_selector("#token-form:not([hidden])")
    assert "bearer token" in page.text_content("#error")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("body[data-ready=true]")
    assert "300 images indexed" in page.text_content("#info")
    context.close()


def test_search_shows_a_grid_of_scored_thumbnails(page):
    page.fill("#search-text", "star")
    page.fill("#search-k", "8")
    page.click("#search-go")
    page.wait_for_selector("#search-results figure")
    figures = page.locator("#search-results figure")
    assert figures.count() == 8
    scores = [float(t.split()[1]) for t in figures.locator("figcaption").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    widths = page.eval_on_selector_all("#search-results img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [96] * 8


def test_archive_grid_with_scores(page):
    page.click("button[data-tab=archives]")
    page.click("#archive-concepts button[data-slug=circle]")
    page.wait_for_selector("#archive-grid figure")
    assert page.locator("#archive-grid figure").count() == 16
    assert page.text_content("#archive-title").startswith("circle")
    assert "strength" in page.text_content("#archive-meta")


def test_segmentation_overlay_screenshot(page, serve_root, tmp_path):
    image_path = sorted((serve_root / "benchmark" / "images").iterdir())[0]
    page.click("button[data-tab=segment]")
    assert page.input_value("#seg-segmenter") == "reco" and page.input_value("#seg-bank") == "toy"
    page.set_input_files("#seg-file", str(image_path))
    page.click("#seg-go")
    page.wait_for_selector("body[data-segmented=true]")
    page.screenshot(path=str(tmp_path / "segment_page.png"))
    legend = page.eval_on_selector_all(
        "#seg-legend li", "items => items.map(i => [i.dataset.colour, Number(i.dataset.fraction)])"
    )
    assert len(legend) == 13 and abs(sum(f for _, f in legend) - 1) < 1e-3
    mask = shot(page.locator("#seg-mask"), tmp_path / "mask.png")
    assert abs(mask.shape[0] - 286) <= 1 and abs(mask.shape[1] - 286) <= 1  # 96 px shown at 288 px
    covered = np.zeros(mask.shape[:2], bool)
    for colour, fraction in legend:  # the mask on screen shows each legend colour in the legend's proportion
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        here = np.abs(mask.astype(int) - rgb).max(-1) <= 3
        assert abs(here.mean() - fraction) < 0.02, (colour, here.mean(), fraction)
        covered |= here
    assert covered.mean() > 0.98
    assert sum(f > 0.005 for _, f in legend) >= 2  # background and at least one thing
    picture = shot(page.locator("#seg-image"), tmp_path / "image.png").astype(float)
    overlay = shot(page.locator("#seg-overlay"), tmp_path / "overlay.png").astype(float)
    side = min(picture.shape[0], overlay.shape[0], mask.shape[0])
    picture, overlay, mask = picture[:side, :side], overlay[:side, :side], mask[:side, :side]
    far = np.abs(mask - picture).mean(-1) > 60  # pixels whose label colour stands out from the image
    assert far.mean() > 0.01
    to_blend = np.abs(overlay - (picture + mask) / 2)[far].mean()
    to_image, to_mask = np.abs(overlay - picture)[far].mean(), np.abs(overlay - mask)[far].mean()
    assert to_blend < 0.5 * min(to_image, to_mask), (to_blend, to_image, to_mask)  # the overlay mixes both


def test_upload_errors_are_shown(page, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not really a picture")
    page.click("button[data-tab=segment]")
    page.set_input_files("#seg-file", str(text))
    page.click("#seg-go")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.text_content("#error")


def test_api_docs_render_the_operations(browser, live_server):
    """Swagger UI renders the OpenAPI 3.1 schema FastAPI writes: operations shown, no 'Unable to render' error."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((live_server, "data:")) else None)
    page.goto(f"{live_server}/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/segment']", state="visible", timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
    assert {"/api/query", "/api/query/image", "/api/archives/{model_id}/{run}/{concept}", "/api/segment"} <= set(paths)
    text = page.inner_text("body")
    assert "Unable to render" not in text and "errors" not in page.inner_text(".information-container").lower()
    assert page.locator(".errors-wrapper").count() == 0
    assert outside == []  # nothing fetched from elsewhere
    context.close()


def test_search_says_when_a_concept_looks_absent_from_the_pool(page, serve_root):
    import json
    import shutil

    folder = serve_root / "archives" / "toy" / "toy" / "unicorn"
    shutil.copytree(serve_root / "archives" / "toy" / "toy" / "circle", folder)
    query = json.loads((folder / "query.json").read_text())
    query.update(concept="unicorn", weak=True, standouts=1, weak_reason="only 1 of its 16 items score clearly above")
    (folder / "query.json").write_text(json.dumps(query))
    try:
        page.fill("#search-text", "unicorn")
        page.click("#search-go")
        page.wait_for_selector("#search-notice:not([hidden])")
        notice = page.text_content("#search-notice")
        assert "unicorn" in notice and "absent or rare" in notice and "1 of the 16" in notice
        assert page.locator("#search-results figure").count() == 12  # the hits are still shown below
        page.fill("#search-text", "star")
        page.click("#search-go")
        page.wait_for_selector("#search-status:has-text('“star”')")
        assert page.locator("#search-notice").is_hidden()
    finally:
        shutil.rmtree(folder)


def test_segmenters_and_checkpoints_offered_are_those_the_root_holds(browser, live_server, serve_root, tmp_path):
    import shutil

    from segment.reco_plus import TrainConfig, build_model, save_checkpoint

    def open_segment_tab():
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.goto(f"{live_server}/#token={TOKEN}")
        page.wait_for_selector("body[data-ready=true]")
        page.click("button[data-tab=segment]")
        return context, page

    context, page = open_segment_tab()
    offered = page.eval_on_selector_all("#seg-segmenter option", "options => options.map(o => o.value)")
    assert "reco" in offered and "reco-plus" not in offered and "zegclip" not in offered
    context.close()
    config = TrainConfig(arch="lraspp_mobilenet_v3_large")
    save_checkpoint(serve_root / "ckpt" / "plus", build_model(config.arch, 2), config, ["sky", "star"], {"step": 0})
    try:
        context, page = open_segment_tab()
        page.select_option("#seg-segmenter", "reco-plus")
        assert page.is_visible("#seg-checkpoint") and not page.is_visible("#seg-bank")
        choices = page.eval_on_selector_all("#seg-checkpoint option", "options => options.map(o => o.value)")
        assert choices == ["ckpt/plus"]
        page.set_input_files("#seg-file", str(sorted((serve_root / "benchmark" / "images").iterdir())[0]))
        page.click("#seg-go")
        page.wait_for_selector("body[data-segmented=true]")
        legend = page.eval_on_selector_all("#seg-legend li", "items => items.map(i => i.textContent)")
        assert sorted(item.split("%")[0].rstrip("0123456789.") for item in legend) == ["sky", "star"]
        context.close()
    finally:
        shutil.rmtree(serve_root / "ckpt")


def test_legend_colours_are_fixed_per_concept(page, serve_root):
    from pipeline.core.report import concept_colours

    image_path = sorted((serve_root / "benchmark" / "images").iterdir())[0]
    page.click("button[data-tab=segment]")
    page.set_input_files("#seg-file", str(image_path))
    page.fill("#seg-concepts", "heart,grass")
    page.click("#seg-go")
    page.wait_for_selector("body[data-segmented=true]")
    shown = page.eval_on_selector_all(
        "#seg-legend li",
        "items => items.map(i => [i.children[1].textContent, getComputedStyle(i.children[0]).backgroundColor])",
    )
    expected = {name: "rgb({}, {}, {})".format(*concept_colours([name])[0]) for name in ("heart", "grass")}
    assert dict(shown) == expected
