"""Writes into the docs' markdown files what their markers stand for (docs/hooks/results.py).

GitHub shows docs/*.md as they are, without the mkdocs hook: a bare `<!-- results: NAME -->` there
reads as nothing. This fills each marker's block (`<!-- KIND: start -->` ... `<!-- KIND: end -->`)
with the tables the site shows. After a benchmark writes its results file, or a setting, vendor or
provider is declared, run

    python docs/hooks/fill.py          # rewrites the blocks in docs/*.md
    python docs/hooks/fill.py --check  # exit 1, naming the stale files, when one is not current
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import ROOT, filled  # noqa: E402  (the mkdocs hook beside this script)

DOCS = ROOT / "docs"


def stale() -> dict[Path, str]:
    """Each docs page whose blocks are not what the files and declarations render now: {page: its text filled}."""
    found = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        fresh = filled(text)
        if fresh != text:
            found[page] = fresh
    return found


def main(argv: list[str]) -> int:
    pages = stale()
    if "--check" in argv:
        for page in pages:
            print(f"{page.relative_to(ROOT)} is stale: run python docs/hooks/fill.py", file=sys.stderr)
        return 1 if pages else 0
    for page, text in pages.items():
        page.write_text(text, encoding="utf-8")
        print(f"filled {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
