"""The page in headless Debian Chromium through Playwright: where the browser is,
how it is started, and the steps several browser tests share."""

from __future__ import annotations

import importlib.util

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.support.app import ROOT

CHROMIUM = "/usr/bin/chromium"


def _screenshot_hook():
    """docs/hooks/screenshot.py (a script beside the docs, not a package), read by its path."""
    path = ROOT / "docs" / "hooks" / "screenshot.py"
    spec = importlib.util.spec_from_file_location("rmbg_docs_screenshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = _screenshot_hook().ARGS  # Chromium's flags: one list, the docs' screenshots' and the tests'
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000


def enter_fal_key(page) -> None:
    field = page.get_by_label("fal.ai key")
    if not field.is_visible():
        # the accordion by its role: a refusal on the page may name it in its words too
        page.get_by_role("button", name="API keys for hosted providers").click()
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
