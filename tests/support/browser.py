"""The page in headless Debian Chromium through Playwright: where the browser is,
how it is started, and the steps several browser tests share."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.support.app import ROOT
from tests.support.fetch import running

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
SCREENSHOTS = "RMBG_TEST_SCREENSHOTS"  # "1": shot() writes its pictures


@contextlib.contextmanager
def files_served(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving `folder`; yields its base URL."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    with running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


def evaluated(folder: Path, script: str, files: Mapping[Any, str], args: list[str] | None = None) -> dict:
    """`script` (a page function of one file's URL path) run in headless Chromium on each of `files`
    ({key: a file name in `folder`}), `folder` served on 127.0.0.1: {key: what it returned}."""
    from playwright.sync_api import sync_playwright

    with files_served(folder) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS if args is None else args)
        page = browser.new_page()
        page.goto(base + "/")
        returned = {key: page.evaluate(script, f"/{name}") for key, name in files.items()}
        browser.close()
    return returned


def enter_fal_key(page) -> None:
    field = page.get_by_label("fal.ai key")
    if not field.is_visible():
        # the accordion by its role: a refusal on the page may name it in its words too
        page.get_by_role("button", name="API keys for hosted providers").click()
    field.fill(FAL_KEY)
    field.blur()


def shot(page, name: str, *, always: bool = False) -> None:
    """A full-page screenshot into test-artifacts/NAME, when RMBG_TEST_SCREENSHOTS=1 is set (to look at the
    pages by eye), or `always` (the picture of a failure a test is about to report). Off by default: each
    costs Chromium a layout and a PNG of the whole page (about 0.3-0.5 s of CPU) and checks nothing."""
    if not (always or os.environ.get(SCREENSHOTS) == "1"):
        return
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def opened_app(pw, url: str, *, height: int = 1000, slow_expect: bool = False):
    """(browser, page): Chromium started, a 1400 px wide page on the launched app, its main
    button shown. slow_expect: Playwright's expect waits 4x the timeout (a model runs on a
    shared CPU). The caller closes the browser. The page has a browser context of its own,
    where another_page() opens more."""
    from playwright.sync_api import expect

    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_context(viewport={"width": 1400, "height": height}).new_page()
    if slow_expect:
        expect.set_options(timeout=4 * TIMEOUT_MS)
    _load(page, url)
    return browser, page


def another_page(first, *, height: int = 1000):
    """A second page on the app `first` shows, 1400 px wide, its main button shown: a session of the app
    of its own (nothing pasted, picked or run in it). It opens in `first`'s browser context, whose
    cache holds gradio's scripts already compiled: about two thirds of the CPU of a page in a context
    of its own. (The app keeps nothing in the browser's storage or cookies for pages to share.)
    The caller closes it."""
    page = first.context.new_page()
    page.set_viewport_size({"width": 1400, "height": height})
    _load(page, first.url.split("?")[0])
    return page


def _load(page, url: str) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#run")
