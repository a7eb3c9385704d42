"""benchmarks/harness.py and the docs hook that turns its results files into tables."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.support import source

REPO = Path(__file__).resolve().parents[1]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = load(REPO / "benchmarks" / "harness.py", "_bench_harness")
hook = load(REPO / "docs" / "hooks" / "results.py", "_docs_results_hook")


def test_ratio_alternates_the_order_and_timed_skips_warmup():
    calls = []
    _, a, b = harness.ratio(lambda: calls.append("a"), lambda: calls.append("b"), repeats=4, warmup=1)
    assert calls == ["b", "a", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then A B, B A, A B, B A
    timing, last = harness.timed(lambda: len(calls), repeats=3, warmup=2)
    assert len(a.seconds) == len(b.seconds) == 4
    assert len(timing.seconds) == 3 and last == 10


def test_write_results_follows_the_schema_and_the_hook_renders_it(tmp_path, monkeypatch):
    rows = [["u2netp", 0.25], ["a|b", 1234.5]]
    path = harness.write_results(
        "demo",
        "python benchmarks/demo.py --x",
        [harness.table("Demo", ["provider", "s"], rows, notes="One note.")],
        folder=tmp_path,
    )
    record = json.loads(path.read_text())
    assert path == tmp_path / "demo.json"
    assert set(record) == {"benchmark", "command", "date", "machine", "versions", "tables"}
    assert record["command"] == "python benchmarks/demo.py --x" and record["date"].endswith("Z")
    assert {"cpu", "flags", "cores", "memory_gib"} <= set(record["machine"])
    assert record["versions"]["python"] and record["tables"][0]["rows"] == rows
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        harness.table("Bad", ["a", "b"], [["only one"]])

    monkeypatch.setattr(hook, "RESULTS", tmp_path)
    page = hook.on_page_markdown("Before\n\n<!-- results: demo -->\n\nInline `<!-- results: demo -->` stays.\n")
    assert "| provider | s |\n|---|---|\n| u2netp | 0.25 |\n| a\\|b | 1234 |" in page
    assert "One note." in page and "Made by `python benchmarks/demo.py --x`" in page
    assert page.endswith("Inline `<!-- results: demo -->` stays.\n")


def test_a_marker_without_its_results_file_fails_the_build(tmp_path, monkeypatch):
    from mkdocs.exceptions import PluginError

    monkeypatch.setattr(hook, "RESULTS", tmp_path)
    with pytest.raises(PluginError, match="benchmarks/results/never-run.json, which does not exist"):
        hook.on_page_markdown("<!-- results: never-run -->\n")


def test_the_settings_marker_becomes_the_declared_table():
    from rmbg import settings

    assert hook.on_page_markdown("<!-- settings -->") == settings.markdown_table()


# --- every figure in the docs comes from a results file, and every results file is shown ------------

SCHEMA = ("benchmark", "command", "date", "machine", "versions", "tables")
# benchmarks that need what CI machines lack write their file where they run: quoted only once it exists
NEEDS_A_GPU = {"cuda"}


def quoted() -> set[str]:
    names = set()
    for page in REPO.joinpath("docs").rglob("*.md"):
        names |= hook.quoted(page.read_text(encoding="utf-8"))  # bare markers and filled blocks
    return names


def test_every_results_file_follows_the_schema_and_is_quoted_by_the_docs():
    files = {p.stem: p for p in REPO.joinpath("benchmarks", "results").glob("*.json")}
    for name, path in files.items():
        record = json.loads(path.read_text(encoding="utf-8"))
        assert tuple(k for k in SCHEMA if k in record) == SCHEMA, name
        assert record["benchmark"] == name and record["command"].startswith("python benchmarks/"), name
        assert record["machine"]["cpu"] and "flags" in record["machine"], name
        assert all(len(row) == len(t["columns"]) for t in record["tables"] for row in t["rows"]), name
    assert quoted() - set(files) == set()  # (the strict docs build fails on these too)
    assert set(files) - quoted() == set()  # a results file nobody reads is a figure that can drift


def test_benchmarks_import_the_package_not_the_tests():
    import ast

    for path in source.python_files(REPO / "benchmarks", nested=False):
        for node in source.walk(source.parse(path)):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("tests"), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("tests") for a in node.names), path.name
            elif isinstance(node, ast.Call) and source.dotted(node.func) == "sys.path.insert":
                # the one exception: BiRefNet's official code, a checkout the user names (--official-code)
                assert path.name == "speed_configs.py" and ast.unparse(node.args[1]) == "code", path.name
