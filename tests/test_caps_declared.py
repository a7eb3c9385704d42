"""One default for each cap (docs/money.md): the session cap, the day's cap and
the bound are declared once, in rmbg.settings_declared, and every reader takes
its default from there (a changed declaration moves them all); the operator's
own runs have no daily cap unless RMBG_DAILY_CAP_USD is set, as the
declaration says; the money page states the declared defaults."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest

import rmbg.settings as settings
from rmbg.money.payer import Payer
from rmbg.money.paying import bound_x
from rmbg.settings import declared_number
from rmbg.webapp.config import AppConfig

CAPS = ("RMBG_SESSION_CAP_USD", "RMBG_DAILY_CAP_USD", "RMBG_PRICE_BOUND_X")
MONEY = Path(__file__).resolve().parents[1] / "docs" / "money.md"


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    for name in CAPS:
        monkeypatch.delenv(name, raising=False)


def declaring(monkeypatch, **defaults: str) -> None:
    """rmbg.settings reads SETTINGS with these defaults instead (the declaration changed)."""
    changed = tuple(
        dataclasses.replace(s, default=defaults[s.name]) if s.name in defaults else s for s in settings.SETTINGS
    )
    monkeypatch.setattr(settings, "SETTINGS", changed)


def test_every_reader_takes_its_default_from_the_declaration(monkeypatch):
    config = AppConfig.from_env({})
    assert (
        (config.cap_usd, config.daily_cap_usd)
        == (Decimal(1), Decimal(5))
        == (AppConfig().cap_usd, AppConfig().daily_cap_usd)
    )
    assert bound_x() == Decimal(2)
    declaring(monkeypatch, RMBG_SESSION_CAP_USD="0.5", RMBG_DAILY_CAP_USD="7", RMBG_PRICE_BOUND_X="3")
    config = AppConfig.from_env({})
    assert (config.cap_usd, config.daily_cap_usd, bound_x()) == (Decimal("0.5"), Decimal(7), Decimal(3))


def test_a_declaration_in_words_is_no_default_to_read():
    with pytest.raises(ValueError, match="RMBG_LEDGER declares no number as its default"):
        declared_number("RMBG_LEDGER")


def test_the_operators_own_runs_have_no_daily_cap_unless_it_is_set(monkeypatch):
    """The app's visitors are capped at the declared default; a CLI batch, the library and `evaluate`
    count in the same day's total, capped only by a value the operator set."""
    own, day = Payer.operator("batch", Decimal("0.10")).accounts()
    assert own.cap == Decimal("0.10") and day.key.startswith("day:") and day.cap is None
    assert AppConfig.from_env({}).daily_cap_usd == Decimal(5)
    monkeypatch.setenv("RMBG_DAILY_CAP_USD", "3")
    assert Payer.operator("batch", None).accounts()[1].cap == Decimal(3)
    meaning = next(s.meaning for s in settings.SETTINGS if s.name == "RMBG_DAILY_CAP_USD")
    assert "capped by it only where it is set" in meaning


def test_the_money_page_states_the_declared_defaults():
    rows = dict(re.findall(r"^\| `(RMBG_\w+)` \| ([^|]+) \|", MONEY.read_text(encoding="utf-8"), re.MULTILINE))
    for name in CAPS:
        assert Decimal(rows[name].strip()) == declared_number(name), name


@pytest.mark.parametrize("cap, shown", [("0.005", "$0.005"), ("0.5", "$0.50"), ("5", "$5.00"), ("0.0125", "$0.0125")])
def test_a_refusal_and_the_spending_line_show_the_cap_as_it_was_set(cap, shown):
    """A day's cap of $0.005 was refused as "($0.00 per UTC day)": cents rounded away what was set."""
    from rmbg.money.ledger import Account, Refused
    from rmbg.money.paying import Payment, refusal_words
    from rmbg.webapp.spending import hosted_text

    day, session = Account("day:2026-11-28", Decimal(cap)), Account("session:v", Decimal(cap))
    payment = Payment("runware-rembg", Decimal("0.0013"), (session, day))
    assert f"is used up ({shown} per UTC day across all visitors)" in refusal_words(Refused(day, Decimal(0)), payment)
    assert f"of its {shown} cap on hosted calls" in refusal_words(Refused(session, Decimal(0)), payment)
    assert hosted_text(Decimal("0.0013"), Decimal(cap)) == f"session: $0.0013 hosted (cap {shown})"
