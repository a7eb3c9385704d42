"""The Video tab in a real browser (headless Debian Chromium through Playwright),
on the real U2-Net-p weights (a grey-level threshold beside it):

- one provider: the progress of frames with the time left, Stop in the middle
  (a message, no video and no download offered), then a cut-out that plays
  over a checkerboard, its cost line and its download;
- side by side: two videos, played in sync, paused on one frame, and stepped
  frame by frame by one slider;
- the tab fits a 420 px wide phone. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.webapp import AppConfig  # noqa: E402
from tests.support.app import serve  # noqa: E402
from tests.support.browser import CHROMIUM, opened_app, shot  # noqa: E402
from tests.video_clips import davis, threshold_registered, write_clip  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
RATE = 6  # frames per second of the test clips: 8 frames play for 1.3 s, long enough to watch two in sync

# Both videos of the side-by-side view: [currentTime, paused, seeking] each.
PAIR = """() => ['video-cmp-a', 'video-cmp-b'].map(id => {
    const v = document.querySelector(`#${id} video`);
    return v ? [v.currentTime, v.paused, v.seeking] : null;
})"""

# The result's progress bar, once it says how many of the 40 frames are done and the time left.
PROGRESS_SAID = r"""() => [...document.querySelectorAll('#video-result .progress-level-inner')]
    .some(e => /\d+ \/ 40 frames · about \d+ s left/.test(e.textContent))"""


@pytest.fixture(scope="module")
def page(u2netp_path, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("video-browser")
    with threshold_registered(), serve(AppConfig()) as url, sync_playwright() as pw:
        browser, opened = opened_app(pw, url)
        opened.get_by_role("tab", name="Video").click()
        opened.root = root  # type: ignore[attr-defined]
        try:
            yield opened
        finally:
            browser.close()


def upload(page, clip: Path) -> None:
    """The clip into the Video tab's input (the one there cleared first)."""
    clear = page.locator("#video-input button[aria-label=Clear]")
    if clear.count():
        clear.click()
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.wait_for_selector("#video-input video")


def test_stop_in_the_middle_then_a_cut_out_over_a_checkerboard(page):
    from playwright.sync_api import expect

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
    expect(cost).to_contain_text(re.compile(r"4 frames, 0\.7 s of video · model \d+\.\d s · total \d+\.\d s"))
    expect(cost).to_contain_text("this clip: free (local")
    expect(page.locator("#video-download")).to_contain_text("Download WEBM")
    shot(page, "video-one.png")


def test_side_by_side_plays_in_sync_and_one_slider_steps_both(page):
    from playwright.sync_api import expect

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
    for _ in range(5):  # while they play, within half a frame of each other
        (ta, _, _), (tb, _, _) = page.evaluate(PAIR)
        assert abs(ta - tb) < 0.5 / RATE, (ta, tb)
        page.wait_for_timeout(100)
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
def test_the_video_tab_fits_a_phone(page, sub_tab):
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
