"""The page in headless Debian Chromium through Playwright: where the browser is,
how it is started, and the steps several browser tests share."""

from __future__ import annotations

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.support.app import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000


def enter_fal_key(page) -> None:
    field = page.get_by_label("fal.ai key")
    if not field.is_visible():
        page.get_by_text("API keys for hosted providers").click()
    field.fill(FAL_KEY)
    field.blur()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def opened_app(pw, url: str, *, height: int = 1000, slow_expect: bool = False):
    """(browser, page): Chromium started, a 1400 px wide page on the launched app, its main
    button shown. slow_expect: Playwright's expect waits 4x the timeout (a model runs on a
    shared CPU). The caller closes the browser."""
    from playwright.sync_api import expect

    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    if slow_expect:
        expect.set_options(timeout=4 * TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#run")
    return browser, page
