"""The docs' files read complete where GitHub shows them: every marker's block holds what the mkdocs
site shows there (docs/hooks/fill.py writes it, from benchmarks/results and the declarations), and
no page keeps a bare `<!-- results: NAME -->` that reads as nothing without the hook."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "docs" / "hooks"


def _hook(name: str):
    sys.path.insert(0, str(HOOKS))  # fill.py imports the results hook beside it
    try:
        spec = importlib.util.spec_from_file_location(f"_docs_hook_{name}", HOOKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(HOOKS))
    return module


fill = _hook("fill")
results = _hook("results")


def test_every_docs_page_holds_its_tables_as_they_render_now():
    stale = [str(page.relative_to(ROOT)) for page in fill.stale()]
    assert stale == [], "stale or empty markers: run python docs/hooks/fill.py"
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert not results.MARKER.search(page.read_text(encoding="utf-8")), page  # no bare marker left


def test_a_bare_marker_becomes_a_block_and_a_block_is_written_afresh():
    table = results.rendered("settings")
    block = f"<!-- settings: start -->\n\n{table}\n\n<!-- settings: end -->"
    assert results.filled("Settings:\n\n<!-- settings -->\n\nAfter.\n") == f"Settings:\n\n{block}\n\nAfter.\n"
    old = "Settings:\n\n<!-- settings: start -->\n| an old | table |\n<!-- settings: end -->\n"
    assert results.filled(old) == f"Settings:\n\n{block}\n"
    assert results.filled(f"Settings:\n\n{block}\n") == f"Settings:\n\n{block}\n"
    assert results.on_page_markdown(f"Settings:\n\n{block}\n") == f"Settings:\n\n{table}\n"  # the site: no markers


def test_the_pages_a_newcomer_found_empty_read_complete():
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "| `RMBG_MAX_PIXELS` | int (pixels) | 40000000 |" in configuration
    evaluation = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    after = evaluation.split("U²-Net-p on it:\n\n", 1)[1]
    assert after.startswith("<!-- results: quality: start -->\n\n**Quality on the DAVIS 2016 sample")
