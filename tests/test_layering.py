"""How the package's modules may depend on each other, read from their source:
no module reads another's private names, none imports the package root, and
the provider declarations (data) import no provider code. Imports inside
functions count as much as those at the top."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

from tests.support import source as code

PACKAGE = Path(__file__).resolve().parents[1] / "rmbg"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in code.python_files(PACKAGE)}


def imported_from(name: str, node: ast.ImportFrom) -> str:
    """The absolute module an `from ... import` reads from, inside module `name`."""
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str, source: ast.Module | None = None) -> list[tuple[str, str, int]]:
    """(module, name taken from it or "", line) for every import of module `name` (its file, or `source`),
    at any depth: inside a function as at the top."""
    return list(_imports(name, ast.walk(source))) if source is not None else list(_read(name)[0])


def _imports(name: str, nodes: Iterable[ast.AST]) -> tuple[tuple[str, str, int], ...]:
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = imported_from(name, node)
            found += [(source, alias.name, node.lineno) for alias in node.names]
    return tuple(found)


def private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


@functools.cache
def _read(name: str) -> tuple[tuple[tuple[str, str, int], ...], tuple[tuple[int, str, str], ...]]:
    """What the tests read of module `name`'s file, from one parse, kept for the test process (its tree is not:
    tests/support/source.py says why): its imports, and each `x._y` of a plain name x (line, x, _y)."""
    nodes = code.walk(code.parse(MODULES[name]))
    attributes = tuple(
        (node.lineno, node.value.id, node.attr)
        for node in nodes
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and private(node.attr)
    )
    return _imports(name, nodes), attributes


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
    for line, value, attr in _read(name)[1]:
        if value in bound:
            found.append(f"{name}:{line} {value}.{attr}")
    return found


def test_the_quick_walk_lists_what_ast_walk_lists():
    """tests/support/source.py's walk, which these checks read the package with, lists the nodes ast.walk
    lists, in its order: on a snippet of nested scopes and patterns, and on a large module."""
    snippet = "match x:\n    case [1, *rest] if rest:\n        y = lambda a=1: [b async for b in a if b]\n"
    for tree in (ast.parse(snippet), code.parse(MODULES["rmbg.webapp.remove.actions"])):
        assert [id(node) for node in code.walk(tree)] == [id(node) for node in ast.walk(tree)]


def test_the_package_was_read():
    assert {
        "rmbg",
        "rmbg.providers.local.pool",
        "rmbg.providers.local.calibration",
        "rmbg.declarations",
        "rmbg.webapp.remove.actions",
    } <= set(MODULES)


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
    """The one table imports only its kinds of row and its local half, which import nothing else from rmbg;
    the vendors' views read the table and nothing else."""

    def of_rmbg(name: str) -> list[str]:
        return sorted({source for source, _, _ in imports(name) if source.startswith("rmbg.")})

    assert of_rmbg("rmbg.declarations") == ["rmbg.declaration_types", "rmbg.local_declarations"]
    assert of_rmbg("rmbg.local_declarations") == ["rmbg.declaration_types"]
    assert of_rmbg("rmbg.declaration_types") == []
    assert of_rmbg("rmbg.vendors") == ["rmbg.declaration_types", "rmbg.declarations"]


# --- the layers: every import runs down or sideways, never back up ------------------------------

# The package's rooms (a top-level module, or a sub-package as a whole) in layers, the ground first.
# A room imports only rooms of its own layer or of the layers below it, at the top of a module or
# inside a function alike (and under TYPE_CHECKING too: a type named from above is a dependency
# on it), and no rooms import each other round in a circle. docs/architecture.md draws the same.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "ground",
        frozenset(
            {
                "rmbg._version",
                "rmbg.errors",
                "rmbg.declarations",
                "rmbg.declaration_types",
                "rmbg.local_declarations",
                "rmbg.vendors",
                "rmbg.settings_declared",
                "rmbg.confidence",
                "rmbg.settings",
                "rmbg.types",
                "rmbg.options",
                "rmbg.wording",
                "rmbg.licences",
                "rmbg.threads",
                "rmbg.cache",
            }
        ),
    ),  # fmt: skip
    ("networks and images", frozenset({"rmbg.models", "rmbg.image", "rmbg.result"})),
    ("money", frozenset({"rmbg.money", "rmbg.provider_table"})),
    ("providers", frozenset({"rmbg.providers", "rmbg.registry", "rmbg.refine", "rmbg.cascade"})),
    ("library", frozenset({"rmbg.defaults", "rmbg.replace", "rmbg.api", "rmbg.ray_cluster"})),
    ("video", frozenset({"rmbg.video"})),
    ("evaluation and comparison", frozenset({"rmbg.eval", "rmbg.compare"})),
    # rmbg.webapp is one room here with its feature folders (remove/, compare/, replace/, video/, benchmark/), its
    # kit ui/ and its doors (page, narrow, rest/); tests/test_webapp_layers.py keeps the layers inside it.
    ("doors", frozenset({"rmbg.cli", "rmbg.webapp"})),
    ("the package's face", frozenset({"rmbg", "rmbg.__main__"})),
)
LAYER_OF = {room: floor for floor, (_, rooms) in enumerate(LAYERS) for room in rooms}


def room_of(module: str) -> str:
    """A sub-package's modules are one room (rmbg.video.decode -> rmbg.video); a top-level module is its own."""
    parts = module.split(".")
    return (
        ".".join(parts[:2]) if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py") else module
    )


def arrows(sources: dict[str, ast.Module] | None = None) -> dict[tuple[str, str], list[str]]:
    """(room, room it imports) -> where, for every import between two rooms of the package
    (its modules as they are, or as `sources` has some of them instead)."""
    found: dict[tuple[str, str], list[str]] = {}
    for name in sorted(MODULES):
        for source, taken, line in imports(name, (sources or {}).get(name)):
            target = next((m for m in (f"{source}.{taken}", source) if m in MODULES), None)
            if target is not None and room_of(target) != room_of(name):
                found.setdefault((room_of(name), room_of(target)), []).append(f"{name}:{line} -> {target}")
    return found


def test_every_room_has_a_layer():
    rooms = {room_of(name) for name in MODULES}
    assert sorted(rooms - set(LAYER_OF)) == []  # a new module or sub-package: give it its layer above
    assert sorted(set(LAYER_OF) - rooms) == []


def upward(found: dict[tuple[str, str], list[str]]) -> list[str]:
    return [
        f"{where} ({LAYERS[LAYER_OF[a]][0]} -> {LAYERS[LAYER_OF[b]][0]})"
        for (a, b), places in found.items()
        if LAYER_OF.get(a, 0) < LAYER_OF.get(b, 0)
        for where in places
    ]


def test_no_import_runs_back_up_a_layer():
    assert upward(arrows()) == []


def test_no_rooms_import_each_other_round_a_circle():
    follows: dict[str, set[str]] = {}
    for a, b in arrows():
        follows.setdefault(a, set()).add(b)
    circles, state = [], {}  # room -> "open" while its imports are walked, "done" after

    def walk(room: str, path: list[str]) -> None:
        state[room] = "open"
        for nxt in sorted(follows.get(room, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[room] = "done"

    for room in sorted(follows):
        if room not in state:
            walk(room, [room])
    assert circles == []


def test_an_import_back_up_inside_a_function_is_caught():
    """The arrow that ran from the video engine up to the command line (before rmbg.ray_cluster), put back."""
    text = MODULES["rmbg.video.ray_video"].read_text(encoding="utf-8")
    text += "\n\ndef start_here():\n    from ..cli.ray_engine import run\n\n    return run\n"
    found = upward(arrows({"rmbg.video.ray_video": ast.parse(text)}))
    line = len(text.splitlines()) - 2
    assert found == [f"rmbg.video.ray_video:{line} -> rmbg.cli.ray_engine (video -> doors)"]


def test_an_import_back_up_from_a_web_app_feature_folder_is_caught():
    """A feature folder (rmbg/webapp/remove/) is in its door's room: reaching up to the package's face is caught."""
    text = MODULES["rmbg.webapp.remove.actions"].read_text(encoding="utf-8")
    text += "\n\ndef start_here():\n    from ...__main__ import main\n\n    return main\n"
    found = upward(arrows({"rmbg.webapp.remove.actions": ast.parse(text)}))
    line = len(text.splitlines()) - 2
    assert room_of("rmbg.webapp.remove.actions") == "rmbg.webapp"
    assert found == [f"rmbg.webapp.remove.actions:{line} -> rmbg.__main__ (doors -> the package's face)"]
