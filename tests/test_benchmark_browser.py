"""The Benchmark tab in a real browser (headless Debian Chromium through Playwright):
a small benchmark with ground truth (table, gallery, downloads), then one
without (a hosted provider from the fake fal server beside U2-Net-p) and
votes on blind pairs. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.eval.votes import VoteStore  # noqa: E402
from tests.support.app import app_config, serve, submits  # noqa: E402
from tests.support.benchmark import DAVIS, FRAMES, png_bytes, votes_db  # noqa: E402,F401
from tests.support.browser import CHROMIUM, enter_fal_key, opened_app, shot  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def page_and_fal(votes_db, u2netp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from tests.fakes.fal import FalFake
    from tests.fakes.runware import RunwareFake

    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url, sync_playwright() as pw:
        browser, page = opened_app(pw, url, height=1200, slow_expect=True)  # model runs on a shared CPU
        page.get_by_role("tab", name="Benchmark").click()
        try:
            yield page, fal
        finally:
            browser.close()


def test_a_small_benchmark_with_ground_truth(page_and_fal, tmp_path):
    from playwright.sync_api import expect

    page, _ = page_and_fal
    archive = tmp_path / "davis.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in FRAMES[:2]:
            zf.write(DAVIS / "images" / f"{name}.jpg", f"images/{name}.jpg")
            zf.write(DAVIS / "masks" / f"{name}.png", f"masks/{name}.png")
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


def test_ground_truth_with_a_free_and_a_hosted_provider_shows_the_cascade(page_and_fal, tmp_path):
    """U2-Net-p and fal-bria on two frames with masks: the cascade u2netp→fal-bria is tabled under
    the scores, the default share's escalations said, cascades.csv offered; fal ran once per image."""
    from playwright.sync_api import expect

    page, fal = page_and_fal
    fal.reset()
    enter_fal_key(page)
    archive = tmp_path / "davis.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in FRAMES[:2]:
            zf.write(DAVIS / "images" / f"{name}.jpg", f"images/{name}.jpg")
            zf.write(DAVIS / "masks" / f"{name}.png", f"masks/{name}.png")
    clear = page.locator("#bench-images button[aria-label='Clear'], #bench-images button[title='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#bench-images input[type=file]").set_input_files(str(archive))
    for name in ("U2-Net-p", "fal"):
        box = page.locator("#bench-providers label", has_text=name).first
        if not box.locator("input").is_checked():
            box.click()
    page.locator("#bench-run").click()
    expect(page.locator("#bench-status")).to_contain_text("Done: 2 image(s), 4 provider runs, 0 failed")
    expect(page.locator("#bench-cascades")).to_be_visible()
    expect(page.locator("#bench-cascades")).to_contain_text("u2netp→fal-bria")
    expect(page.locator("#bench-cascade-notes")).to_contain_text("At the default share (30%")
    expect(page.locator("#bench-files")).to_contain_text(re.compile(r"cascades\s*\.csv"))
    assert submits(fal) == 2
    shot(page, "benchmark-cascades.png")
    from tests.test_widths_browser import FRAMES_DRAWN, MISFITS

    found = []  # the whole tab with a hosted provider's rows fits a phone and a desktop: the scores', the cascades'
    for width in (420, 1400):  # tables and the gallery's captions wrap, nothing scrolls sideways or is cut off
        page.set_viewport_size({"width": width, "height": 1000})
        page.evaluate(FRAMES_DRAWN)
        found += [f"{width}: {m}" for m in page.evaluate(MISFITS)]
    page.set_viewport_size({"width": 1400, "height": 1200})
    assert found == [], "\n".join(found)
