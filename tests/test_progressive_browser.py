"""The progressive Remove in a real browser (headless Debian Chromium through
Playwright) on the launched app: with the default U2-Net-p, its cut-out and
the "on its way" line come first, then IS-Net general's result replaces them
(the tiny graph from a local server, calibrated as over the budget here)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.webapp import AppConfig  # noqa: E402
from tests.support.app import EXAMPLE, serve  # noqa: E402
from tests.support.browser import ARGS, CHROMIUM, TIMEOUT_MS  # noqa: E402
from tests.support.progressive import better, on_download  # noqa: E402, F401  (fixture)
from tests.u2netp_fixture import u2netp_path  # noqa: E402, F401  (fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")


def test_the_page_shows_the_fast_result_then_the_better_one(better):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    seen = []  # the better model's runs so far when its weights were requested (its run began)
    shown_first = threading.Event()  # the page showed the fast result: the better run may go on
    with serve(AppConfig()) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
            expect(page.locator("#input-image img")).to_have_count(1)
            line = page.locator("#cost-line")
            on_download(better, lambda: (seen.append(better.gets), shown_first.wait(TIMEOUT_MS / 1000)))
            page.locator("#run").click()
            # the first run loads U2-Net-p: on a loaded 2-core machine past expect's 5 s default
            expect(line).to_contain_text(
                re.compile(r"Showing U2-Net-p.* now; IS-Net general.*is on its way"), timeout=TIMEOUT_MS
            )
            expect(page.locator("#result img").last).to_be_visible()  # the fast cut-out is in the slider
            shown_first.set()
            expect(line).not_to_contain_text("on its way", timeout=TIMEOUT_MS)  # replaced by the better result
            expect(line).to_contain_text("IS-Net general")
            assert seen == [0] and better.gets == 1  # one better run, started after the fast result
            expect(page.locator("#download")).to_be_visible()
        finally:
            browser.close()
