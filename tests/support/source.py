"""The repository's own Python source, for the checks that read it (tests/test_layering.py,
test_webapp_layers.py, test_settings.py, test_install_sets.py, test_one_money_wrapper.py,
test_one_registry.py, test_module_size.py, test_harness.py).

No file changes while the suite runs, so each file's text is read once for the test process (text).
Its tree is not kept: each check parses the file afresh (parse), walks it once (walk) and keeps only
what it found. The package's trees are some 350,000 objects; held for the whole process, every later
full garbage collection in that worker walks them all: timed with time.process_time, a million small
allocations after the money check took 1.3 to 1.6 s instead of 0.5 to 0.8 s, more than the shared
parse saved. The files are listed afresh at each call (python_files), so a new module is always read.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "rmbg"


def python_files(folder: Path = PACKAGE, *, nested: bool = True) -> list[Path]:
    """The Python files under `folder` (in its sub-folders too unless nested=False), sorted, as they are now."""
    return sorted(folder.rglob("*.py") if nested else folder.glob("*.py"))


@functools.cache
def text(path: Path) -> str:
    """The file's text (UTF-8), read once for the test process."""
    return path.read_text(encoding="utf-8")


def parse(path: Path) -> ast.Module:
    """The file's module, parsed now (the caller keeps what it needs of it)."""
    return ast.parse(text(path), filename=str(path))


def walk(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree`, in ast.walk's order (breadth first, each node's children in field order), listed
    in about half ast.walk's time: no generator per node."""
    found = [tree]
    for node in found:  # the list grows as it is read
        for name in node._fields:
            field = getattr(node, name, None)
            if isinstance(field, ast.AST):
                found.append(field)
            elif isinstance(field, list):
                found += [item for item in field if isinstance(item, ast.AST)]
    return found


def dotted(node: ast.AST) -> str | None:
    """A name or a dotted name ("os.environ", "sys.path.insert") as ast.unparse writes it, without writing
    the whole expression out: None for anything else, which ast.unparse never writes as a dotted name
    (a call, a subscript, a literal, ...)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None
