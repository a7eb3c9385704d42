"""The progressive Remove (rmbg.webapp.remove.progressive): with the out-of-the-box
model on a CPU, the page shows its cut-out at once and then a better free
model's, which replaces it; a visitor who moved on never gets the second run.

Real models: U2-Net-p (the real weights) is the default here; the better one is
IS-Net general with a tiny ONNX graph served from 127.0.0.1 (its first run
downloads it: the GETs at that server count its runs), measured as slower than
the 3 s budget in this machine's calibration cache."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rmbg.providers.local import calibration
from rmbg.registry import info
from rmbg.webapp import AppConfig, Session
from rmbg.webapp.remove import progressive
from tests.support.app import EXAMPLE
from tests.support.progressive import SLOWER, better, on_download  # noqa: F401  (fixture)
from tests.u2netp_fixture import u2netp_path  # noqa: F401  (fixture)


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


def page_events(demo):
    """The page's Remove and the better run that follows it, as gradio calls them."""
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    return fns["page_remove"], fns["page_remove_better"]


def test_the_page_shows_the_default_then_the_better_model(better):
    import app

    now, next_better = page_events(app.build_demo(AppConfig()))
    first = now(Session(), str(EXAMPLE), "u2netp")  # (state, before/after, download, line, message)
    assert "U2-Net-p" in first[3] and "is on its way (about 6 s on this CPU) and will replace it" in first[3]
    assert better.gets == 0  # the page shows the fast result before the better model starts
    second = next_better(first[0], str(EXAMPLE), "u2netp")  # the event that follows, with the new state
    assert better.gets == 1  # IS-Net general ran once (its first run downloaded it)
    assert "IS-Net general" in second[3] and "on its way" not in second[3]
    assert second[1] is not first[1]  # a new before/after pair


def test_a_second_click_drops_the_first_clicks_better_result(better):
    import gradio as gr

    import app

    now, next_better = page_events(app.build_demo(AppConfig()))
    visitor = gr.Request(session_hash="one-browser")
    first = now(Session(), str(EXAMPLE), "u2netp", request=visitor)
    runs = []  # the visitor clicks again while the first click's better model is already under way
    on_download(better, lambda: runs.append(now(first[0], str(EXAMPLE), "u2netp", request=visitor)))
    dropped = next_better(first[0], str(EXAMPLE), "u2netp", request=visitor)
    assert better.gets == 1 and len(runs) == 1 and "is on its way" in runs[0][3]
    assert dropped[:4] == (gr.skip(),) * 4  # its result arrived after the second click: not shown
    shown = next_better(runs[0][0], str(EXAMPLE), "u2netp", request=visitor)
    assert "IS-Net general" in shown[3]  # the second click's own better result is


def test_without_a_better_model_there_is_one_result(better, monkeypatch):
    import gradio as gr

    import app

    monkeypatch.setenv(progressive.ENV, "0")
    now, next_better = page_events(app.build_demo(AppConfig()))
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
