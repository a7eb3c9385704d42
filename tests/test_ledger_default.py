"""The default ledger on a machine where it has never been: ~/.local/state/rmbg (or $XDG_STATE_HOME/rmbg)
is made at the first paid call, as the setting's documentation says.

Before, every opener named the default file in full (rmbg.money.ledger.configured()), which was then read
as an RMBG_LEDGER set by hand to a folder that does not exist: on a fresh machine, a new Space or a
container, with no RMBG_LEDGER set, the first paid call through the library or the CLI was refused
("RMBG_LEDGER names .../.local/state/rmbg/ledger.sqlite3, but .../.local/state/rmbg does not exist: make
it"), and the web app's cost line said "spending unknown" and refused paid calls likewise. Every test
and check sets RMBG_LEDGER (tests/conftest.py), so none had met the default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rmbg
from rmbg.money.ledger import close_all
from rmbg.money.ledger.spec import LedgerSettingError, check, parse
from tests.fakes.fal import TEST_KEY, FalFake

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cat.jpg"


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """A home with nothing under it, and no ledger setting."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("RMBG_LEDGER", raising=False)
    close_all()
    yield home
    close_all()


def test_the_first_paid_call_makes_the_default_ledger(fresh_home, monkeypatch):
    with FalFake() as fal:
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal.url)
        monkeypatch.setenv("FAL_KEY", TEST_KEY)
        result = rmbg.remove_background(EXAMPLE, "fal-bria", cache=None)
    assert result.cost.usd > 0
    ledger = fresh_home / ".local" / "state" / "rmbg" / "ledger.sqlite3"
    assert ledger.is_file()


def test_the_default_under_xdg_state_home_is_made_there(fresh_home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with FalFake() as fal:
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal.url)
        monkeypatch.setenv("FAL_KEY", TEST_KEY)
        assert rmbg.remove_background(EXAMPLE, "fal-bria", cache=None).cost.usd > 0
    assert (tmp_path / "state" / "rmbg" / "ledger.sqlite3").is_file()


def test_the_cli_pays_on_a_fresh_machine(fresh_home, tmp_path):
    with FalFake() as fal:
        env = {"HOME": str(fresh_home), "PATH": "/usr/bin:/bin", "FAL_KEY": TEST_KEY, "RMBG_FAL_QUEUE_URL": fal.url}
        done = subprocess.run(
            [sys.executable, "-m", "rmbg", "remove", str(EXAMPLE), "-o", str(tmp_path / "out"), "--provider",
             "fal-bria", "--max-cost", "1"],
            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Done 1" in done.stdout and (tmp_path / "out" / "cat.png").is_file()
    assert (fresh_home / ".local" / "state" / "rmbg" / "ledger.sqlite3").is_file()


def test_the_web_app_pays_and_counts_on_a_fresh_machine(fresh_home, tmp_path, monkeypatch):
    """A visitor's own fal key on an app started with nothing set: the cut-out is paid and its cost line
    counts it (before: "spending unknown", and the call refused)."""
    from rmbg.webapp import AppConfig, Keys, Look, Session
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.remove import actions

    app = App.create(AppConfig(), store=OutputStore(tmp_path / "store"), cache=None)
    with FalFake() as fal:
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal.url)
        shown = actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), Keys(fal=TEST_KEY), app, 100)[1]
    assert "unknown" not in shown.cost_line and "$0.018" in shown.cost_line, shown.cost_line


def test_a_folder_named_by_hand_must_still_be_there(fresh_home, tmp_path):
    spec = parse(str(tmp_path / "nowhere" / "ledger.sqlite3"))
    assert not spec.default
    with pytest.raises(LedgerSettingError, match="does not exist: make it, or correct the setting"):
        check(spec)
    named = parse(str(fresh_home / ".local" / "state" / "rmbg" / "ledger.sqlite3"))  # the default, in full
    assert named.default and check(named) is False  # new: made on first write
