"""No module of the package, the app or the benchmarks is over 350 lines: a
module a newcomer can read in one sitting (split along real seams when one
grows; docs/contributing.md)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MOST = 350


def test_no_module_is_over_350_lines():
    paths = [*REPO.joinpath("rmbg").rglob("*.py"), *REPO.joinpath("benchmarks").rglob("*.py"), REPO / "app.py"]
    sizes = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in paths}
    assert len(sizes) > 100  # the tree was found
    assert {path: n for path, n in sizes.items() if n > MOST} == {}
