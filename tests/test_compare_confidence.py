"""The Compare tab shows each matte's confidence (rmbg.confidence, Result.meta["confidence"]), marked
"unsure" under the level at which remove_background(escalate=...) would ask a better provider, so a
visitor sees where the free model doubts itself. Stand-ins from tests/test_evaluate_frontier.py."""

from __future__ import annotations

from rmbg.confidence import DEFAULT_BELOW, meta_text
from rmbg.webapp import AppConfig, Keys, Session
from rmbg.webapp.compare import comparing
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from tests.test_evaluate_frontier import FREE, block, data, registered  # noqa: F401  (the images and two stand-ins, registered)


def test_each_side_shows_its_confidence_and_the_unsure_one_says_so(registered, tmp_path):
    root, _, _ = registered
    app = App.create(AppConfig(allow_server_keys=True), store=OutputStore(tmp_path / "out"), cache=None)
    _, shown = comparing.run(Session(), str(root / "images" / "img3.png"), ["stand-free", "stand-better"], Keys(), app)
    unsure, sure = meta_text(FREE["img3"]), meta_text(block(45))
    assert float(unsure) < DEFAULT_BELOW <= float(sure)  # the crafted mattes: 0.427 and 0.991
    assert comparing.TABLE_HEADERS[3:] == ["status", "confidence"]  # the new column last
    assert {row[0]: (row[4], row[3]) for row in shown.table} == {
        "stand-free": (f"{unsure} · unsure (under {DEFAULT_BELOW})", "ok"),
        "stand-better": (sure, "ok"),
    }
