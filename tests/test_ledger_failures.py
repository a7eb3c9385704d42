"""The ledger fails safe (rmbg.money.ledger, rmbg.money.paying), against real files, a
real second process and a real PostgreSQL server:

- reading what was spent never waits for another process's write lock (the
  spending line of a free cut-out waited 5 s and then failed);
- a ledger deleted, replaced or truncated under a running process is
  noticed: paid calls are refused with what happened, never a second, empty
  ledger (it was "no such table", then a new file, or "locked" for good);
- a ledger that fails between send and settle keeps the result, marked "the
  call was made and may have been billed", and settles it once it answers;
- a hold past its lease is counted but not waited for;
- a PostgreSQL server that stops is said in words, at once after the first
  failure (it was "PoolTimeout" after 5-6 s on every call).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from rmbg.errors import BudgetError
from rmbg.money.ledger import Account, Hold, LedgerError, Refused
from rmbg.money.ledger.owners import HOLD_LEASE_S
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Payment, Policy
from rmbg.types import Cost, Matte
from rmbg.webapp.spending import Ledger, hosted_text
from tests.ledger_servers import PostgresServer, pg_bin

ROOT = Path(__file__).resolve().parents[1]
PRICE = Decimal("0.01")
DAY = (Account("day:f", Decimal("1")),)

HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # the write lock, held until this process is told to go
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "ledger.sqlite3"


def matte(usd: Decimal = PRICE) -> Matte:
    return Matte(Image.new("L", (2, 2)), Cost(usd, "reported"), 0.1)


def test_reading_what_was_spent_does_not_wait_for_another_process_holding_the_write_lock(path, monkeypatch):
    monkeypatch.setattr("rmbg.money.ledger.sqlite.BUSY_S", 3.0)  # a writer's busy wait, 5 s in the product
    ledger = SqlLedger.open(str(path))
    policy = Policy(ledger)
    policy.pay(Payment("v", PRICE, (Account("session:s", Decimal(1)),)), matte, lambda m: m.cost.usd)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        spending = Ledger(Decimal(1), Decimal(5), policy=policy)
        started = time.monotonic()
        assert spending.session_spent("s") == PRICE
        assert time.monotonic() - started < 3.0  # a read that waited would take the busy wait (3 s here)
        started = time.monotonic()
        with pytest.raises(BudgetError, match="locked by another process for more than 3 s"):
            policy.reserve(Payment("v", PRICE, DAY))  # a paid call still cannot be held: after the busy wait
        assert time.monotonic() - started >= 3.0
    finally:
        holder.communicate("go\n", timeout=30)
        ledger.close()


def test_a_ledger_deleted_under_a_running_process_refuses_paid_calls_and_is_not_made_again(path):
    ledger = SqlLedger.open(str(path))
    policy = Policy(ledger)
    policy.pay(Payment("v", PRICE, DAY), matte, lambda m: m.cost.usd)
    path.unlink()
    with pytest.raises(BudgetError, match=r"ledger .* was deleted\. Paid calls are refused") as refused:
        policy.reserve(Payment("v", PRICE, DAY))
    assert "was not sent" in str(refused.value)
    other = SqlLedger.open(str(path))  # a second process would make a new one; this one must not use it
    with pytest.raises(BudgetError, match="was replaced by another file"):
        policy.reserve(Payment("v", PRICE, DAY))
    assert Ledger(Decimal(1), Decimal(5), policy=policy).day_spent() is None
    other.close()
    ledger.close()


def test_a_truncated_ledger_is_said_to_be_truncated_not_locked(path):
    ledger = SqlLedger.open(str(path))
    Policy(ledger).pay(Payment("v", PRICE, DAY), matte, lambda m: m.cost.usd)
    ledger.close()
    first = SqlLedger.open(str(path))
    os.truncate(path, 0)
    with pytest.raises(BudgetError, match=r"is empty \(0 bytes\): it was truncated") as refused:
        Policy(first).reserve(Payment("v", PRICE, DAY))
    assert "locked" not in str(refused.value)
    with pytest.raises(LedgerError, match=r"is empty \(0 bytes\): it was truncated"):
        SqlLedger.open(str(path))  # a process started now: the empty file is not taken for a new ledger
    assert path.stat().st_size == 0
    first.close()


def test_a_result_the_vendor_made_survives_a_ledger_that_fails_before_the_settle(path, caplog):
    ledger = SqlLedger.open(str(path))
    policy = Policy(ledger)
    aside = path.with_name("aside.sqlite3")

    def vendor_answers_then_the_ledger_goes() -> Matte:
        path.rename(aside)  # the file moved away while the call was out (deleted, say)
        return matte(Decimal("0.013"))

    with caplog.at_level(logging.ERROR, logger="rmbg.money.paying"):
        got = policy.pay(Payment("v", PRICE, DAY), vendor_answers_then_the_ledger_goes, lambda m: m.cost.usd)
    assert got.cost.unrecorded and got.cost.usd == Decimal("0.013")
    assert "the call was made and may have been billed" in got.cost.label()
    [line] = [r.getMessage() for r in caplog.records if r.name == "rmbg.money.paying"]
    [hold] = policy.unsettled
    assert f"rmbg ledger settle {hold.id} --usd 0.013" in line and "was made and may have been billed" in line
    aside.rename(path)  # the ledger answers again
    assert ledger.spent("day:f") == 2 * PRICE  # meanwhile held at its bound: counted, never less
    nxt = policy.reserve(Payment("v", PRICE, DAY))
    assert policy.unsettled == [] and [h.state for h in ledger.holds(None)] == ["settled", "held"]
    assert ledger.spent("day:f") == Decimal("0.013") + nxt.usd
    ledger.close()


def test_a_hold_past_its_lease_is_counted_but_never_waited_for(path):
    ledger = SqlLedger.open(str(path))
    cap = [Account("day:l", Decimal("0.05"))]
    stuck = ledger.reserve("p", cap, Decimal("0.04"), probe=False, now=1000.0)
    assert isinstance(stuck, Hold)  # its process lives on (this one) and never settles
    later = 1000.0 + HOLD_LEASE_S + 1
    got = ledger.reserve("p", cap, Decimal("0.04"), floor=Decimal("0.02"), probe=False, now=later)
    assert got == Refused(cap[0], Decimal("0.04"))  # not Wait("room"): the stuck hold gives nothing back
    edge = ledger.reserve("p", cap, Decimal("0.04"), floor=Decimal("0.01"), probe=False, now=later)
    assert isinstance(edge, Hold) and edge.usd == Decimal("0.01")  # the room left, alone at the edge
    assert ledger.spent("day:l", later) == Decimal("0.05")
    ledger.close()


def test_a_postgresql_server_that_stops_is_said_in_words_and_at_once(caplog):
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries on this machine (Debian: apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    stopped = False
    try:
        ledger = SqlLedger.open(server.url)
        policy = Policy(ledger)
        policy.pay(Payment("v", PRICE, DAY), matte, lambda m: m.cost.usd)
        server.stop()
        stopped = True
        took = []
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(BudgetError) as refused:
                policy.reserve(Payment("v", PRICE, DAY))
            took.append(time.monotonic() - started)
            assert "closed the connection" in str(refused.value) or "refused the connection" in str(refused.value)
            assert "PoolTimeout" not in str(refused.value) and "was not sent" in str(refused.value)
        assert max(took[1:]) < 0.5, took  # each took 5-6 s
        assert hosted_text(Ledger(Decimal(1), Decimal(5), policy=policy).session_spent("x"), Decimal(1)).startswith(
            "session: hosted spending unknown (the spending ledger cannot be read"
        )
        ledger.close()
    finally:
        if not stopped:
            server.stop()


class Vendor:
    """A hosted provider whose call succeeds while the ledger's file is moved away (as a full disk, a
    truncated file or a stopped server would fail the settle after the vendor took the call)."""

    id, label, kind = "fake-vendor", "Fake vendor", "hosted"

    def __init__(self, path: Path):
        self.path = path

    def options(self) -> dict:
        return {}

    def estimate(self) -> Cost:
        return Cost(PRICE, "estimated")

    def matte(self, image) -> Matte:
        self.path.rename(self.path.with_name("aside.sqlite3"))
        return Matte(Image.new("L", image.size, 255), Cost(PRICE, "reported"), 0.1)


def test_the_visitor_is_told_the_call_was_made_and_may_have_been_billed(path):
    import rmbg
    from rmbg.money.payer import Paid, Payer
    from rmbg.webapp.costs import result_line
    from rmbg.webapp.look import Look
    from rmbg.webapp.rest.routes import headers_of

    ledger = SqlLedger.open(str(path))
    paid = Paid(Vendor(path), Payer(Policy(ledger), DAY))
    result = rmbg.remove_background(Image.new("RGB", (8, 6)), paid, cache=None)
    assert result.cost.unrecorded
    assert "the call was made and may have been billed" in result_line(result, "Fake vendor")
    assert headers_of(result, Look(), "x")["X-Rmbg-Warning"].startswith("the call was made and may have been billed")
    ledger.close()


def test_a_batch_whose_ledger_is_deleted_stops_paying_and_ends_with_its_summary(path, tmp_path, monkeypatch, capsys):
    """The ledger deleted during a paid batch's third call: that call's result is kept, the rest are not sent
    and are listed with the reason; it was "rmbg: error" and no summary (the storage's manifest rows failed)."""
    from rmbg.cli.main import main
    from tests.fakes.runware import TEST_KEY, RunwareFake

    photos, out = tmp_path / "in", tmp_path / "out"
    photos.mkdir()
    for i in range(8):
        Image.new("RGB", (24, 16), (40 * i, 90, 200)).save(photos / f"img{i}.png")
    with RunwareFake() as fake:
        own = fake.handle

        def handle(call):
            if call.method == "POST" and sum(c.method == "POST" for c in fake.calls) == 3:
                for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    name.unlink(missing_ok=True)
            return own(call)

        fake.handle = handle
        monkeypatch.setenv("RMBG_LEDGER", str(path))
        monkeypatch.setenv("RMBG_RUNWARE_URL", fake.url)
        monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)
        code = main(["remove", str(photos), "-o", str(out), "-p", "runware-rembg", "--max-cost", "1", "-j", "1"])
        sent = sum(c.method == "POST" for c in fake.calls)
    said = capsys.readouterr()
    assert code == 1 and sent == 3 and "rmbg: error" not in said.err
    lines = said.out.splitlines()
    assert lines[0].startswith("Done 3, skipped 0 (output exists), failed 0, not run 5 (refused) in ")
    assert lines[1] == "Not run: (5): " + ", ".join(f"{photos}/img{i}.png" for i in range(3, 8))
    assert lines[2].startswith(
        f"  The spending ledger {path} (setting RMBG_LEDGER) was deleted. Paid calls are refused"
    )
    assert sorted(p.name for p in out.glob("*.png")) == [f"img{i}.png" for i in range(3)]
