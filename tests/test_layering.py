"""How the package's modules may depend on each other, read from their source:
no module reads another's private names, none imports the package root, and
the provider declarations (data) import no provider code. Imports inside
functions count as much as those at the top."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rmbg"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_from(name: str, node: ast.ImportFrom) -> str:
    """The absolute module an `from ... import` reads from, inside module `name`."""
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@functools.cache
def tree(name: str) -> ast.Module:
    """Module `name` parsed once for every test of this file (none changes a tree)."""
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def imports(name: str) -> list[tuple[str, str, int]]:
    """(module, name taken from it or "", line) for every import of module `name`."""
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = imported_from(name, node)
            found += [(source, alias.name, node.lineno) for alias in node.names]
    return found


def private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def private_reaches(name: str) -> list[str]:
    """Where module `name` takes a private name of another module of the package:
    `from .x import _y`, or `x._y` with x bound to a module of the package."""
    bound: dict[str, str] = {}  # local name -> module of the package
    found = []
    for source, taken, line in imports(name):
        if not taken:
            if source in MODULES:
                bound[source.split(".")[0]] = source.split(".")[0]
        elif f"{source}.{taken}" in MODULES:
            bound[taken] = f"{source}.{taken}"
        elif private(taken) and source in MODULES and source != name:
            found.append(f"{name}:{line} from {source} import {taken}")
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and private(node.attr):
            if node.value.id in bound:
                found.append(f"{name}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_the_package_was_read():
    assert {"rmbg", "rmbg.providers.local.pool", "rmbg.providers.local.calibration", "rmbg.declarations"} <= set(
        MODULES
    )


def test_no_module_reads_another_modules_private_names():
    assert [reach for name in sorted(MODULES) for reach in private_reaches(name)] == []


def test_no_module_imports_the_package_root():
    """`from rmbg import __version__` (or `from ... import __version__`) would climb
    back to the top of the package from below it; the version has a module of its own."""
    climbing = [
        f"{name}:{line} from {source} import {taken or '*'}"
        for name in sorted(MODULES)
        if name not in ("rmbg", "rmbg.__main__")
        for source, taken, line in imports(name)
        if source == "rmbg" and f"rmbg.{taken}" not in MODULES
    ]
    assert climbing == []


def test_the_declarations_import_no_provider_code():
    """The one table imports only the vendors' table (its key slots), which imports nothing from rmbg."""
    assert [source for source, _, _ in imports("rmbg.declarations") if source.startswith("rmbg.")] == ["rmbg.vendors"]
    assert [source for source, _, _ in imports("rmbg.vendors") if source.startswith("rmbg.")] == []
