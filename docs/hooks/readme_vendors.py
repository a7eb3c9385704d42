"""README.md's table of the hosted services' keys, rendered from rmbg/vendors.py.

GitHub shows README.md as it is (no hook runs there), so it holds a copy of
the table between its markers; tests/test_vendors.py fails when the copy is
not what the declarations render. After changing a Vendor, run

    python docs/hooks/readme_vendors.py          # rewrites the table in README.md
    python docs/hooks/readme_vendors.py --check  # exit 1 when README.md is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import ROOT, declared  # noqa: E402  (the mkdocs hook beside this script)

README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- vendors: start -->\n)(?:.*?\n)?(<!-- vendors: end -->)", re.DOTALL)


def rendered(text: str) -> str:
    """`text` (README.md) with its vendors block holding the declarations' table."""
    if not BLOCK.search(text):
        raise SystemExit("README.md has no <!-- vendors: start --> ... <!-- vendors: end --> block")
    table = declared("vendors").markdown_table()
    return BLOCK.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    fresh = rendered(text)
    if "--check" in argv:
        return 0 if fresh == text else 1
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
