"""Every view of the page fits a 420 px phone and a 1400 px screen, before and after a result
(headless Debian Chromium through Playwright, one app and one browser for the file).

The views are read from the page itself: each tab, and each tab inside one (Video's One provider and
Side by side), so a new tab is covered without an edit here (and fails until RESULTS says how to get
a result in it). In each view, at each width: the page needs no sideways scrolling, the view's main
(primary) button is on screen without it, no box scrolls sideways inside itself (every table shows all
its columns, the cost columns included, without scrolling in its frame; a gallery, a status line alike),
and no label or caption is clipped, cut off by its box or drawn under a block's icon buttons.
The results carry the widest realistic content: hosted providers beside a local one (long labels,
costs and statuses in their rows), intervals in Benchmark's cells, long image names in its captions.

The Benchmark view's result is a free and a hosted provider with ground truth: the cascade is checked
there (its table, notes and download; fal run once per image), and the whole tab fits both widths with
it, as every view does. The Benchmark tab's other flows run on the same app and browser, in a page of
their own (one launch of the app and of Chromium for both): a small benchmark with ground truth (table,
gallery, downloads), then one without (a hosted provider from the fake fal server beside U2-Net-p) and
votes on blind pairs. The Video tab's flows run there too, in a page of their own, on the real U2-Net-p
weights (a grey-level threshold beside it): one provider's progress of frames with the time left, Stop
in the middle (a message, no video and no download offered), then a cut-out that plays over a
checkerboard, its cost line and its download; side by side, two videos played in sync, paused on one
frame and stepped frame by frame by one slider; the tab fitting a 420 px phone. Screenshots go to
test-artifacts/ with RMBG_TEST_SCREENSHOTS=1 set, and always for a view that does not fit.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.eval.votes import VoteStore  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve, submits  # noqa: E402
from tests.support.benchmark import DAVIS, FRAMES, png_bytes, votes_db  # noqa: E402,F401
from tests.support.browser import CHROMIUM, another_page, enter_fal_key, opened_app, shot  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401
from tests.video_clips import davis, threshold_registered, write_clip  # noqa: E402

# Every view at two widths and the video player's sync: a long check (100-200 s of a worker on 2 cores).
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium"),
    pytest.mark.slow,
]
WIDTHS = (420, 1400)
# The Benchmark's DAVIS frames at a quarter of their 854x480 each way: the same tables, captions and picture
# shapes, a sixteenth of the pixels to encode, send to the fake fal server and score.
SMALL = (214, 120)

# The names of the tabs of every tab list now on screen, outermost first: [[Remove, ...], [One provider, ...]].
TAB_LISTS = """() => [...document.querySelectorAll('[role=tablist]')]
    .filter(list => list.offsetParent !== null || list.getClientRects().length)
    .map(list => [...list.querySelectorAll('[role=tab]')].map(tab => tab.textContent.trim()))"""

# Resolves once two frames have been drawn: the page's own resize handlers have run and their changes are laid out.
FRAMES_DRAWN = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"

# What does not fit in the view now on screen (an empty list when everything does).
MISFITS = """() => {
    const width = window.innerWidth, misfits = [];
    const page = document.documentElement.scrollWidth;
    const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const cut = el => el.scrollWidth > el.clientWidth + 1;
    const clips = el => getComputedStyle(el).overflowX !== 'visible';  // scrolls or cuts off what overflows it
    const tag = el => el.tagName.toLowerCase() + (el.classList.length ? '.' + el.classList[0] : '');
    const words = el => (el.textContent.trim() || el.getAttribute('aria-label') || '').slice(0, 40);
    const name = el => `${el.id ? '#' + el.id : tag(el)} "${words(el)}"`;
    if (page > width) {  // named by the innermost elements with an id that are wider than the window
        const wide = el => shown(el) && el.getBoundingClientRect().width > width + 1;
        const named = [...document.querySelectorAll('[id]')].filter(el => el.id && wide(el));
        const inner = named.filter(el => !named.some(other => other !== el && el.contains(other)));
        const where = inner.slice(0, 6).map(el => '#' + el.id).join(', ') || 'no element with an id';
        misfits.push(`the page is ${page} px wide in a ${width} px window (wider than it: ${where})`);
    }
    const panels = [...document.querySelectorAll('[role=tabpanel]')].filter(shown);
    const view = panels[panels.length - 1];
    const buttons = [...view.querySelectorAll('button.primary')].filter(shown);
    if (!buttons.length) misfits.push('no main (primary) button on screen');
    for (const b of buttons) {
        const r = b.getBoundingClientRect();
        if (r.left < 0 || r.right > width) misfits.push(`"${b.textContent.trim()}" spans ${r.left}-${r.right} px`);
    }
    // No box scrolls sideways or cuts off at a side what it holds: a table's frame (named by its columns),
    // a gallery, a status line alike. Inputs, pictures and videos are their own widgets.
    const told = new Set();
    for (const table of [...view.querySelectorAll('table')].filter(shown)) {
        for (let box = table.parentElement; box && box !== view; box = box.parentElement) {
            if (cut(box) && clips(box)) {
                const head = [...table.querySelectorAll('th')].map(th => th.textContent.trim()).join(' | ');
                const owner = table.closest('[id]'), size = `${box.scrollWidth} in ${box.clientWidth} px`;
                misfits.push(`a table${owner ? ' #' + owner.id : ''} scrolls sideways (${size}): ${head}`);
                told.add(box);
                break;
            }
        }
    }
    for (const box of [...view.querySelectorAll('*')].filter(shown)) {
        if (told.has(box) || !box.clientWidth || !cut(box) || !clips(box)) continue;
        if (box.matches('input, textarea, select, video, canvas, img, svg, svg *')) continue;
        misfits.push(`${name(box)} scrolls sideways (${box.scrollWidth} in ${box.clientWidth} px)`);
    }
    // No label or caption is clipped (ellipsised), cut off by a box around it, or drawn under one of the
    // small icon buttons gradio floats in a block's corner.
    const hider = text => {
        const r = text.getBoundingClientRect();
        for (let box = text.parentElement; box && box !== view; box = box.parentElement) {
            const b = box.getBoundingClientRect();
            if (clips(box) && (r.right > b.right + 1 || r.left < b.left - 1)) return box;
        }
        return null;
    };
    const overlap = (a, b) => a.right > b.left + 1 && a.left < b.right - 1
        && a.bottom > b.top + 1 && a.top < b.bottom - 1;
    const under = text => {
        const range = document.createRange();
        range.selectNodeContents(text);
        const lines = [...range.getClientRects()];
        const icon = b => shown(b) && b.offsetWidth <= 48 && b.offsetHeight <= 48 && !b.contains(text);
        const near = [...(text.closest('.block') || view).querySelectorAll('button')].filter(icon);
        return near.find(b => lines.some(line => overlap(line, b.getBoundingClientRect())));
    };
    const labels = '.label-text, label span, [data-testid=block-info], [data-testid=block-label], .caption-label';
    for (const text of [...view.querySelectorAll(labels)].filter(el => shown(el) && el.textContent.trim())) {
        const box = hider(text), button = under(text);
        if (cut(text)) misfits.push(`the label ${name(text)} is clipped (${text.scrollWidth} in ${text.clientWidth})`);
        else if (box) misfits.push(`the label ${name(text)} is cut off by ${name(box)}`);
        else if (button) misfits.push(`the label ${name(text)} is under the button ${name(button)}`);
    }
    // Every result picture in a gallery can be seen whole: as drawn (object-fit: contain inside its element)
    // it is no larger than any box around it that clips (a tile, the gallery's scrolling frame), which
    // may scroll it into view but must not crop it.
    for (const img of [...view.querySelectorAll('.gallery-container img, .grid-wrap img')].filter(shown)) {
        if (!img.naturalWidth || !img.naturalHeight) continue;
        const r = img.getBoundingClientRect();
        const scale = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
        const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
        for (let box = img.parentElement; box && box !== view; box = box.parentElement) {
            const st = getComputedStyle(box);
            if (st.overflow === 'visible' && st.overflowX === 'visible' && st.overflowY === 'visible') continue;
            if (h > box.clientHeight + 1 || w > box.clientWidth + 1) {
                const size = `${Math.round(w)}x${Math.round(h)} in ${box.clientWidth}x${box.clientHeight}`;
                misfits.push(`a picture in ${name(img.closest('[id]') || box)} is cropped by ${name(box)} (${size})`);
                break;
            }
        }
    }
    return misfits;
}"""


@pytest.fixture(scope="module")
def app(votes_db, u2netp_path, tmp_path_factory):  # noqa: F811
    """The app on the fakes and one Chromium, for every test of the file: (the first page, at 1400 x 1000
    px, the fake fal server). The widths test has that page; the Benchmark tests and the Video tests
    a page of their own each."""
    from playwright.sync_api import sync_playwright

    from tests.fakes.fal import FalFake
    from tests.fakes.runware import RunwareFake
    from tests.fakes.runware_video import RunwareVideoFake

    root = tmp_path_factory.mktemp("widths")
    with FalFake() as fal, RunwareFake() as runware, RunwareVideoFake() as runware_video:
        config = app_config(fal, runware)
        hosted_video = {"runware-bria-video": {"base_url": runware_video.url}}  # Side by side's hosted row
        config = replace(config, provider_config={**config.provider_config, **hosted_video})
        # the threshold beside U2-Net-p in the Video tab's side by side (listed, never ticked by default)
        with threshold_registered(), serve(config) as url, sync_playwright() as pw:
            browser, opened = opened_app(pw, url, slow_expect=True)  # model runs on a shared CPU
            opened.root = root  # type: ignore[attr-defined]
            opened.fal = fal  # type: ignore[attr-defined]
            try:
                yield opened, fal
            finally:
                browser.close()


@pytest.fixture(scope="module")
def page(app):
    return app[0]


@pytest.fixture(scope="module")
def page_and_fal(app):
    """A page of its own on the same app (a session of its own), 1200 px high, on the Benchmark tab."""
    first, fal = app
    page = another_page(first, height=1200)
    page.get_by_role("tab", name="Benchmark").click()
    try:
        yield page, fal
    finally:
        page.close()


def davis_zip(path: Path, name_of=lambda name: name) -> Path:
    """The first two DAVIS frames with their masks, at SMALL, zipped as the Benchmark takes them
    (images/NAME.jpg, masks/NAME.png), each named name_of(its DAVIS name)."""
    from PIL import Image

    with zipfile.ZipFile(path, "w") as zf:
        for name in FRAMES[:2]:
            for folder, suffix, kind, resample in (
                ("images", "jpg", "JPEG", Image.Resampling.BILINEAR),
                ("masks", "png", "PNG", Image.Resampling.NEAREST),  # a mask keeps its exact levels
            ):
                data = io.BytesIO()
                with Image.open(DAVIS / folder / f"{name}.{suffix}") as full:
                    full.resize(SMALL, resample).save(data, kind)
                zf.writestr(f"{folder}/{name_of(name)}.{suffix}", data.getvalue())
    return path


def show(page, path: tuple[str, ...]) -> None:
    """Open the view: click each tab of `path` in turn, each in the tab list at its depth."""
    for depth, name in enumerate(path):
        lists = page.locator("[role=tablist]:visible")
        lists.nth(depth).get_by_role("tab", name=name, exact=True).click()


def views(page) -> list[tuple[str, ...]]:
    """Every view, as the tab names clicked to reach it, read from the page."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    found = []
    for top in page.evaluate(TAB_LISTS)[0]:
        show(page, (top,))
        inner = page.evaluate(TAB_LISTS)[1:]
        found += [(top, name) for name in inner[0]] if inner else [(top,)]
    return found


def remove(page) -> None:
    from playwright.sync_api import expect

    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    page.locator("#run").click()
    expect(page.locator("#cost-line")).to_contain_text("this image:")


def enter_keys(page) -> None:
    """fal's and Runware's keys in their boxes: their providers (at the fake servers) are ready."""
    from tests.fakes.runware import TEST_KEY as RUNWARE_KEY

    enter_fal_key(page)
    page.get_by_label("Runware key").fill(RUNWARE_KEY)
    page.get_by_label("Runware key").blur()


def tick(page, group: str, names: tuple[str, ...]) -> None:
    """Each provider named (by a part of its label) ticked in the checkbox group #`group`."""
    for name in names:
        box = page.locator(f"#{group} label", has_text=name).first
        if not box.locator("input").is_checked():
            box.click()


# The widest realistic content: hosted providers (long labels, a status and a cost in their rows) beside a local one.
HOSTED = ("fal.ai · Bria RMBG 2.0", "Runware · Bria RMBG 2.0", "Runware · RemBG 1.4")


def compare(page) -> None:
    from playwright.sync_api import expect

    enter_keys(page)
    page.locator("#compare-image input[type=file]").set_input_files(str(EXAMPLE))
    tick(page, "compare-providers", ("U2-Net-p", *HOSTED))
    page.locator("#compare-run").click()
    expect(page.locator("#compare-table")).to_contain_text("u2netp")
    expect(page.locator("#compare-table")).to_contain_text("fal-bria")


def video_clip(page) -> None:
    """The clip in the Video tab's input (shared by its two views), uploaded once: two frames, as a longer
    clip's results (a video, its cost line, the comparison's table) take the same room, for frames to run."""
    if not page.locator("#video-input video").count():
        clip = write_clip(page.root / "dog.mp4", davis("dog", 2))
        page.locator("#video-input input[type=file]").set_input_files(str(clip))
        page.wait_for_selector("#video-input video")


def one_video(page) -> None:
    from playwright.sync_api import expect

    video_clip(page)
    page.locator("#video-run").click()
    expect(page.locator("#video-cost")).to_contain_text("this clip:")  # the result's line, not the progress


def two_videos(page) -> None:
    from playwright.sync_api import expect

    enter_keys(page)
    video_clip(page)
    for label, name in (("Provider A (left)", "U2-Net-p"), ("Provider B (right)", "Runware · Bria video")):
        page.get_by_label(label, exact=True).click()
        page.locator("[role=option]", has_text=name).first.click()
    page.locator("#video-compare-run").click()
    expect(page.locator("#video-compare-table")).to_contain_text("Runware · Bria video")


def ai_background(page) -> None:
    from playwright.sync_api import expect

    enter_fal_key(page)
    page.locator("#ai-image input[type=file]").set_input_files(str(EXAMPLE))
    page.locator("#ai-prompt textarea").fill("a wooden table by a window")
    page.locator("#ai-run").click()
    expect(page.locator("#ai-gallery img")).to_have_count(1)


def benchmark(page) -> None:
    """A free and a hosted provider on two frames with masks and long names (a camera's, a date): the scores'
    table with intervals in its cells, the cascades' table, captions naming image and provider. The cascade
    u2netp→fal-bria is tabled under the scores, the default share's escalations said, cascades.csv offered;
    fal ran once per image."""
    from playwright.sync_api import expect

    sent = submits(page.fal)
    enter_keys(page)
    archive = davis_zip(page.root / "davis.zip", lambda name: f"IMG_20240601_183512_holiday_garden_{name}")
    page.locator("#bench-images input[type=file]").set_input_files(str(archive))
    tick(page, "bench-providers", ("U2-Net-p", HOSTED[0]))
    page.locator("#bench-run").click()
    expect(page.locator("#bench-status")).to_contain_text("Done: 2 image(s), 4 provider runs, 0 failed")
    expect(page.locator("#bench-cascades")).to_be_visible()
    expect(page.locator("#bench-cascades")).to_contain_text("u2netp→fal-bria")
    expect(page.locator("#bench-cascade-notes")).to_contain_text("At the default share (30%")
    expect(page.locator("#bench-files")).to_contain_text(re.compile(r"cascades\s*\.csv"))
    assert submits(page.fal) - sent == 2
    shot(page, "benchmark-cascades.png")


# How to get a result in each view (at 1400 px; the checks then run at both widths).
RESULTS = {
    ("Remove",): remove,
    ("Compare",): compare,
    ("Video", "One provider"): one_video,
    ("Video", "Side by side"): two_videos,
    ("AI background",): ai_background,
    ("Benchmark",): benchmark,
}


def misfits(page, paths: list[tuple[str, ...]], when: str) -> list[str]:
    """What does not fit in each view at each width (the page resized once per width, each view opened in
    turn), named by view, width and `when`; a screenshot of each view that has a misfit (in test-artifacts/,
    to see it, whether or not RMBG_TEST_SCREENSHOTS is set). The page is left at 1400 px."""
    found = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        for path in paths:
            show(page, path)
            page.evaluate(FRAMES_DRAWN)  # what the page's scripts change for the width or view is laid out
            misfit = [f"{' > '.join(path)} at {width} px {when}: {m}" for m in page.evaluate(MISFITS)]
            if misfit:
                name = f"widths-{'-'.join(p.split()[0].lower() for p in path)}-{width}-{when.split()[0]}.png"
                shot(page, name, always=True)
            found += misfit
    page.set_viewport_size({"width": 1400, "height": 1000})
    return found


@pytest.mark.slow  # every view, twice, at two widths, with a model's and the fakes' results: 20-45 s on 2 cores
def test_every_view_fits_420_and_1400_px_before_and_after_a_result(page):
    found = views(page)
    assert set(found) == set(RESULTS), "a view without a way to get a result in it: add it to RESULTS"
    assert len(found) >= 6
    before = misfits(page, found, "before a result")
    for path in found:  # a result in each view (at 1400 px), then every view checked again at both widths
        show(page, path)
        RESULTS[path](page)
    after = misfits(page, found, "after a result")
    assert before + after == [], "\n".join(before + after)


def test_a_small_benchmark_with_ground_truth(page_and_fal, tmp_path):
    from playwright.sync_api import expect

    page, _ = page_and_fal
    archive = davis_zip(tmp_path / "davis.zip")
    page.locator("#bench-images input[type=file]").set_input_files(str(archive))
    expect(page.locator("#bench-estimate")).to_contain_text("Estimated: $0 for 2 image(s)")
    page.locator("#bench-run").click()
    expect(page.locator("#bench-status")).to_contain_text("Done: 2 image(s), 2 provider runs, 0 failed")
    expect(page.locator("#bench-table")).to_contain_text("u2netp")
    expect(page.locator("#bench-gallery img")).to_have_count(2)
    expect(page.locator("#bench-files")).to_contain_text(re.compile(r"evaluation\s*\.json"))
    shot(page, "benchmark-ground-truth.png")


def test_a_blind_benchmark_and_votes(page_and_fal, votes_db, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page, fal = page_and_fal
    fal.reset()
    enter_fal_key(page)
    # the pasted key refreshes this tab's list too, not only Remove's and Compare's
    expect(page.locator("#bench-providers label", has_text="fal.ai · Bria RMBG 2.0 — ready")).to_have_count(1)
    files = []
    for i in range(2):
        path = tmp_path / f"shot{i}.png"
        path.write_bytes(png_bytes((64, 48), (40 * i, 160, 90)))
        files.append(str(path))
    page.locator("#bench-images button[aria-label='Clear'], #bench-images button[title='Clear']").first.click()
    page.locator("#bench-images input[type=file]").set_input_files(files)
    page.locator("#bench-providers label", has_text="fal").first.click()
    expect(page.locator("#bench-estimate")).to_contain_text("Estimated: $0.0360 for 2 image(s)")  # 2 x fal's $0.018
    page.locator("#bench-run").click()
    expect(page.locator("#bench-status")).to_contain_text("no ground truth")
    expect(page.locator("#vote-left img")).to_have_count(1)  # the first pair comes with "Done", unasked
    expect(page.locator("#vote-left-wins")).to_be_enabled()
    assert submits(fal) == 2
    for side in ("left", "right"):
        page.locator("#vote-background label", has_text="black").click()
        page.locator("#vote-new").click()
        expect(page.locator("#vote-left img")).to_have_count(1)
        expect(page.locator("#vote-reveal")).not_to_contain_text("Left was")
        page.locator(f"#vote-{side}-wins").click()
        expect(page.locator("#vote-reveal")).to_contain_text("Left was")
    expect(page.locator("#vote-ranking")).to_contain_text("fal-bria")
    expect(page.locator("#vote-ranking")).to_contain_text("u2netp")
    assert len(VoteStore().all()) >= 2  # in this test's storage (RMBG_LEDGER)
    shot(page, "benchmark-vote.png")
    page.reload()  # a page that opens now reads the ranking from the storage
    page.get_by_role("tab", name="Benchmark").click()
    expect(page.locator("#vote-ranking")).to_contain_text("fal-bria")
    expect(page.locator("#vote-ranking")).to_contain_text("u2netp")


# The Video tab: its flows, in a page of their own.
RATE = 6  # frames per second of the test clips: 8 frames play for 1.3 s, long enough to watch two in sync

# Both videos of the side-by-side view: [currentTime, paused, seeking] each.
PAIR = """() => ['video-cmp-a', 'video-cmp-b'].map(id => {
    const v = document.querySelector(`#${id} video`);
    return v ? [v.currentTime, v.paused, v.seeking] : null;
})"""

# Both videos (PAIR) at each of the next PLAYED_FRAMES frames the page draws (0.4 s at 60 frames a second).
PLAYED_FRAMES = 24
PLAYED = f"""() => new Promise(done => {{
    const seen = [];
    const look = () => {{
        seen.push(({PAIR})());
        if (seen.length < {PLAYED_FRAMES}) requestAnimationFrame(look); else done(seen);
    }};
    requestAnimationFrame(look);
}})"""

# The result's progress bar, once it says how many of the 40 frames are done and the time left.
PROGRESS_SAID = r"""() => [...document.querySelectorAll('#video-result .progress-level-inner')]
    .some(e => /\d+ \/ 40 frames · about \d+ s left/.test(e.textContent))"""


@pytest.fixture(scope="module")
def video_page(app, tmp_path_factory):
    """A page of its own on the same app (a session of its own), at 1400 x 1000 px, on the Video tab;
    its clips are written to a folder of its own (`root`)."""
    page = another_page(app[0])
    page.get_by_role("tab", name="Video").click()
    page.root = tmp_path_factory.mktemp("video-browser")  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        page.close()


def upload(page, clip: Path) -> None:
    """The clip into the Video tab's input (the one there cleared first)."""
    clear = page.locator("#video-input button[aria-label=Clear]")
    if clear.count():
        clear.click()
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.wait_for_selector("#video-input video")


def test_stop_in_the_middle_then_a_cut_out_over_a_checkerboard(video_page):
    from playwright.sync_api import expect

    page = video_page
    upload(page, write_clip(page.root / "long.mp4", davis("dog", 40), rate=RATE))
    page.locator("#video-run").click()
    # the result's progress bar says its line while frames go by: Stop as soon as it does (checked at each
    # frame the page draws, not by reading the whole page's text over and over while the model runs)
    page.wait_for_function(PROGRESS_SAID, polling="raf", timeout=60_000)
    page.locator("#video-stop").click()
    message = page.locator("#video-message")
    expect(message).to_contain_text(re.compile(r"Stopped after \d+ frame\(s\); no output was written"))
    expect(page.locator("#video-result video")).to_have_count(0)  # nothing half-written is offered
    expect(page.locator("#video-download")).to_be_hidden()
    shot(page, "video-stopped.png")

    # the cut-out: four frames are enough to play it over the checkerboard and word its cost line
    upload(page, write_clip(page.root / "dog4.mp4", davis("dog", 40)[:4], rate=RATE))
    page.locator("#video-run").click()
    video = page.locator("#video-result video")
    expect(video).to_have_attribute("src", re.compile(r"dog4-nobg\.webm$"), timeout=60_000)
    expect(message).to_be_hidden()
    page.wait_for_function("() => document.querySelector('#video-result video').readyState >= 2")
    assert "conic-gradient" in video.evaluate("v => getComputedStyle(v).backgroundImage")  # the checkerboard
    cost = page.locator("#video-cost")
    expect(cost).to_contain_text(re.compile(r"4 frames, 0\.67 s of video · model \d+\.\d+ s · total \d+\.\d+ s"))
    expect(cost).to_contain_text("this clip: free (local")
    expect(page.locator("#video-download")).to_contain_text("Download WEBM")
    shot(page, "video-one.png")


def test_side_by_side_plays_in_sync_and_one_slider_steps_both(video_page):
    from playwright.sync_api import expect

    page = video_page
    page.get_by_role("tab", name="Side by side").click()
    upload(page, write_clip(page.root / "dog.mp4", davis("dog", 40)[:8], rate=RATE))
    for label, name in (("Provider A (left)", "U2-Net-p"), ("Provider B (right)", "Threshold (tests)")):
        page.get_by_label(label, exact=True).click()
        page.locator("[role=option]", has_text=name).first.click()
    page.locator("#video-compare-run").click()
    for side in ("a", "b"):
        expect(page.locator(f"#video-cmp-{side} video")).to_have_attribute(
            "src", re.compile(r"\.webm$"), timeout=60_000
        )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#video-pair video')].every(v => v.readyState >= 2 && v.rmbgPeer)"
    )
    expect(page.locator("#video-compare-table")).to_contain_text("U2-Net-p")
    expect(page.locator("#video-agreement")).to_contain_text("averaged over 8 frames")

    page.locator("#video-play").click()
    page.wait_for_function(f"() => ({PAIR})().every(s => s && !s[1] && s[0] > 0.2)")
    played = page.evaluate(PLAYED)  # while they play, within half a frame of each other at each frame drawn
    assert len(played) == PLAYED_FRAMES and all(not a[1] and not b[1] for a, b in played), played
    assert all(abs(a[0] - b[0]) < 0.5 / RATE for a, b in played), played
    page.locator("#video-pause").click()
    page.wait_for_function(f"() => ({PAIR})().every(s => s[1] && !s[2])")
    (ta, _, _), (tb, _, _) = page.evaluate(PAIR)
    assert abs(ta - tb) < 1e-3, (ta, tb)
    shot(page, "video-side-by-side.png")

    slider = page.locator("#video-frame input[type=range]")
    for index in (5, 2):  # each step: both paused on the middle of that frame
        slider.evaluate(
            "(el, i) => { el.value = i; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(index)
        )
        want = (index + 0.5) / RATE
        page.wait_for_function(
            f"() => ({PAIR})().every(s => s[1] && !s[2] && Math.abs(s[0] - {want}) < 0.01)", timeout=10_000
        )


@pytest.mark.parametrize("sub_tab", ["One provider", "Side by side"])
def test_the_video_tab_fits_a_phone(video_page, sub_tab):
    page = video_page
    page.set_viewport_size({"width": 420, "height": 900})
    try:
        page.get_by_role("tab", name=sub_tab).click()
        page.wait_for_function("() => document.documentElement.scrollWidth <= window.innerWidth")
        wide = page.evaluate(
            """() => [...document.querySelectorAll('#video-pair video, #video-result video, #video-frame')]
                .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > window.innerWidth + 1)
                .map(e => e.id || e.closest('[id]').id)"""
        )
        assert wide == []
        shot(page, f"video-420-{sub_tab.split()[0].lower()}.png")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
