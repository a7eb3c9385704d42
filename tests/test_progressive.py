"""The progressive Remove (rmbg.webapp.remove.progressive): with the out-of-the-box
model on a CPU, the page shows its cut-out at once and then a better free
model's, which replaces it; a visitor who moved on never gets the second run.

Real models: U2-Net-p (the real weights) is the default here; the better one is
IS-Net general with a tiny ONNX graph served from 127.0.0.1 (its first run
downloads it: the GETs at that server count its runs), measured as slower than
the 3 s budget in this machine's calibration cache.

The last test does it in a real browser (headless Debian Chromium through Playwright)
on the same page, launched: the fast result and the "on its way" line come first, then
IS-Net general's result replaces them. One page for the file, built once: a build and
a launch are seconds of CPU."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.providers.local import calibration  # noqa: E402
from rmbg.registry import info  # noqa: E402
from rmbg.webapp import AppConfig, Session  # noqa: E402
from rmbg.webapp.remove import progressive  # noqa: E402
from tests.support.app import EXAMPLE, serve_demo  # noqa: E402
from tests.support.browser import ARGS, CHROMIUM, TIMEOUT_MS  # noqa: E402
from tests.support.progressive import SLOWER, better, on_download  # noqa: E402, F401  (fixture)
from tests.u2netp_fixture import u2netp_path  # noqa: E402, F401  (fixture)


def test_the_plan_is_the_better_ready_model_for_the_default_only(better, monkeypatch):
    config = AppConfig()
    found = progressive.plan("u2netp", "u2netp", config)
    assert found == progressive.Plan("isnet-general", info("isnet-general").label, SLOWER)
    assert progressive.plan("u2netp", "isnet-general", config) is None  # the visitor picked U2-Net-p
    assert progressive.plan("fal-bria", "fal-bria", config) is None  # never for a paid provider
    public = AppConfig(public=True)  # a public app where visitors may not start this download
    assert progressive.plan("u2netp", "u2netp", public) is None
    monkeypatch.setenv(progressive.ENV, "0")
    assert progressive.plan("u2netp", "u2netp", config) is None
    monkeypatch.delenv(progressive.ENV)
    calibration.store("isnet-general", calibration.config_of("isnet-general"), progressive.MAX_S + 1)
    assert progressive.plan("u2netp", "u2netp", config) is None  # too slow to be worth the wait


@pytest.fixture(scope="module")
def launched():
    """(the page, its URL): one page for the file, built by rmbg.webapp.page (`import app` would build
    app.py's own page too) and launched on 127.0.0.1. Which better model runs is read at each click
    (the `better` fixture's settings), not at the build."""
    from rmbg.webapp.page import build_demo

    demo = build_demo(AppConfig())
    with serve_demo(demo) as url:
        yield demo, url


@pytest.fixture
def page_events(launched):
    """The page's Remove and the better run that follows it, as gradio calls them."""
    fns = {f.api_name: f.fn for f in launched[0].fns.values()}
    return fns["page_remove"], fns["page_remove_better"]


def test_the_page_shows_the_default_then_the_better_model(better, page_events):
    now, next_better = page_events
    first = now(Session(), str(EXAMPLE), "u2netp")  # (state, before/after, download, line, message)
    assert "U2-Net-p" in first[3] and "is on its way (about 6 s on this CPU) and will replace it" in first[3]
    assert better.gets == 0  # the page shows the fast result before the better model starts
    second = next_better(first[0], str(EXAMPLE), "u2netp")  # the event that follows, with the new state
    assert better.gets == 1  # IS-Net general ran once (its first run downloaded it)
    assert "IS-Net general" in second[3] and "on its way" not in second[3]
    assert second[1] is not first[1]  # a new before/after pair


def test_a_second_click_drops_the_first_clicks_better_result(better, page_events):
    import gradio as gr

    now, next_better = page_events
    visitor = gr.Request(session_hash="one-browser")
    first = now(Session(), str(EXAMPLE), "u2netp", request=visitor)
    runs = []  # the visitor clicks again while the first click's better model is already under way
    on_download(better, lambda: runs.append(now(first[0], str(EXAMPLE), "u2netp", request=visitor)))
    dropped = next_better(first[0], str(EXAMPLE), "u2netp", request=visitor)
    assert better.gets == 1 and len(runs) == 1 and "is on its way" in runs[0][3]
    assert dropped[:4] == (gr.skip(),) * 4  # its result arrived after the second click: not shown
    shown = next_better(runs[0][0], str(EXAMPLE), "u2netp", request=visitor)
    assert "IS-Net general" in shown[3]  # the second click's own better result is


def test_without_a_better_model_there_is_one_result(better, page_events, monkeypatch):
    import gradio as gr

    monkeypatch.setenv(progressive.ENV, "0")
    now, next_better = page_events
    first = now(Session(), str(EXAMPLE), "u2netp")
    assert "on its way" not in first[3]
    assert next_better(first[0], str(EXAMPLE), "u2netp")[:4] == (gr.skip(),) * 4 and better.gets == 0


def test_turns_make_an_earlier_click_of_the_same_session_stale():
    turns = progressive.Turns(kept=2)
    first = turns.take("a")
    assert turns.current("a", first)
    second = turns.take("a")
    assert not turns.current("a", first) and turns.current("a", second)
    other = turns.take("b")  # another browser session does not stop this one
    assert turns.current("a", second) and turns.current("b", other)
    assert turns.current(None, turns.take(None))  # no browser session (a direct call): never stale
    turns.take("c")  # the oldest session ("a") is forgotten: its turn counts as current again
    assert turns.current("a", first)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
@pytest.mark.slow  # two models in a launched app, driven in Chromium: 25-40 s on 2 cores
def test_the_page_shows_the_fast_result_then_the_better_one(better, launched):
    from playwright.sync_api import expect, sync_playwright

    seen = []  # the better model's runs so far when its weights were requested (its run began)
    shown_first = threading.Event()  # the page showed the fast result: the better run may go on
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(launched[1])
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
