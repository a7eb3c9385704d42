"""A warm click on Remove makes only what changed (issue #59, "fewer stops on the way"): a local model that
ran is kept built by the App (rmbg.webapp.context.Built) and built again when the provider table or an RMBG_*
setting changes, so the licence switch still refuses it; a free model's call builds no payer; the hosted rows
of the projection are made once per table and settings (rmbg.webapp.costs.offered_prices).
benchmarks/click_path.py counts the modules of a warm click on U2-Net-p; here a stand-in model shows which
modules a warm click no longer reaches, and the same trace of the first click shows that it does see them."""

from __future__ import annotations

import sys
import tempfile
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from rmbg.errors import LicenceError
from rmbg.registry import info, register, unregister
from rmbg.types import Cost, Matte
from rmbg.webapp import AppConfig, Keys, Look, Session
from rmbg.webapp.context import App, PriceBook
from rmbg.webapp.costs import projection_text
from rmbg.webapp.guard import Guarded, payer
from rmbg.webapp.look import OutputStore
from rmbg.webapp.remove import actions
from tests.support.app import EXAMPLE
from tests.support.providers import FreeLocal

PID = "kept-stand-in"
PACKAGE = str(Path(__file__).resolve().parents[1] / "rmbg")
# What a warm click made every time before (benchmarks/results/click_path.json had 46 modules): the provider
# built again (registry, licence switch, config, Hub and download checks) and the price table read for each
# hosted provider; and a payer for a free model, which no click builds now.
BUILDING = {
    "rmbg/registry.py",
    "rmbg/licences.py",
    "rmbg/provider_table.py",
    "rmbg/webapp/config.py",
    "rmbg/webapp/downloads.py",
}


class Counted(FreeLocal):
    """The stand-in model: alpha = the red channel; each build counted."""

    id, label = PID, "kept stand-in"
    built = 0

    def __init__(self) -> None:
        Counted.built += 1

    def matte(self, image):
        return Matte(alpha=image.getchannel("R"), cost=Cost.free("local"), seconds=0.01, meta={})


@pytest.fixture
def stand_in():
    Counted.built = 0
    register(PID, Counted)
    yield
    unregister(PID)


def app() -> App:
    return App.create(AppConfig(), store=OutputStore(Path(tempfile.mkdtemp())), cache=None)  # no cached mattes


def click(made: App, keys: Keys | None = None) -> str:
    return actions.remove(Session(), str(EXAMPLE), PID, Look(), keys or Keys(), made, 100)[1].cost_line


def traced(made: App) -> set[str]:
    """The package's modules whose code ran in one click."""
    ran: set[str] = set()

    def hook(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE):
            ran.add("rmbg" + frame.f_code.co_filename[len(PACKAGE) :])

    keys = Keys()  # the page makes them from its form before the click
    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        click(made, keys)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return ran


def test_a_local_model_is_built_once_and_again_after_the_table_or_a_setting_changes(stand_in, monkeypatch):
    made = app()
    first = click(made)
    assert click(made).split(" · ")[0] == first.split(" · ")[0] == "**kept stand-in**"
    assert Counted.built == 1
    assert click(app()) and Counted.built == 2  # each App keeps its own
    register(PID, Counted)  # the table changed: built again under it
    click(made)
    assert Counted.built == 3
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "1")  # a setting changed: the switch refuses what it kept
    with pytest.raises(
        LicenceError, match="kept-stand-in is refused: its licence is not known to allow commercial use"
    ):
        click(made)
    assert Counted.built == 3  # refused before it was built
    monkeypatch.delenv("RMBG_COMMERCIAL_ONLY")  # the settings it was built under again: the kept one runs
    click(made)
    assert Counted.built == 3


def test_a_warm_click_builds_nothing_and_reads_no_price_table(stand_in):
    made = app()
    cold = traced(made)
    assert BUILDING <= cold  # the trace sees them where they run
    warm = traced(made)
    assert warm & BUILDING == set()
    assert "rmbg/money/payer.py" not in cold | warm
    assert {"rmbg/webapp/remove/actions.py", "rmbg/api.py", "rmbg/webapp/costs.py", "rmbg/money/pricing.py"} <= warm


class Hosted(Counted):
    kind = "hosted"


def test_a_free_model_has_no_payer_and_a_hosted_one_pays_on_its_visitors_accounts(stand_in):
    made = app()
    assert payer(made, "s", Keys(), Counted()) is None
    paying = payer(made, "s", Keys(), Hosted())
    assert paying is not None and [a.key for a in paying.accounts()][0] == "session:s"
    with pytest.raises(TypeError, match="Guarded\\('kept-stand-in'\\) is a hosted provider with no payer"):
        Guarded(Hosted(), None).matte(Image.new("RGB", (2, 2)))


def test_the_projections_hosted_rows_follow_the_table_and_the_licence_switch(monkeypatch):
    declared = next(d for d in (info(pid) for pid in ("photoroom", "fal-bria")) if d.kind == "hosted")
    try:
        register("price-stand-in", declared.factory, replace(declared, id="price-stand-in", price_usd=Decimal("0.5")))
        assert "price-stand-in $50,000.00" in projection_text(PriceBook(), 100_000)
        register("price-stand-in", declared.factory, replace(declared, id="price-stand-in", price_usd=Decimal("0.2")))
        assert "price-stand-in $20,000.00" in projection_text(PriceBook(), 100_000)
        closed = replace(declared, id="price-stand-in", licence=info("rmbg-1.4").licence)  # non-commercial
        register("price-stand-in", declared.factory, closed)
        assert "price-stand-in" in projection_text(PriceBook(), 100_000)
        monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "1")
        assert "price-stand-in" not in projection_text(PriceBook(), 100_000)
    finally:
        unregister("price-stand-in")
    assert "price-stand-in" not in projection_text(PriceBook(), 100_000)
