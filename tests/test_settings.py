"""rmbg.settings: every RMBG_* variable the code reads is declared once, read
together, and checked with an error that names it."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from rmbg import settings

REPO = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\bRMBG_[A-Z][A-Z0-9_]*")
NOT_VARIABLES = {"RMBG_14", "RMBG_20"}  # model specs in rmbg.models, not environment variables


def test_every_variable_in_the_code_is_declared():
    used = set()
    for path in [*REPO.joinpath("rmbg").rglob("*.py"), REPO / "app.py", *REPO.joinpath("benchmarks").glob("*.py")]:
        used |= set(VARIABLE.findall(path.read_text(encoding="utf-8")))
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


def test_the_docs_table_has_one_row_per_variable():
    rows = settings.markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [s.name for s in settings.SETTINGS]
