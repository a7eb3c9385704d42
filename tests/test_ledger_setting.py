"""RMBG_LEDGER means one thing or is refused when it is read (rmbg.money.ledger.spec):
an absolute path or a postgresql:// URL. Other schemes, relative paths, a
folder, a device, a file that is not a ledger are refused with a sentence
before anything starts, nothing is created, and no password is echoed.
Before, each of these opened a new SQLite file relative to the working folder
(the MySQL password became a folder name), and `rmbg ledger holds` with a
mistyped value made the folders and an empty database and said "no holds in
flight". Real processes: the CLI and `python app.py`, run from a folder of
their own whose files are listed before and after.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbg.money.ledger import check_setting
from rmbg.money.ledger.spec import LedgerSettingError, parse
from tests.support.ledgers import postgres  # noqa: F401  (fixture: a PostgreSQL server)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2pw"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def rmbg(cwd: Path, ledger: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RMBG_LEDGER": ledger}
    return subprocess.run(
        [sys.executable, "-m", "rmbg", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def bad_values(tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (RMBG_LEDGER, words the refusal must hold)."""
    (tmp / "a-folder").mkdir()
    (tmp / "notes.txt").write_text("not a ledger")
    other = sqlite3.connect(tmp / "other.db")
    other.execute("CREATE TABLE things (x)")
    other.commit()
    other.close()
    return {
        "sqlite-url": ("sqlite:///ledger.db", "starts with 'sqlite':"),
        "mysql-url": (f"mysql://user:{SECRET}@db.internal/rmbg", "starts with 'mysql':"),
        "file-uri": ("file:ledger.db?mode=ro", "starts with 'file':"),
        "garbage": ("::garbage::", "relative path"),
        "relative": ("state/ledger.sqlite3", "relative path"),
        "folder": (str(tmp / "a-folder"), "which is a folder"),
        "device": ("/dev/null", "not a regular file"),
        "text-file": (str(tmp / "notes.txt"), "not an SQLite file"),
        "other-database": (str(tmp / "other.db"), "without the ledger's tables (rmbg_accounts, rmbg_holds)"),
        "missing-folder": (str(tmp / "no" / "such" / "ledger.sqlite3"), "does not exist"),
        "bad-postgres-port": (f"postgresql://user:{SECRET}@host:99999/db", "not a well-formed URL"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "sqlite-url",
        "mysql-url",
        "file-uri",
        "garbage",
        "relative",
        "folder",
        "device",
        "text-file",
        "other-database",
        "missing-folder",
        "bad-postgres-port",
    ],
)
def test_a_ledger_setting_that_names_no_ledger_is_refused_and_nothing_is_created(tmp_path, name):
    value, words = bad_values(tmp_path)[name]
    work = tmp_path / "work"
    work.mkdir()
    before = files_under(tmp_path)
    done = rmbg(work, value, "ledger", "holds")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "RMBG_LEDGER" in done.stderr and words in done.stderr, done.stderr
    assert "must be an absolute file path" in done.stderr and "nothing was created" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert files_under(tmp_path) == before  # no folder, no database, no -wal, anywhere


def test_ledger_holds_on_a_ledger_not_made_yet_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "ledger.sqlite3"
    done = rmbg(tmp_path, str(missing), "ledger", "holds")
    assert done.returncode == 1
    assert f"No spending ledger at {missing}" in done.stderr and "nothing was created" in done.stderr
    assert "no holds in flight" not in done.stdout
    assert files_under(tmp_path) == []
    settle = rmbg(tmp_path, str(missing), "ledger", "settle", "abc", "--usd", "0.02")
    assert settle.returncode == 1 and "No spending ledger" in settle.stderr
    assert files_under(tmp_path) == []


@pytest.mark.uses("gradio")
def test_the_app_refuses_to_start_on_a_setting_that_names_no_ledger(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RMBG_LEDGER": f"mysql://user:{SECRET}@db.internal/rmbg"}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("rmbg: error: RMBG_LEDGER starts with 'mysql':"), done.stderr[-2000:]
    assert SECRET not in done.stderr + done.stdout
    assert files_under(tmp_path) == []


def test_a_path_or_a_postgresql_url_is_taken_as_it_is(tmp_path):
    assert parse(str(tmp_path / "x.sqlite3")).value == str(tmp_path / "x.sqlite3")
    assert parse("~/ledger.sqlite3").value == str(Path.home() / "ledger.sqlite3")
    url = parse(f"postgresql://rmbg:{SECRET}@db:5432/rmbg")
    assert url.kind == "postgresql" and url.where == "postgresql://rmbg@db:5432/rmbg"
    assert parse("").default and parse(None).default
    assert check_setting(str(tmp_path / "new.sqlite3")) is None and files_under(tmp_path) == []


def test_a_ledger_emptied_to_zero_bytes_starts_free_work_but_is_said(tmp_path):
    """Not a setting error (a ledger truncated under a running app is one): the program starts, says it."""
    (tmp_path / "ledger.sqlite3").write_bytes(b"")
    words = check_setting(str(tmp_path / "ledger.sqlite3"))
    assert words is not None and "is empty (0 bytes): it was truncated or overwritten" in words


@pytest.mark.parametrize(
    "value", [f"://u:{SECRET}@", f"my db:{SECRET}@host/x", f"rel/u:{SECRET}@db", f"/postgresql://u:{SECRET}@db/x"]
)
def test_a_refused_setting_that_holds_a_password_is_not_quoted_with_it(value):
    """Found by the fuzzing below (CI, `://u:<password>@`): a value with no scheme was quoted whole as "the
    relative path"; now what comes before its last "@" is left out of every refusal. An absolute path holding
    "://" (a mistyped address) was an SQLite file named with the password: refused too."""
    with pytest.raises(LedgerSettingError) as refused:
        parse(value)
    assert SECRET not in str(refused.value) and str(refused.value).startswith("RMBG_LEDGER ")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzzed_ledger_settings_mean_one_thing_or_are_refused_without_the_secret(text):
    value = text.replace(SECRET, "")
    if "@" not in value and "://" in value:
        value = value.replace("://", f"://u:{SECRET}@", 1)  # where a URL has a place for a password, put one
    try:
        spec = parse(value)
    except LedgerSettingError as exc:
        assert SECRET not in str(exc)
        assert str(exc).startswith("RMBG_LEDGER ")
        return
    if spec.kind == "postgresql":
        assert value.strip().lower().startswith(("postgresql://", "postgres://")) and SECRET not in spec.where
    else:
        assert spec.kind == "sqlite" and os.path.isabs(spec.value)
        assert spec.default == (value.strip() == "")


def test_ledger_holds_on_a_postgresql_database_without_the_ledger_says_so_and_makes_no_table(postgres, tmp_path):  # noqa: F811
    done = rmbg(tmp_path, postgres.url, "ledger", "holds")
    assert done.returncode == 1 and "No spending ledger in postgresql://" in done.stderr, done.stderr
    import psycopg

    with psycopg.connect(postgres.url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE left(tablename, 5) = 'rmbg_'").fetchall()
    assert tables == []
