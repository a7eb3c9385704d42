"""The page in a real browser (headless Debian Chromium through Playwright).

Upload an example, pick a hosted provider (the fake fal server), run, see
the result and the cost line; switch to mask-only and to a colour and see
the image change with no second provider call (counted at the fake server);
then compare two providers. Screenshots go to test-artifacts/ with
RMBG_TEST_SCREENSHOTS=1 set (tests.support.browser.shot).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, add_tiny_rmbg14, app_config, calibrated, hub_cache, serve  # noqa: E402
from tests.support.browser import CHROMIUM, another_page, enter_fal_key, opened_app, shot  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def page_and_fakes(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # RMBG-1.4 (IS-Net's timing, rmbg.defaults.SAME_TIMING) as fast as a 2-core machine measured it:
    # the default, whatever the load; not measured again (seconds of CPU) for each run of this file
    speeds = {"isnet-general": 2.6, "rmbg-1.4": 2.6}
    with FalFake() as fal, RunwareFake() as runware, hub_cache(tmp_path_factory.mktemp("hub")) as cache:
        add_tiny_rmbg14(cache)
        with (
            calibrated(tmp_path_factory.mktemp("cache"), speeds),
            serve(app_config(fal, runware)) as url,
            sync_playwright() as pw,
        ):
            browser, page = opened_app(pw, url, slow_expect=True)  # Compare runs two models on a shared CPU
            try:
                yield page, fal, runware
            finally:
                browser.close()


@pytest.fixture(scope="module")
def spare(page_and_fakes):
    """A second page on the same app (a session of its own: no key pasted, no result yet), shared in
    file order by the tests that need such a page; each sets the viewport it checks. A page load
    costs seconds of CPU (the app's config, gradio's scripts): one here, not one per test, in the
    first page's browser context (its scripts already compiled)."""
    page = another_page(page_and_fakes[0])
    try:
        yield page
    finally:
        page.close()


def result_src(page) -> str:
    """The src of the 'after' image of the before/after slider."""
    images = page.locator("#result img")
    return images.nth(images.count() - 1).get_attribute("src") or ""


# The after image's top-left pixel (background in every example), read in the page from the
# picture the page shows (same origin: its canvas is readable) once it is new and decoded.
CORNER_IS = """([old, want]) => {
    const imgs = document.querySelectorAll('#result img');
    const img = imgs[imgs.length - 1];
    if (!img || !img.src || img.src === old || !img.complete || !img.naturalWidth) return false;
    const ctx = new OffscreenCanvas(1, 1).getContext('2d');
    ctx.drawImage(img, 0, 0, 1, 1, 0, 0, 1, 1);
    const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
    if (want === 'black') return r < 40 && r === g && g === b;
    if (want === 'red') return r > 200 && g < 60 && b < 60;
    return r === 255 && g === 255 && b === 255;  // 'white': the checkerboard's first square
}"""


def wait_for_result(page, old: str, corner: str) -> str:
    """Wait until the after image is new and its corner is `corner` (checked in the page as it
    changes); its src."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(CORNER_IS, arg=[old, corner])
    except PlaywrightTimeout:
        raise AssertionError(f"the result never became new with a {corner} corner") from None
    return result_src(page)


def choose(page, label: str, option_starts_with: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.locator("[role=option]", has_text=option_starts_with).first.click()


def photo_in_tab(page, tab: str, elem_id: str) -> None:
    """With the fal key in the page, open `tab` and upload the example photo into #elem_id."""
    from playwright.sync_api import expect

    enter_fal_key(page)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(EXAMPLE))
    expect(page.locator(f"#{elem_id} img")).to_have_count(1)


def fits(page) -> None:
    """Wait until the page, laid out again for its viewport, needs no sideways scrolling."""
    page.wait_for_function("() => document.documentElement.scrollWidth <= window.innerWidth")


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
    expect(cost).to_contain_text(re.compile(r"model \d+\.\d\d s · total \d+\.\d\d s"))
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
    swatch = page.locator("#colour button.dialog-button")
    expect(swatch).to_be_visible()
    assert swatch.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"  # a white swatch stays visible
    hex_field = page.locator("#colour-hex input")
    expect(hex_field).to_have_value("#ffffff")
    hex_field.fill("#12345z")  # not a colour: said under the field, the swatch and the result stay
    hex_field.press("Enter")
    expect(page.locator("#colour-hex")).to_contain_text("'#12345z' is not a colour: write #RRGGBB")
    hex_field.fill("red")  # a name or a hex code, typed beside the swatch
    hex_field.press("Enter")
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
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 1000})
        fits(page)
        assert page.evaluate(WHOLE_AND_READABLE) == {"overflow": 0, "cropped": [], "cut": []}, width
        shot(page, f"compare-{width}.png")
    page.set_viewport_size({"width": 1400, "height": 1000})


# Compare's results: every gallery picture shown whole (contained, not
# cropped to fill its tile), every table cell's text readable in full.
WHOLE_AND_READABLE = """() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    cropped: [...document.querySelectorAll('#compare-gallery img')]
        .filter(e => getComputedStyle(e).objectFit !== 'contain').map(e => e.alt),
    cut: [...document.querySelectorAll('#compare-table td, #compare-agreement td')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim()),
})"""


NOT_CLIPPED = """() => {
    const clipped = [...document.querySelectorAll('.label-text, label span, [data-testid=block-info]')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
        .map(e => e.textContent.trim());
    return {overflow: document.documentElement.scrollWidth - window.innerWidth, clipped};
}"""


def test_a_calm_page_errors_inline_keep_the_result_and_fit_narrow_screens(spare, tmp_path):
    from playwright.sync_api import expect

    page = spare  # the first test on it: no result yet
    page.set_viewport_size({"width": 1024, "height": 900})
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

    choose(page, "Provider", "BRIA RMBG-2.0")  # gated, no token here: refused, fast
    page.locator("#run").click()
    expect(message).to_contain_text("Could not do that:")
    expect(message).to_contain_text("the server needs a Hugging Face token")
    expect(message).not_to_contain_text("HF_TOKEN")
    assert result_src(page) == first  # the last result stays
    expect(page.locator("#result")).not_to_contain_text("Error")
    expect(page.locator("#cost-line")).to_contain_text("fal.ai · Bria RMBG 2.0")
    shot(page, "remove-error-inline.png")

    for width in (1024, 420):
        page.set_viewport_size({"width": width, "height": 900})
        layout = page.evaluate(NOT_CLIPPED)
        assert layout == {"overflow": 0, "clipped": []}, (width, layout)
        shot(page, f"remove-{width}.png")


# The marked copy's pixel at a fraction (fx, fy) of its size, read in the page from the picture
# it shows (same origin: its canvas is readable); null until one is decoded.
MARK_AT = """([fx, fy]) => {
    const img = document.querySelector('#sam-marks img');
    if (!img || !img.src || !img.complete || !img.naturalWidth) return null;
    const ctx = new OffscreenCanvas(1, 1).getContext('2d');
    ctx.drawImage(img, Math.round(fx * img.naturalWidth), Math.round(fy * img.naturalHeight), 1, 1, 0, 0, 1, 1);
    return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)];
}"""

# What a mark's pixel must be, as functions of [r, g, b] run in the page.
GREEN = "rgb => rgb[1] > 120 && rgb[0] < 80 && rgb[2] < 120"  # a keep point
NOT_GREEN = f"rgb => !({GREEN})(rgb)"
RED = "rgb => rgb[0] > 180 && rgb[1] < 80"  # a drop point
BLUE = "rgb => rgb[2] > rgb[0] + 80"  # the box's edge


def mark_at(page, fx: float, fy: float, want: str) -> None:
    """Wait until the marked copy's pixel at (fx, fy) satisfies `want` (checked in the page as it changes)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"at => {{ const rgb = ({MARK_AT})(at); return !!rgb && ({want})(rgb); }}", arg=[fx, fy])
    except PlaywrightTimeout:
        raise AssertionError(f"the mark at {fx, fy} is {page.evaluate(MARK_AT, [fx, fy])}, not {want}") from None


def on_picture(page, css: str, fx: float, fy: float) -> dict:
    """The click position, in the img element `css` names, of the point (fx, fy) of the
    picture it shows (scaled to fit, centred: object-fit contain)."""
    # the picture may still be loading, or gradio may have put a new <img> in its place: wait, looking
    # the element up afresh each time, until the one `css` names has a decoded picture
    page.wait_for_function(
        "sel => { const e = document.querySelector(sel); return !!e && e.complete && e.naturalWidth > 0; }", arg=css
    )
    img = page.locator(css)
    box = img.bounding_box()
    natural_w, natural_h = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    scale = min(box["width"] / natural_w, box["height"] / natural_h)
    left, top = (box["width"] - natural_w * scale) / 2, (box["height"] - natural_h * scale) / 2
    return {"x": left + fx * natural_w * scale, "y": top + fy * natural_h * scale}


@pytest.mark.parametrize("width", [1400, 420])
def test_clicks_on_the_photo_become_visible_removable_sam_marks(spare, width):
    from playwright.sync_api import expect

    page = spare  # one page for both widths, resized: each run uploads the photo anew, and the first
    page.set_viewport_size({"width": width, "height": 1000})  # click on a new photo starts new marks
    page.get_by_role("tab", name="Remove").click()
    if page.locator("#sam-marks").is_visible():  # opened by the run at the other width: folded again
        page.get_by_text("Pick the subject (SAM 2): click the photo").click()
    expect(page.locator("#sam-marks")).to_be_hidden()
    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    picture = page.locator("#input-image img")
    expect(picture).to_have_count(1)
    points = page.locator("#sam-points textarea")
    picture.click(position=on_picture(page, "#input-image img", 0.5, 0.5))  # the section opens by itself
    expect(points).to_have_value(re.compile(r"^\d+, \d+, keep$"))
    for control in ("#click-mode", "#sam-undo", "#sam-clear", "#sam-marks"):  # beside the marks, not folded away
        expect(page.locator(control)).to_be_visible()
    mark_at(page, 0.5, 0.5, GREEN)  # a green keep point on the photo's centre
    x, y = (int(v) for v in points.input_value().split(",")[:2])
    assert abs(x - 225) <= 12 and abs(y - 150) <= 12  # image pixels of the 451x300 photo, not screen pixels

    page.locator("#click-mode input[value=drop]").check()
    marks = page.locator("#sam-marks img")
    marks.click(position=on_picture(page, "#sam-marks img", 0.1, 0.1))  # the marked copy takes clicks too
    expect(points).to_have_value(re.compile(r"^\d+, \d+, keep; \d+, \d+, drop$"))
    mark_at(page, 0.1, 0.1, RED)  # a red drop point
    drop_x = int(points.input_value().split(";")[1].split(",")[0])
    assert abs(drop_x - 45) <= 6  # a tenth of 451, mapped back to the photo's pixels

    page.locator("#click-mode input[value='box corner']").check()
    corners = page.locator("#sam-box input")
    picture.click(position=on_picture(page, "#input-image img", 0.02, 0.03))
    expect(corners).to_have_value(re.compile(r"^\d+, \d+$"))
    picture.click(position=on_picture(page, "#input-image img", 0.98, 0.97))
    expect(corners).to_have_value(re.compile(r"^\d+, \d+, \d+, \d+$"))
    x0, y0, x1, y1 = (int(v) for v in corners.input_value().split(","))
    assert x0 < 30 and y0 < 30 and x1 > 420 and y1 > 270  # the photo's pixels, 451x300
    mark_at(page, x1 / 451, 0.5, BLUE)  # the box's blue right edge
    shot(page, f"sam-marks-{width}.png")

    page.locator("#click-mode input[value=keep]").check()
    marks.click(position=on_picture(page, "#sam-marks img", 0.5, 0.5))  # a click on a mark removes it
    expect(points).to_have_value(re.compile(r"^\d+, \d+, drop$"))
    mark_at(page, 0.5, 0.5, NOT_GREEN)
    page.locator("#sam-undo").click()
    expect(points).to_have_value("")
    page.locator("#sam-clear").click()
    expect(corners).to_have_value("")
    assert page.evaluate(NOT_CLIPPED)["overflow"] == 0


# Resolves once two frames have been drawn: what the page's scripts change for a new width is laid out.
FRAMES_DRAWN = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def overflow_at(page, widths: tuple[int, ...], height: int = 900) -> dict[int, int]:
    """How far the page scrolls sideways at each width, the same page resized; left at the last width."""
    found = {}
    for width in widths:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate(FRAMES_DRAWN)
        found[width] = page.evaluate(NOT_CLIPPED)["overflow"]
    return found


def test_refusals_are_one_message_in_the_pages_words(spare):
    """Compare and AI background with no photo, a hosted model with no key:
    one red box under the button, no "Error" badge on the output panels, words
    that name the page's own controls; each tab fits 1400 and 420 px (the page
    driven at 420 px, resized to 1400 px and back at each refusal)."""
    from playwright.sync_api import expect

    page = spare  # no photo in Compare nor in AI background, no Runware key in it
    page.set_viewport_size({"width": 420, "height": 900})
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-run").click()
    refusal = page.locator("#compare-message")
    expect(refusal).to_contain_text("Could not do that: Upload an image first")
    for panel in ("#compare-gallery", "#compare-table", "#compare-agreement", "#compare-slider"):
        expect(page.locator(panel)).not_to_contain_text("Error")
    assert page.locator(".toast-body").count() == 0  # no error toast either
    assert overflow_at(page, (1400, 420)) == {1400: 0, 420: 0}

    page.get_by_role("tab", name="AI background").click()
    page.locator("#ai-run").click()
    ai_refusal = page.locator("#ai-message")
    expect(ai_refusal).to_contain_text("Could not do that:")
    red = "e => getComputedStyle(e).borderLeftColor"
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate(FRAMES_DRAWN)
        assert ai_refusal.evaluate(red) == refusal.evaluate(red) == "rgb(220, 38, 38)", width  # Remove's red box
        assert page.evaluate(NOT_CLIPPED)["overflow"] == 0, width

    page.get_by_role("tab", name="Remove").click()
    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    expect(page.locator("#input-image img")).to_have_count(1)
    choose(page, "Provider", "Runware · Bria RMBG 2.0")  # no key pasted in this page
    page.locator("#run").click()
    message = page.locator("#message")
    expect(message).to_contain_text("runware-bria needs an API key")
    expect(message).to_contain_text("Paste your Runware key in the API keys for hosted providers box")
    expect(message).to_contain_text("pick a local model from the Provider list")
    expect(message).not_to_contain_text("api_key=")
    expect(message).not_to_contain_text("environment variable")
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate(FRAMES_DRAWN)
        shot(page, f"refusals-{width}.png")


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


def test_the_escalation_note_follows_the_first_provider_chosen(page_and_fakes, spare):
    """Before a run, the expected cost of 'Escalate when unsure to' is the measured share's for U2-Net-p
    first (rmbg.confidence.MEASURED_UNDER) and 'up to' for a first model whose share is not measured."""
    from playwright.sync_api import expect

    fal = page_and_fakes[1]
    page = spare  # a page of its own: the first page's choices stay as its tests left them
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("tab", name="Remove").click()
    calls = len(fal.calls)
    choose(page, "Escalate when unsure to", "fal.ai · Bria RMBG 2.0")
    note = page.locator("#escalate-cost")
    choose(page, "Provider", "U2-Net-p")
    expect(note).to_contain_text("Expected cost: about 59 % of photos escalate at 0.5")
    choose(page, "Provider", "BRIA RMBG-1.4")
    expect(note).to_contain_text("how many of rmbg-1.4's photos fall under 0.5 is not measured")
    assert len(fal.calls) == calls  # said before any run: nothing sent


def test_two_keys_pasted_in_quick_succession_settle(spare):
    """Two keys typed one right after the other: every menu shows both vendors ready, then the page is
    quiet. (With one queued event per menu on the same key boxes, gradio's page re-fired the boxes'
    change events about three times a second for the rest of the visit: tests/test_app_forms.py keeps
    one event per control.)"""
    from playwright.sync_api import expect

    from tests.fakes.runware import TEST_KEY as RUNWARE_KEY

    page = spare  # no key pasted in it yet (the refusal test above needs none)
    page.get_by_role("tab", name="Compare").click()
    joins: list[str] = []
    page.on("request", lambda r: joins.append(r.url) if "/queue/join" in r.url else None)
    enter_fal_key(page)
    page.get_by_label("Runware key").fill(RUNWARE_KEY)  # while the fal key's event may still run
    boxes = page.locator("#compare-providers")
    expect(boxes.get_by_label("fal.ai · Bria RMBG 2.0 — ready")).to_have_count(1)
    expect(boxes.get_by_label("Runware · Bria RMBG 2.0 — ready")).to_have_count(1)
    settled = len(joins)
    assert 1 <= settled <= 2  # one event for each key at most (gradio runs the last one pending)
    page.wait_for_timeout(2000)  # a window to observe nothing: the loop sent about 25 requests in it
    assert joins[settled:] == []
