"""The page in a real browser (headless Debian Chromium through Playwright).

Upload an example, pick a hosted provider (the fake fal server), run, see
the result and the cost line; switch to mask-only and to a colour and see
the image change with no second provider call (counted at the fake server);
then compare two providers. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.test_app import EXAMPLE, ROOT, add_tiny_rmbg14, app_config, hub_cache, serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def page_and_fakes(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with FalFake() as fal, RunwareFake() as runware, hub_cache(tmp_path_factory.mktemp("hub")) as cache:
        add_tiny_rmbg14(cache)
        with serve(app_config(fal, runware)) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector("#run")
            try:
                yield page, fal, runware
            finally:
                browser.close()


def result_src(page) -> str:
    """The src of the 'after' image of the before/after slider."""
    images = page.locator("#result img")
    return images.nth(images.count() - 1).get_attribute("src") or ""


# The after image's top-left pixel (background in every example), read in the page.
CORNER_IS = """async ([old, want]) => {
    const imgs = document.querySelectorAll('#result img');
    const img = imgs[imgs.length - 1];
    if (!img || !img.src || img.src === old) return false;
    const bitmap = await createImageBitmap(await (await fetch(img.src)).blob());
    const ctx = new OffscreenCanvas(1, 1).getContext('2d');
    ctx.drawImage(bitmap, 0, 0, 1, 1, 0, 0, 1, 1);
    const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
    if (want === 'black') return r < 40 && r === g && g === b;
    if (want === 'red') return r > 200 && g < 60 && b < 60;
    return r === 255 && g === 255 && b === 255;  // 'white': the checkerboard's first square
}"""


def wait_for_result(page, old: str, corner: str) -> str:
    """Poll until the after image is new and its corner is `corner`; its src.
    (page.evaluate awaits the async check; wait_for_function would not.)"""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(CORNER_IS, [old, corner]):
        if time.monotonic() > deadline:
            raise AssertionError(f"the result never became new with a {corner} corner")
        page.wait_for_timeout(100)
    return result_src(page)


def choose(page, label: str, option_starts_with: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.locator("[role=option]", has_text=option_starts_with).first.click()


def enter_fal_key(page) -> None:
    field = page.get_by_label("fal.ai key")
    if not field.is_visible():
        page.get_by_text("API keys for hosted providers").click()
    field.fill(FAL_KEY)
    field.blur()


def photo_in_tab(page, tab: str, elem_id: str) -> None:
    """With the fal key in the page, open `tab` and upload the example photo into #elem_id."""
    from playwright.sync_api import expect

    enter_fal_key(page)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(EXAMPLE))
    expect(page.locator(f"#{elem_id} img")).to_have_count(1)


def fresh_page(page, width: int, height: int):
    """A new page (a new browser session) on the same app."""
    fresh = page.context.browser.new_page(viewport={"width": width, "height": height})
    fresh.set_default_timeout(TIMEOUT_MS)
    fresh.goto(page.url.split("?")[0])
    fresh.wait_for_selector("#run")
    return fresh


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_remove_then_restyle_without_a_second_call(page_and_fakes):
    from playwright.sync_api import expect

    page, fal, _ = page_and_fakes
    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    expect(page.locator("#input-image img")).to_have_count(1)

    enter_fal_key(page)
    choose(page, "Provider", "fal.ai · Bria RMBG 2.0 — ready")  # the key made it ready
    page.locator("#run").click()

    cost = page.locator("#cost-line")
    expect(cost).to_contain_text("this image: $0.0180 (estimated)")
    expect(cost).to_contain_text("session: $0.0180 hosted (cap $1.00)")
    expect(cost).to_contain_text("At 100,000 images/month:")
    first = wait_for_result(page, "", "white")
    assert sum(call.method == "POST" for call in fal.calls) == 1
    calls = len(fal.calls)
    shot(page, "remove.png")

    page.locator("#mask-only input[type=checkbox]").check()
    masked = wait_for_result(page, first, "black")
    page.locator("#mask-only input[type=checkbox]").uncheck()
    page.locator("#background input[value=colour]").check()
    page.locator("#colour button.dialog-button").click()
    hex_box = page.locator("#colour input[type=text]")
    hex_box.fill("#ff0000")
    hex_box.press("Enter")
    page.locator("h1").click()  # close the picker
    coloured = wait_for_result(page, masked, "red")
    assert len({first, masked, coloured}) == 3
    expect(page.locator("#download")).to_contain_text("Download PNG")
    assert len(fal.calls) == calls  # re-rendered from the cached matte: no new call
    shot(page, "remove-colour.png")


def test_compare_ticks_the_ready_free_model_and_adds_a_hosted_one(page_and_fakes):
    from playwright.sync_api import expect

    page, fal, _ = page_and_fakes
    photo_in_tab(page, "Compare", "compare-image")
    boxes = page.locator("#compare-providers")
    # ticked on arrival: every local model that is ready and free here (RMBG-1.4 has weights;
    # U2-Net-p too when another test module fetched its file); nothing slow, nothing paid
    expect(boxes.get_by_label("BRIA RMBG-1.4 (IS-Net, local) — ready")).to_be_checked()
    expect(boxes.get_by_label("fal.ai · Bria RMBG 2.0 — ready")).not_to_be_checked()
    ticked = boxes.locator("input:checked").count()
    assert ticked in (1, 2)
    boxes.get_by_label("fal.ai · Bria RMBG 2.0 — ready").check()  # "ready": the key is in the page
    page.locator("#compare-run").click()

    expect(page.locator("#compare-gallery img")).to_have_count(ticked + 1)
    expect(page.locator("#compare-gallery")).to_contain_text("fal-bria · ")
    expect(page.locator("#compare-table")).to_contain_text("rmbg-1.4")
    expect(page.locator("#compare-agreement")).to_contain_text("fal-bria")
    expect(page.locator("#compare-slider img")).to_have_count(2)
    assert sum(call.method == "POST" for call in fal.calls) >= 1
    shot(page, "compare.png")


NOT_CLIPPED = """() => {
    const clipped = [...document.querySelectorAll('.label-text, label span, [data-testid=block-info]')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
        .map(e => e.textContent.trim());
    return {overflow: document.documentElement.scrollWidth - window.innerWidth, clipped};
}"""


def test_a_calm_page_errors_inline_keep_the_result_and_fit_narrow_screens(page_and_fakes, tmp_path):
    from playwright.sync_api import expect

    page = fresh_page(page_and_fakes[0], 1024, 900)
    message = page.locator("#message")
    expect(page.locator("#download")).to_be_hidden()  # nothing to download yet

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 10)
    page.locator("#input-image input[type=file]").set_input_files(str(broken))
    expect(message).to_contain_text("broken.png")  # said at upload, before any run
    expect(message).to_be_visible()

    page.locator("#background input[value=image]").check()  # no upload yet: nothing to complain about
    expect(page.locator("#background-image")).to_be_visible()
    page.locator("#background input[value=transparent]").check()

    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    expect(message).to_be_hidden()
    enter_fal_key(page)
    choose(page, "Provider", "fal.ai · Bria RMBG 2.0 — ready")
    page.locator("#run").click()
    first = wait_for_result(page, "", "white")
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#download")).to_contain_text("Download PNG")

    choose(page, "Provider", "BRIA RMBG-2.0")  # gated, no HF_TOKEN here: refused, fast
    page.locator("#run").click()
    expect(message).to_contain_text("Could not do that:")
    expect(message).to_contain_text("HF_TOKEN")
    assert result_src(page) == first  # the last result stays
    expect(page.locator("#result")).not_to_contain_text("Error")
    expect(page.locator("#cost-line")).to_contain_text("fal.ai · Bria RMBG 2.0")
    shot(page, "remove-error-inline.png")

    for width in (1024, 420):
        page.set_viewport_size({"width": width, "height": 900})
        layout = page.evaluate(NOT_CLIPPED)
        assert layout == {"overflow": 0, "clipped": []}, (width, layout)
        shot(page, f"remove-{width}.png")
    page.close()


def test_clicks_on_the_photo_become_sam_points(page_and_fakes):
    from playwright.sync_api import expect

    page = fresh_page(page_and_fakes[0], 1280, 1000)
    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    picture = page.locator("#input-image img")
    expect(picture).to_have_count(1)
    page.get_by_text("Pick the subject (SAM 2)").click()
    points = page.locator("#sam-points textarea")
    box = picture.bounding_box()
    picture.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    expect(points).to_have_value(re.compile(r"^\d+, \d+, keep$"))
    page.locator("#click-mode input[value=drop]").check()
    picture.click(position={"x": 5, "y": 5})
    expect(points).to_have_value(re.compile(r"^\d+, \d+, keep; \d+, \d+, drop$"))
    x, y = (int(v) for v in points.input_value().split(";")[0].split(",")[:2])
    assert abs(x - 225) <= 12 and abs(y - 150) <= 12  # image pixels of the 451x300 photo, not screen pixels
    page.locator("#click-mode input[value='box corner']").check()
    corners = page.locator("#sam-box input")
    picture.click(position={"x": 10, "y": 10})
    expect(corners).to_have_value(re.compile(r"^\d+, \d+$"))
    picture.click(position={"x": box["width"] - 10, "y": box["height"] - 10})
    expect(corners).to_have_value(re.compile(r"^\d+, \d+, \d+, \d+$"))
    x0, y0, x1, y1 = (int(v) for v in corners.input_value().split(","))
    assert x0 < 30 and y0 < 30 and x1 > 420 and y1 > 270  # the photo's pixels, 451x300
    page.locator("#sam-clear").click()
    expect(points).to_have_value("")
    expect(corners).to_have_value("")
    shot(page, "sam-points.png")
    page.close()


def test_ai_background_tab_generates_with_an_estimate_first(page_and_fakes):
    from playwright.sync_api import expect

    page, fal, _ = page_and_fakes
    photo_in_tab(page, "AI background", "ai-image")
    estimate = page.locator("#ai-estimate")
    expect(estimate).to_contain_text("Estimated: 1 × $0.0400 = $0.0400")
    page.locator("#ai-prompt textarea").fill("a wooden table by a window")
    page.locator("#ai-run").click()
    expect(page.locator("#ai-gallery img")).to_have_count(1)
    expect(page.locator("#ai-cost-line")).to_contain_text("1 image: $0.0400 (estimated)")
    expect(page.locator("#ai-message")).to_be_hidden()
    assert sum("background/replace" in c.path and c.method == "POST" for c in fal.calls) >= 1
    shot(page, "ai-background.png")
