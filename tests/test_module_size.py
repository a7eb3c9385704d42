"""No module of the package, the app or the benchmarks is over 350 lines: a
module a newcomer can read in one sitting (split along real seams when one
grows; docs/contributing.md)."""

from __future__ import annotations

from pathlib import Path

from tests.support import source

REPO = Path(__file__).resolve().parents[1]
MOST = 350


def test_no_module_is_over_350_lines():
    paths = [*source.python_files(REPO / "rmbg"), *source.python_files(REPO / "benchmarks"), REPO / "app.py"]
    sizes = {str(p.relative_to(REPO)): len(source.text(p).splitlines()) for p in paths}
    assert len(sizes) > 100  # the tree was found
    assert {path: n for path, n in sizes.items() if n > MOST} == {}
