"""What the app's own install (README's first command: requirements.txt) brings is what the
package imports: the suite always runs with the dev requirements, so a module that only the
dev set installs (scipy for the Benchmark tab, once) would pass every other test and fail
for every user. Each third-party module imported anywhere under rmbg/ must come with
requirements.txt (its packages and what they depend on), or be a declared optional one that
is only imported inside a function or a try, so the app starts and says how to get it."""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

from rmbg.errors import ModelUnavailableError
from tests.support import source

ROOT = Path(__file__).resolve().parents[1]

# Optional on purpose: module -> where it comes from. Each is imported lazily (checked below).
OPTIONAL = {
    "openvino": 'the openvino extra: pip install "rmbg[openvino]"',
    "nncf": 'the openvino extra: pip install "rmbg[openvino]"',
    "psycopg": 'the postgres extra (RMBG_LEDGER=postgresql://...): pip install "rmbg[postgres]"',
    "psycopg_pool": 'the postgres extra: pip install "rmbg[postgres]"',
    "ray": "--engine ray: pip install ray[data]",
    "pyarrow": "--engine ray (comes with ray[data])",
    "spaces": "Hugging Face ZeroGPU Spaces only (installed there)",
    "torchvision": "BiRefNet's compiled deformable convolution, when present (a pure torch one otherwise)",
}


def _imports() -> dict[str, list[tuple[Path, ast.AST, bool]]]:
    """Top-level module name -> (file, node, whether the import runs when its module is imported)."""
    found: dict[str, list[tuple[Path, ast.AST, bool]]] = {}

    def visit(path: Path, node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.setdefault(alias.name.split(".")[0], []).append((path, child, eager))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.setdefault(child.module.split(".")[0], []).append((path, child, eager))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try, ast.If)):
                visit(path, child, False)  # in a function, under try/except ImportError or a condition
            elif not isinstance(child, ast.expr):  # an expression holds no statement, so no import
                visit(path, child, eager)

    for path in source.python_files(ROOT / "rmbg"):
        visit(path, source.parse(path), True)
    skip = set(sys.stdlib_module_names) | {"rmbg", "__future__"}
    return {name: where for name, where in found.items() if name not in skip}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _requirements_closure() -> frozenset[str]:
    """Normalised names of the distributions requirements.txt installs, with their dependencies."""
    from packaging.requirements import Requirement

    todo = []
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            todo.append(Requirement(line))
    done: set[str] = set()
    while todo:
        req = todo.pop()
        for extra in req.extras or {""}:
            key = norm(req.name)
            if (key, extra) in done:
                continue
            done.add((key, extra))  # type: ignore[arg-type]
            try:
                dist = md.distribution(req.name)
            except md.PackageNotFoundError:
                continue
            for text in dist.requires or []:
                dep = Requirement(text)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append(dep)
    return frozenset(name for name, _ in done)  # type: ignore[misc]


def _distribution(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


@functools.cache
def _declared_modules(dist_name: str) -> frozenset[str]:
    """The modules an installed distribution's top_level.txt lists (none without that file)."""
    dist = _distribution(dist_name)
    return frozenset(((dist and dist.read_text("top_level.txt")) or "").split())


def _modules(dist_name: str) -> frozenset[str]:
    """The top-level modules an installed distribution provides, read as md.packages_distributions()
    reads them: its top_level.txt, else the first part of each of its files' paths."""
    declared, dist = _declared_modules(dist_name), _distribution(dist_name)
    if declared or dist is None:
        return declared
    return frozenset(f.parts[0].removesuffix(".py") for f in dist.files or [])


def _installed_with_requirements(name: str, closure: frozenset[str]) -> bool:
    """Whether module `name` is seen at once to come with requirements.txt: from the distribution of its
    own name, or one whose top_level.txt lists it. False says only "not at once": then
    md.packages_distributions(), which reads the file list of every installed distribution, decides."""
    own = norm(name)
    return (own in closure and name in _modules(own)) or any(name in _declared_modules(d) for d in closure)


@pytest.fixture(scope="module")
def imports():
    return _imports()


def test_every_module_the_package_imports_comes_with_the_apps_install_or_is_declared_optional(imports):
    closure = _requirements_closure()
    providers: dict[str, list[str]] = {}
    missing = []
    for name in sorted(imports):
        if name in OPTIONAL or _installed_with_requirements(name, closure):
            continue
        providers = providers or md.packages_distributions()
        # a module this machine lacks (torch in a run without it) is looked up by its own name
        dists = {norm(d) for d in providers.get(name, [name])}
        if not dists & closure:
            where = ", ".join(sorted({str(p.relative_to(ROOT)) for p, _, _ in imports[name]}))
            missing.append(f"{name} ({where})")
    assert missing == [], "imported by rmbg but not installed by requirements.txt: " + "; ".join(missing)


def test_optional_modules_are_only_imported_where_their_absence_can_be_answered(imports):
    eager = [
        f"{p.relative_to(ROOT)}:{node.lineno} {name}"
        for name in OPTIONAL
        for p, node, at_top in imports.get(name, [])
        if at_top
    ]
    assert eager == []


def test_scipy_and_matplotlib_come_with_the_app():
    """The Benchmark tab and `rmbg evaluate` score with scipy and draw with matplotlib (issue: the tab
    said '4 failed' on the app's own install)."""
    closure = _requirements_closure()
    assert {"scipy", "matplotlib"} <= closure


def test_an_evaluation_without_scipy_stops_before_any_provider_runs(monkeypatch, tmp_path):
    """Without the scorer, nothing is run (nor paid for): the error says what to install."""
    from PIL import Image

    import rmbg
    from rmbg.providers.base import ProviderStatus
    from rmbg.types import Cost, Matte

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "images" / "a.png")
    Image.new("L", (8, 8), 255).save(tmp_path / "masks" / "a.png")

    class Counting:
        """A local provider that counts its calls."""

        id, label, kind = "counting", "Counting", "local"
        calls = 0

        def options(self):
            return {}

        def status(self):
            return ProviderStatus("ready")

        def estimate(self):
            return Cost.free()

        def matte(self, image):
            Counting.calls += 1
            return Matte(Image.new("L", image.size, 255), Cost.free(), 0.0)

    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    with pytest.raises(ModelUnavailableError, match=r"needs scipy.*pip install scipy.*Nothing was run"):
        rmbg.evaluate(tmp_path, [Counting()])
    assert Counting.calls == 0


def test_the_benchmark_status_line_says_why_runs_failed():
    """'4 failed' alone told a visitor nothing: the commonest reasons are on the page, one line each."""
    from rmbg.eval.records import ImageRow
    from rmbg.webapp.benchmark.report import failure_reasons

    def failed(provider: str, error: str) -> ImageRow:
        return ImageRow(provider, "a.jpg", "", "a", "failed", error=error)

    rows = [failed("u2netp", "Scoring needs scipy"), failed("u2netp", "Scoring needs scipy"), failed("fal-bria", "x")]
    rows += [ImageRow("u2netp", "b.jpg", "", "b", "ok")]
    assert failure_reasons(rows) == " (u2netp x2: Scoring needs scipy; fal-bria x1: x)"
    assert failure_reasons(rows[3:]) == ""
    many = [failed(f"p{i}", f"reason *{i}*\n" + "y" * 300) for i in range(5)]
    text = failure_reasons(many)
    assert text.endswith("; 2 other reason(s) in the CSV)") and "*" not in text and "\n" not in text
    assert max(len(part) for part in text[2:-1].split("; ")) == len("p0 x1: ") + 200
