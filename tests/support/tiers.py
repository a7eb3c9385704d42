"""Test tiers: a marker on every test, set from what it uses, and a skip with a
reason where this machine lacks an optional package the test needs.

What a test uses is read from its code before anything runs (classify(), from
tests/conftest.py's pytest_collection_modifyitems):
- the modules imported, and the modules (or objects of modules) read as globals,
  by the test, by every fixture it reaches and by the helpers under tests/ those
  call, followed through; what a first-party module imports at its top counts;
- the test file's own imports (`import torch` at its top: all its tests need it);
- pytest.importorskip("package") in that code, and hypothesis's @given (fuzz);
- @pytest.mark.uses("torch", ...) on a test, class, file or parameter, and the
  `uses(...)` decorator on a fixture, helper or helper class, for a use the code
  does not show (a provider id in a string that loads torch; U2-Net-p's weights,
  run by ONNX Runtime; a PostgreSQL server, COMPONENTS).
Each package has a tier (TIERS); a test that reaches none is `fast`, the tier a
contributor runs first (`python -m pytest -m fast`). Tier markers written by
hand (@pytest.mark.slow) count too. docs/contributing.md has the commands.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib
import importlib.util
import inspect
import json
import os
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("rmbg", "tests", "app")  # read through: what their modules import at the top, importing them needs

# The tier of a test using each package (top-level import names; "app" is the repository's app.py).
_TIER_OF = {
    "app": ("app", "gradio", "gradio_client", "mcp", "starlette", "uvicorn"),
    "browser": ("playwright",),
    "ray": ("ray",),
    "model": ("torch", "torchvision", "transformers", "onnx", "onnxruntime"),
    "openvino": ("openvino", "nncf"),
    "fuzz": ("hypothesis", "schemathesis"),
    "db": ("postgresql",),
    "video": ("av",),
}
TIERS = {package: tier for tier, packages in _TIER_OF.items() for package in packages}
# What a tier holds that is no Python package: a PostgreSQL server started from Debian's binaries
# (tests/ledger_servers.py: its class is declared with uses("postgresql"), and so is the [postgresql]
# case of tests/support/ledgers.py's `spec`). A helper that starts one says so (started()), for the guard.
COMPONENTS = ("postgresql",)
# The tier markers (pyproject.toml registers them with what each means); a test with none of them is `fast`.
MARKERS = ("app", "browser", "ray", "model", "openvino", "fuzz", "db", "video", "slow")
# The long checks: tests in these tiers are also `long`, which `python -m pytest` leaves out (pyproject's
# addopts: -m "not long") so that the suite stays under 10 minutes on 2 cores; `-m long` runs them, and CI
# (.ci/run) runs them after the suite. A Ray cluster's start alone is about 9 s of CPU.
LONG = ("slow", "ray")
# Optional packages: a test (or a test file) needing one that is not installed is skipped, saying how to get it.
_HOW = {
    'the torch extra: pip install "rmbg[torch]"': ("torch", "torchvision"),
    'the onnx extra: pip install "rmbg[onnx]"': ("onnxruntime", "pooch"),
    'the openvino extra: pip install "rmbg[openvino]"': ("openvino", "nncf"),
    'the app extra: pip install "rmbg[app]"': ("gradio", "gradio_client", "mcp", "starlette", "uvicorn", "pydantic"),
    'the heic extra: pip install "rmbg[heic]"': ("pillow_heif",),
    'the eval extra: pip install "rmbg[eval]"': ("scipy", "matplotlib"),
    'the video extra: pip install "rmbg[video]"': ("av", "cv2"),
    'the postgres extra: pip install "rmbg[postgres]"': ("psycopg", "psycopg_pool"),
    "requirements.txt": ("transformers", "onnx"),
    "requirements-dev.txt": ("pysodmetrics", "pyarrow", "ray", "playwright", "hypothesis", "schemathesis"),
    "requirements-dev.txt (the docs build)": ("mkdocs",),
}
INSTALL = {package: how for how, packages in _HOW.items() for package in packages}
# rmbg modules (or functions) that import a package inside their functions: a test using one directly needs it.
LAZY = {"rmbg.eval.run": ("scipy",), "rmbg.eval.report.quality_cost_figure": ("matplotlib",)}
PART_OF = {"safetensors.torch": "torch"}  # a module that needs a package its name does not show
# A file importing one of these at its top has all its tests in its tier (a file may hold plain tests beside @given).
FILE_WIDE = set(TIERS) - {"hypothesis", "schemathesis", *COMPONENTS}


def uses(*packages: str) -> Callable:
    """Declare, on a fixture's or helper's function, packages it needs that its code does not import."""

    def declare(fn: Callable) -> Callable:
        fn.__test_uses__ = (*getattr(fn, "__test_uses__", ()), *packages)
        return fn

    return declare


def _codes(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


# Opcodes read from the raw bytecode (dis.get_instructions builds an object per instruction: a third
# of the collection's time). Since 3.11 LOAD_GLOBAL's name index is its argument shifted by one (the low
# bit: push NULL), since 3.12 LOAD_ATTR's too (the low bit: a method).
_OP = dis.opmap
_SHIFTED = {_OP["LOAD_GLOBAL"]} if sys.version_info >= (3, 11) else set()
_SHIFTED |= {_OP["LOAD_ATTR"]} if sys.version_info >= (3, 12) else set()
_CONST, _IMPORT, _FROM, _EXTENDED = _OP["LOAD_CONST"], _OP["IMPORT_NAME"], _OP["IMPORT_FROM"], _OP["EXTENDED_ARG"]
_GLOBALS = {_OP["LOAD_GLOBAL"], _OP["LOAD_NAME"]}
_ATTRS = {_OP[name] for name in ("LOAD_ATTR", "LOAD_METHOD") if name in _OP}
_NAMED = {_IMPORT, _FROM} | _GLOBALS | _ATTRS  # the opcodes whose argument indexes co_names


def _instructions(code: types.CodeType) -> Iterable[tuple[int, int]]:
    """(opcode, argument) of each instruction, EXTENDED_ARG folded in."""
    raw, extended = code.co_code, 0
    for at in range(0, len(raw), 2):
        op, arg = raw[at], raw[at + 1] | extended
        extended = arg << 8 if op == _EXTENDED else 0
        if op != _EXTENDED:
            yield op, arg


@functools.cache
def _reads(code: types.CodeType) -> tuple[frozenset[tuple[str, str]], frozenset[str], frozenset[str]]:
    """Of a code object and the code nested in it: the absolute imports as (module, name imported
    from it or ""), the global names read and the attribute names read."""
    imports, names, attrs = set(), set(), set()
    for nested in _codes(code):
        consts: list[object] = []
        current, skip_unless = None, False
        for op, arg in _instructions(nested):
            name = nested.co_names[arg >> 1 if op in _SHIFTED else arg] if op in _NAMED else None
            if op == _CONST:
                value = nested.co_consts[arg]
                consts.append(value)
                if skip_unless and isinstance(value, str):  # pytest.importorskip("ray")
                    imports.add((value, ""))
                skip_unless = False
            elif op == _IMPORT:
                current = name if len(consts) >= 2 and consts[-2] == 0 else None  # level 0
                if current:
                    imports.add((current, ""))
            elif op == _FROM and current:
                imports.add((current, name))
            elif op in _GLOBALS:
                names.add(name)
            elif op in _ATTRS:
                attrs.add(name)
                skip_unless = name == "importorskip"
    return frozenset(imports), frozenset(names), frozenset(attrs)


def _top(name: str | None) -> str:
    return (name or "").split(".")[0]


@functools.cache
def _source(module: str) -> Path | None:
    """The file of a first-party module, found without importing it (asked of every name a
    `from ... import` brings: looked for once)."""
    base = ROOT.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


@functools.cache
def needs(module: str) -> frozenset[str]:
    """The packages importing `module` needs: itself (and PART_OF), or for a first-party
    module those its parents and it import unconditionally at the top, followed through."""
    found: set[str] = set()
    todo, done = [module], set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        found.add(_top(name))
        found |= {p for part, p in PART_OF.items() if name == part or name.startswith(part + ".")}
        if _top(name) in FIRST_PARTY:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                todo.extend(_top_level_imports(".".join(parts[:depth])))
    return frozenset(found)


@functools.cache
def _top_level_imports(module: str) -> tuple[str, ...]:
    """The modules a first-party module imports unconditionally at its top (not under try/if: those are optional)."""
    path = _source(module)
    if path is None:
        return ()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for base, level, names in _import_statements(path):
        if names is None:  # `import a, b`
            found += base.split(",")
            continue
        if level:
            anchor = package.split(".")[: len(package.split(".")) - level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        found += [base, *(f"{base}.{name}" for name in names if _source(f"{base}.{name}"))]
    return tuple(found)


# A file's top-level import statements, as parsed, kept between runs beside the bytecode and keyed by the
# file's size and modification time: parsing the 440 files a collection reaches was about 2 s of CPU in each
# process that collects (each xdist worker), half of what the tiers cost there (tests/conftest.py keeps them).
KEPT = ROOT / "tests" / "__pycache__" / "tiers-imports.json"
_Statement = tuple[str, int, "list[str] | None"]  # (module, level, names): names None for `import a, b`
_fresh: dict[str, list] = {}


@functools.cache
def _kept() -> dict[str, list]:
    try:
        kept = json.loads(KEPT.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def _import_statements(path: Path) -> list[_Statement]:
    stat = path.stat()
    key, stamp = str(path), [stat.st_size, stat.st_mtime_ns]
    kept = _kept().get(key)
    if isinstance(kept, list) and len(kept) == 2 and kept[0] == stamp:
        return [(base, level, names) for base, level, names in kept[1]]
    found: list[_Statement] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.append((",".join(alias.name for alias in node.names), 0, None))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, [alias.name for alias in node.names]))
    _fresh[key] = [stamp, found]
    return found


def keep_imports() -> None:
    """Write the statements parsed in this process (tests/conftest.py, once the collection is done); a
    folder that cannot be written is left as it is."""
    if not _fresh:
        return
    kept = {**_kept(), **_fresh}
    try:
        KEPT.parent.mkdir(exist_ok=True)
        temporary = KEPT.with_name(f"{KEPT.name}.{os.getpid()}")
        temporary.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(temporary, KEPT)  # whole or not at all: xdist's workers write it at once
    except OSError:
        return
    _fresh.clear()


class _Reach:
    """What one test reaches: the packages, read from the code of its function, its fixtures
    and the helpers under tests/ they call. A helper class counts by the methods called on it
    anywhere in that code (and its constructor and context manager), not by all of them."""

    LIFECYCLE = ("__init__", "__post_init__", "__enter__", "__exit__", "__call__")

    def __init__(self) -> None:
        self.packages: set[str] = set()
        self.attrs: set[str] = set()
        self.classes: list[type] = []
        self.seen: set = set()

    def function(self, fn: Callable) -> None:
        fn, declared = inspect.unwrap(fn), getattr(fn, "__test_uses__", ())
        self.packages.update(declared, getattr(fn, "__test_uses__", ()))
        code = getattr(fn, "__code__", None)
        if code is None or code in self.seen:
            return
        self.seen.add(code)
        imports, names, attrs = _reads(code)
        self.attrs |= attrs
        for module, name in imports:
            self.imported(module, name)
        namespace = getattr(fn, "__globals__", {})
        for name in names:
            if name in namespace:
                self.object(namespace[name])

    def imported(self, module: str, name: str) -> None:
        """`import module` / `from module import name` inside a function; a helper imported so is followed."""
        found = needs(f"{module}.{name}" if name and _source(f"{module}.{name}") else module)
        self.packages.update(found, LAZY.get(module, ()), LAZY.get(f"{module}.{name}", ()))
        helper = _top(module) == "tests" and not module.rpartition(".")[2].startswith("test_")
        if name and helper and not any(p in INSTALL and not installed(p) for p in found):
            try:  # importing a helper module of the test suite is cheap and has no effects
                self.object(getattr(importlib.import_module(module), name))
            except (Exception, pytest.skip.Exception):
                pass

    def object(self, obj: object) -> None:
        """A global the code reads: a module, an object of a package, or a helper under tests/."""
        if isinstance(obj, types.ModuleType):
            self.packages |= needs(obj.__name__)
            return
        self.packages.update(getattr(obj, "__test_uses__", ()))
        obj = inspect.unwrap(obj) if callable(obj) else obj
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str):
            return
        if _top(module) != "tests":
            lazy = LAZY.get(f"{module}.{getattr(obj, '__qualname__', '')}", ())
            self.packages.update(needs(module), LAZY.get(module, ()), lazy)
        elif inspect.isfunction(obj):
            self.function(obj)
        elif inspect.isclass(obj) and obj not in self.classes:
            self.classes.append(obj)

    def finish(self) -> set[str]:
        """Follow the methods of the helper classes reached that are called, until nothing new is."""
        done: set[tuple[type, str]] = set()
        while True:
            todo = [
                (klass, name, member)
                for cls in self.classes
                for klass in cls.__mro__
                if _top(klass.__module__) == "tests"
                for name, member in vars(klass).items()
                if (name in self.LIFECYCLE or name in self.attrs) and (klass, name) not in done
            ]
            if not todo:
                return self.packages
            for klass, name, member in todo:
                done.add((klass, name))
                member = getattr(member, "__func__", getattr(member, "fget", member))  # static/class, property
                if inspect.isfunction(member):
                    self.function(member)


@functools.cache
def _file_wide(module: types.ModuleType) -> frozenset[str]:
    """What the test file's own import needs: its top-level imports, followed through."""
    found = set(needs(module.__name__)) if _source(module.__name__) else set()
    for value in vars(module).values():  # pytest.importorskip's modules, and a file outside the tree
        if isinstance(value, types.ModuleType):
            found |= needs(value.__name__)
    path = getattr(module, "__file__", None)
    for package in _skipped_unless(Path(path)) if path else ():  # a bare pytest.importorskip("mcp")
        found |= needs(package)
    return frozenset(found & FILE_WIDE)


@functools.cache
def _skipped_unless(path: Path) -> tuple[str, ...]:
    """The packages of a file's top-level `pytest.importorskip("package")`, bare or assigned."""
    found: list[str] = []
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body if "importorskip(" in text else ():
        call = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "importorskip":
            if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
                found.append(call.args[0].value)
    return tuple(found)


@functools.cache
def file_tier_packages(path: Path) -> frozenset[str]:
    """What _file_wide finds for a test file, read without importing it: its top-level imports
    (followed through, as needs() does) and its top-level `pytest.importorskip("package")`."""
    found = set(needs(f"tests.{path.stem}"))
    for package in _skipped_unless(path):
        found |= needs(package)
    return frozenset(found & FILE_WIDE)


def left_out_of_a_fast_run(path: Path, config: pytest.Config) -> bool:
    """In a run of the fast tier alone (-m fast), a test file whose own import puts all its tests in
    another tier (a file importing torch at its top) need not be imported at all: the collection then
    skips importing gradio, torch, Ray and OpenVINO. classify() checks, in every other run, that no
    test of such a file is fast."""
    in_tests = path.parent == ROOT / "tests" and path.name.startswith("test_") and path.suffix == ".py"
    return in_tests and config.getoption("markexpr", "").strip() == "fast" and bool(file_tier_packages(path))


def used_by(item: pytest.Item) -> set[str]:
    """Top-level names of the packages a collected test uses (see the module doc)."""
    reach = _Reach()
    module = getattr(item, "module", None)
    if module is not None:
        reach.packages |= _file_wide(module)
    fn = getattr(item, "obj", None)
    if callable(fn):
        reach.function(fn)
        if getattr(fn, "is_hypothesis_test", False):
            reach.packages.add("hypothesis")
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        func = getattr(defs[-1], "func", None) if defs else None
        if func is not None and _top(getattr(inspect.unwrap(func), "__module__", None)) == "tests":
            reach.function(func)
    for mark in item.iter_markers("uses"):
        reach.packages.update(mark.args)
    return reach.finish()


@functools.cache
def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def classify(items: list[pytest.Item]) -> None:
    """Put its tier markers (or `fast`) on every test, and skip those needing a package that is not installed."""
    for item in items:
        try:
            packages = used_by(item)
        except Exception as exc:  # an object the reading cannot follow: the test keeps its written marks
            item.warn(pytest.PytestWarning(f"its tier was not read from its code ({exc!r}): mark it by hand"))
            packages = {p for mark in item.iter_markers("uses") for p in mark.args}
        found = {TIERS[p] for p in packages if p in TIERS} | {m.name for m in item.iter_markers() if m.name in MARKERS}
        path = getattr(item, "path", None)
        if not found and path is not None and path.parent == ROOT / "tests" and file_tier_packages(path):
            raise pytest.UsageError(f"{item.nodeid} is fast, yet `-m fast` leaves its file out: left_out_of_a_fast_run")
        for tier in sorted(found) or ["fast"]:
            item.add_marker(tier)
        if found & set(LONG):
            item.add_marker("long")
        if missing := sorted(p for p in packages if p in INSTALL and not installed(p)):
            needs = "; ".join(f"{p} ({INSTALL[p]})" for p in missing)
            item.add_marker(pytest.mark.skip(reason=f"needs {needs}: not installed here"))


WEIGHT = {"slow": 100, "openvino": 10, "ray": 10, "browser": 10, "model": 2, "db": 2, "app": 1, "fuzz": 1}


def heavy_files_first(items: list[pytest.Item]) -> None:
    """The files by their tests' WEIGHT, heaviest first, then (among files of the same weight, the fast
    tier's all weigh 0) by their number of tests, most first; each file's own order kept. Under `-n` a
    long file started last would leave the other workers idle at the end of the run."""
    weight: dict[object, float] = {}
    tests: dict[object, int] = {}
    for item in items:
        weight[item.path] = weight.get(item.path, 0) + max([WEIGHT.get(m.name, 0) for m in item.iter_markers()] + [0])
        tests[item.path] = tests.get(item.path, 0) + 1
    items.sort(key=lambda item: (-weight[item.path], -tests[item.path]))


class _FilesInOrder:
    @pytest.hookimpl(trylast=True)  # after -m and -k have chosen the tests that run: only those are weighed
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        heavy_files_first(items)


def order_files(config: pytest.Config) -> None:
    """The tests that run, in heavy_files_first's order, and xdist told to hand the files out in that
    order. Under --dist loadfile, pytest-xdist 3 sorts the files by how many tests each has, most first,
    unless --no-loadscope-reorder is given: the heavy files with few tests (the fresh-process Ray run, the
    widths in the browser, the app's memory, the replicas) were handed out among the last, each then
    running at the end of the run while the other workers had nothing left."""
    config.pluginmanager.register(_FilesInOrder(), "rmbg-files-in-order")
    if hasattr(config.option, "loadscopereorder"):  # xdist loaded (pyproject's addopts loads it)
        config.option.loadscopereorder = False


# --- the fast tier's own check: a test in it that imports a tier's package is misfiled ----

_GUARDED = sorted(set(TIERS) - {"app", *COMPONENTS})  # app.py: a module name too common to watch
_BEFORE = pytest.StashKey[frozenset]()
_GUARD = pytest.StashKey[bool]()
_STARTED: set[str] = set()  # the COMPONENTS started in this process


def started(component: str) -> None:
    """Said by a helper as it starts one of COMPONENTS (a PostgreSQL server): in a fast-only run,
    the test that started it fails as one importing a tier's package does."""
    _STARTED.add(component)


def _loaded() -> frozenset[str]:
    """The tiers' packages imported, and COMPONENTS started: a name set to None in sys.modules is an
    import blocked (a test's "without the extra"), not one made."""
    return frozenset(p for p in _GUARDED if sys.modules.get(p) is not None) | frozenset(_STARTED)


def guard_fast_only(session: pytest.Session) -> None:
    """In a run of fast tests only (-m fast), each one is checked to import none of the tiers' packages
    and to start none of COMPONENTS."""
    session.config.stash[_GUARD] = bool(session.items) and all(i.get_closest_marker("fast") for i in session.items)


def before_setup(item: pytest.Item) -> None:
    if item.config.stash.get(_GUARD, False):
        item.stash[_BEFORE] = _loaded()


def after_call(item: pytest.Item) -> None:
    new = sorted(_loaded() - item.stash[_BEFORE]) if _BEFORE in item.stash else []
    if new:
        done = ", ".join(f"{'started' if p in COMPONENTS else 'imported'} {p}" for p in new)
        why = f"this test is in the fast tier but {done}: give it (or the fixture or helper that"
        pytest.fail(f"{why} does it) @pytest.mark.uses({', '.join(map(repr, new))}) (tests/support/tiers.py)", False)
