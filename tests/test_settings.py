"""rmbg.settings: every RMBG_* variable the code reads is declared once, read
together, and checked with an error that names it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

import rmbg
from rmbg import settings
from rmbg.errors import ConfigurationError
from tests.fakes.runware import TEST_KEY, RunwareFake
from tests.support import source

REPO = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\bRMBG_[A-Z][A-Z0-9_]*")
NOT_VARIABLES = {"RMBG_14", "RMBG_20"}  # model specs in rmbg.models, not environment variables


def test_every_variable_in_the_code_is_declared():
    used = set()
    benchmarks = source.python_files(REPO / "benchmarks", nested=False)
    for path in [*source.python_files(REPO / "rmbg"), REPO / "app.py", *benchmarks]:
        used |= set(VARIABLE.findall(source.text(path)))
    assert used - NOT_VARIABLES - settings.NAMES == set()
    assert len(settings.NAMES) == len(settings.SETTINGS)  # no name declared twice


def test_current_is_one_object_until_a_variable_changes(monkeypatch):
    monkeypatch.setenv("RMBG_CACHE_MB", "64")
    first = settings.current()
    assert settings.current() is first and first.raw("RMBG_CACHE_MB") == "64"
    monkeypatch.setenv("RMBG_CACHE_MB", " 128 ")
    second = settings.current()
    assert second is not first and second.raw("RMBG_CACHE_MB") == "128"


def test_typed_reads_and_their_errors():
    s = settings.Settings.from_env(
        {
            "RMBG_OFFLINE": "Yes",
            "RMBG_ALLOW_SERVER_KEYS": "maybe",
            "RMBG_CPU_USD_PER_HOUR": "0.5",
            "RMBG_GPU_USD_PER_HOUR": "-1",
            "RMBG_CACHE_DIR": "~/x",
            "RMBG_CPU_ALLOCATOR": "jemalloc",
        }
    )
    assert s.flag("RMBG_OFFLINE") is True and s.flag("RMBG_URL_ALLOW_HOSTS") is None
    with pytest.raises(ValueError, match="RMBG_ALLOW_SERVER_KEYS must be 1 or 0, got 'maybe'"):
        s.flag("RMBG_ALLOW_SERVER_KEYS")
    assert s.decimal("RMBG_CPU_USD_PER_HOUR", Decimal(1)) == Decimal("0.5")
    assert s.decimal("RMBG_CACHE_MB", Decimal(512)) == Decimal(512)
    with pytest.raises(ValueError, match="RMBG_GPU_USD_PER_HOUR must be a number of 0 or more"):
        s.decimal("RMBG_GPU_USD_PER_HOUR", Decimal(1))
    assert s.path("RMBG_CACHE_DIR") == Path.home() / "x" and s.path("RMBG_U2NETP_PATH") is None
    with pytest.raises(ValueError, match="RMBG_CPU_ALLOCATOR='jemalloc': expected auto, reuse or system"):
        s.choice("RMBG_CPU_ALLOCATOR", ("auto", "reuse", "system"), "auto")
    with pytest.raises(KeyError, match="RMBG_NOPE is not declared"):
        s.raw("RMBG_NOPE")


@pytest.mark.parametrize(
    "value, said",
    [
        ("２", "must be written in ASCII digits 0-9, got '２'"),  # int(), float() and Decimal() read it as 2
        ("٢٠", "must be written in ASCII digits 0-9, got '٢٠'"),
        ("nan", "must be a number of 0 or more, got 'nan'"),
        ("inf", "must be a number of 0 or more, got 'inf'"),
        ("-1", "must be a number of 0 or more, got '-1'"),
    ],
)
def test_every_number_an_operator_sets_is_0_9_finite_and_not_below_0(value, said):
    """A count, a size, a time or a price: RMBG_MAX_PIXELS="２" was 2 pixels, RMBG_URL_DEADLINE_S="nan" a
    deadline that never comes, RMBG_CACHE_MB="-1" a cache that holds nothing; each is refused, named."""
    s = settings.Settings.from_env(
        {"RMBG_MAX_PIXELS": value, "RMBG_URL_DEADLINE_S": value, "RMBG_GPU_USD_PER_HOUR": value}
    )
    reads = {
        "RMBG_MAX_PIXELS": lambda: s.integer("RMBG_MAX_PIXELS", 1),
        "RMBG_URL_DEADLINE_S": lambda: s.number("RMBG_URL_DEADLINE_S", 1.0),
        "RMBG_GPU_USD_PER_HOUR": lambda: s.decimal("RMBG_GPU_USD_PER_HOUR"),
    }
    for name, read in reads.items():
        if name == "RMBG_MAX_PIXELS" and value in ("nan", "inf"):
            said_here = f"must be a whole number, got {value!r}"
        else:
            said_here = said
        with pytest.raises(ConfigurationError, match=f"^{name} {re.escape(said_here)}$"):  # an RmbgError, a ValueError
            read()
    ok = settings.Settings.from_env({"RMBG_MAX_PIXELS": "1_000", "RMBG_URL_DEADLINE_S": " 2.5", "RMBG_CACHE_MB": "0"})
    assert ok.integer("RMBG_MAX_PIXELS", 1) == 1000 and ok.number("RMBG_URL_DEADLINE_S", 1.0) == 2.5
    assert ok.number("RMBG_CACHE_MB", 5.0) == 0.0


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("RMBG_DAILY_CAP_USD", "five", "RMBG_DAILY_CAP_USD must be a number, got 'five'"),  # a bare ValueError
        ("RMBG_PRICE_BOUND_X", "0.5", "RMBG_PRICE_BOUND_X must be a number of 1 or more, got '0.5'"),  # made 1, unsaid
        ("RMBG_PRICE_BOUND_X", "inf", "RMBG_PRICE_BOUND_X must be a number of 1 or more, got 'inf'"),
    ],
)
def test_a_money_setting_that_cannot_be_used_refuses_the_paid_call_in_words(monkeypatch, name, value, said):
    monkeypatch.setenv(name, value)
    with RunwareFake() as fake:
        provider = rmbg.get_provider("runware-rembg", api_key=TEST_KEY, base_url=fake.url)
        with pytest.raises(rmbg.RmbgError, match=f"^{re.escape(said)}"):  # a bound refused: also "not sent"
            rmbg.remove_background(Image.new("RGB", (16, 16)), provider, cache=None)
    assert fake.calls == []  # refused before anything was sent


def test_the_docs_table_has_one_row_per_variable():
    rows = settings.markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [s.name for s in settings.SETTINGS]


# --- read only through rmbg.settings ------------------------------------------------

ENV_RECEIVERS = {"os.environ", "environ", "env"}


def _rmbg_constants(modules: list[Iterable[ast.AST]]) -> dict[str, str]:
    """NAME -> value of every assignment of an RMBG_* string (module or class level, any module), from each
    module's nodes."""
    found = {}
    for nodes in modules:
        for node in nodes:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                value = node.value.value
                if isinstance(value, str) and value.startswith("RMBG_"):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found[target.id] = value
    return found


def _key(node: ast.expr, constants: dict[str, str]) -> str:
    """The variable a read names: a literal, a known constant, else "?" and the expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Attribute) and node.attr in constants:  # self.URL_ENV, module.ENV_PATH
        return constants[node.attr]
    return "?" + ast.unparse(node)


def environment_reads(nodes: Iterable[ast.AST], constants: dict[str, str]) -> list[tuple[int, str]]:
    """(line, variable) of each read straight from the environment of an RMBG_* variable, or of
    a variable named by an expression that cannot be resolved here ("?expr"), among a module's nodes."""
    return resolved(reads_of_the_environment(nodes), constants)


def reads_of_the_environment(nodes: Iterable[ast.AST]) -> list[tuple[int, ast.expr]]:
    """(line, the expression naming the variable) of each read straight from the environment."""
    reads = []
    for node in nodes:
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and source.dotted(func.value) in ENV_RECEIVERS:
                key = node.args[0]
            elif source.dotted(func) in ("os.getenv", "getenv"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if source.dotted(node.value) in ENV_RECEIVERS:
                key = node.slice
        if key is not None:
            reads.append((node.lineno, key))
    return reads


def resolved(reads: list[tuple[int, ast.expr]], constants: dict[str, str]) -> list[tuple[int, str]]:
    """(line, variable) of those reads that name an RMBG_* variable or an expression not resolved here."""
    named = [(line, _key(key, constants)) for line, key in reads]
    return sorted((line, name) for line, name in named if name.startswith(("RMBG_", "?")))


# Reads by a name held in a variable that are not RMBG_* settings: the vendors' API keys
# (FAL_KEY, RUNWARE_API_KEY, ...), which rmbg.vendors.VENDORS declares.
DYNAMIC_READS_OF_OTHER_VARIABLES = {"rmbg/providers/hosted/payload.py": ["?env_var", "?n"]}


def test_no_module_reads_an_rmbg_variable_but_rmbg_settings():
    paths = [p for p in source.python_files(REPO / "rmbg") if p.name != "settings.py"] + [REPO / "app.py"]
    constants: dict[str, str] = {}
    raw = {}
    for path in paths:  # each module parsed and walked once; of its tree only its reads' keys are kept
        nodes = source.walk(source.parse(path))
        constants.update(_rmbg_constants([nodes]))  # in the modules' order, as over all of them at once
        raw[path] = reads_of_the_environment(nodes)
    found = {str(p.relative_to(REPO)): resolved(reads, constants) for p, reads in raw.items()}
    named = {path: [name for _, name in reads] for path, reads in found.items() if reads}
    assert named == DYNAMIC_READS_OF_OTHER_VARIABLES


def test_the_check_sees_each_way_of_reading():
    snippet = """
import os
ENV_URL = "RMBG_X_URL"
a = os.environ.get("RMBG_CACHE_MB")
b = os.environ["RMBG_MAX_PIXELS"]
c = os.getenv(ENV_URL)
class P:
    URL_ENV = "RMBG_Y_URL"
    def f(self, env):
        return env.get(self.URL_ENV), os.environ.get("HF_TOKEN")
def rate(name):
    return os.environ.get(name)
os.environ["RMBG_Z"] = "1"  # a write is not a read
"""
    nodes = list(ast.walk(ast.parse(snippet)))
    assert environment_reads(nodes, _rmbg_constants([nodes])) == [
        (4, "RMBG_CACHE_MB"),
        (5, "RMBG_MAX_PIXELS"),
        (6, "RMBG_X_URL"),
        (10, "RMBG_Y_URL"),
        (12, "?name"),
    ]
