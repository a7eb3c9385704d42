"""The durable ledger and the one paid-call rule (rmbg.money.ledger, rmbg.money.paying),
against real databases: an SQLite file and a PostgreSQL server started from
the distribution's package (tests.ledger_servers). The same contract runs on
both; processes are real processes; the counting server is a real socket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rmbg.errors import BudgetError
from rmbg.money.ledger import Account, Hold, Refused, Wait
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Payment, Policy
from tests.support.ledgers import postgres, spec  # noqa: F401  (fixtures: both databases)

ROOT = Path(__file__).resolve().parents[1]
PRICE = Decimal("0.01")  # each call's estimate; it holds 2x (the default bound)


@pytest.fixture
def ledger(spec):
    opened = SqlLedger.open(spec)
    yield opened
    opened.close()


class Counter(ThreadingHTTPServer):
    """A paid vendor that counts the requests that arrive (a real socket on 127.0.0.1)."""

    def __init__(self) -> None:
        self.arrived = 0
        self.lock = threading.Lock()

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with outer.lock:
                    outer.arrived += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


# --- the contract, on both databases ----------------------------------------------------


def test_a_hold_counts_until_settled_and_released_calls_cost_nothing(ledger):
    day = Account("day:1", Decimal("1"))
    hold = ledger.reserve("p", [day], Decimal("0.3"), now=10.0)
    assert isinstance(hold, Hold) and ledger.spent("day:1", 10.0) == Decimal("0.3")
    ledger.settle(hold.id, Decimal("0.1"), now=11.0)
    gone = ledger.reserve("p", [day], Decimal("0.5"), now=12.0)
    assert isinstance(gone, Hold)
    ledger.release(gone.id, now=13.0)
    assert ledger.spent("day:1", 13.0) == Decimal("0.1")
    assert [h.state for h in ledger.holds(None)] == ["settled", "released"]


def test_a_cap_refuses_for_certain_waits_while_room_may_come_back_and_takes_its_edge_alone(ledger):
    cap = Account("session:s", Decimal("0.05"))
    first = ledger.reserve("p", [cap], Decimal("0.04"), floor=Decimal("0.02"), probe=False, now=1.0)
    assert isinstance(first, Hold) and first.usd == Decimal("0.04")
    # 0.04 held + 0.04 > 0.05, but the hold may come back: wait, do not refuse
    assert ledger.reserve("p", [cap], Decimal("0.04"), floor=Decimal("0.02"), probe=False, now=2.0) == Wait("room")
    ledger.settle(first.id, Decimal("0.02"), now=3.0)
    edge = ledger.reserve("p", [cap], Decimal("0.04"), floor=Decimal("0.02"), probe=False, now=4.0)
    assert isinstance(edge, Hold) and edge.usd == Decimal("0.03")  # alone at the edge: the room left
    ledger.settle(edge.id, Decimal("0.02"), now=5.0)
    refused = ledger.reserve("p", [cap], Decimal("0.04"), floor=Decimal("0.02"), probe=False, now=6.0)
    assert refused == Refused(cap, Decimal("0.04"))


def test_a_providers_first_call_runs_alone_across_ledger_objects(spec):
    one, two = SqlLedger.open(spec), SqlLedger.open(spec)  # as two processes would
    try:
        cap = [Account("day:x", Decimal("10"))]
        probe = one.reserve("vendor", cap, PRICE)
        assert isinstance(probe, Hold) and probe.probe
        assert two.reserve("vendor", cap, PRICE) == Wait("probe")
        one.settle(probe.id, PRICE)
        after = two.reserve("vendor", cap, PRICE)
        assert isinstance(after, Hold) and not after.probe
        one.release(probe.id)  # already settled: changes nothing
        assert two.spent("day:x") == 2 * PRICE
    finally:
        one.close()
        two.close()


def test_an_idle_session_is_forgotten_but_the_day_is_not(ledger):
    session, day = Account("session:v", Decimal("1"), idle_s=3600), Account("day:d", Decimal("5"))
    hold = ledger.reserve("p", [session, day], Decimal("0.2"), probe=False, now=0.0)
    assert ledger.spent("session:v", 7200.0) == Decimal("0.2")  # in flight: kept
    ledger.settle(hold.id, Decimal("0.2"), now=100.0)
    assert ledger.spent("session:v", 3701.0) == 0 and ledger.spent("day:d", 3701.0) == Decimal("0.2")


# --- the rule, through Policy.pay -----------------------------------------------------------


def test_a_vendor_that_raises_its_price_cannot_pass_the_cap(ledger):
    """Concurrent calls that each report 10x the table: the first goes alone, is counted in full,
    and its provider is refused after it (rmbg.money.price_watch): the cap is passed by that one call at most."""
    policy = Policy(ledger)
    cap = (Account("day:raise", Decimal("0.30")),)
    payment = Payment("raiser", Decimal("0.05"), cap)
    barrier = threading.Barrier(8)
    paid: list[Decimal] = []

    def call() -> None:
        barrier.wait()
        try:
            paid.append(policy.pay(payment, lambda: Decimal("0.50"), lambda reported: reported))
        except BudgetError:
            pass

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(paid) == 1
    assert ledger.spent("day:raise") == Decimal("0.50") == sum(h.final or 0 for h in ledger.holds(None))


def test_a_failed_call_costs_what_its_request_got_to(ledger):
    from rmbg.money import charging

    policy = Policy(ledger)
    payment = Payment("v", PRICE, (Account("day:f", Decimal("1")),))

    def dropped() -> None:
        charging.current().dropped()
        raise OSError("connection reset")

    def refused() -> None:
        charging.current().answered(charging.Charge.REFUSED)
        raise OSError("401")

    for fail in (dropped, refused):
        with pytest.raises(OSError):
            policy.pay(payment, fail, lambda out: PRICE)
    assert ledger.spent("day:f") == PRICE  # the dropped one, at its estimate; the refused one released


@pytest.mark.parametrize("broken", ["corrupt", "down"])
def test_a_broken_ledger_refuses_the_paid_call_before_it_is_sent(tmp_path, monkeypatch, broken):
    counter = Counter()
    if broken == "corrupt":
        spec = tmp_path / "corrupt.sqlite3"
        spec.write_bytes(b"this is not a database" * 100)
        words = "not an SQLite file: not a ledger"
    else:
        spec, words = "postgresql://rmbg:secret@127.0.0.1:1/none", "refused the connection"  # nothing listens on port 1
    monkeypatch.setenv("RMBG_LEDGER", str(spec))
    with pytest.raises(BudgetError, match=words) as raised:
        Policy().pay(Payment("v", PRICE, (Account("day:b", Decimal(1)),)), lambda: post(counter.url), len)
    assert "was not sent" in str(raised.value) and "secret" not in str(raised.value)
    assert counter.arrived == 0
    counter.shutdown()


def post(url: str) -> bytes:
    import httpx

    return httpx.post(url, timeout=10).content


# --- several processes, one ledger -------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys, threading
    from decimal import Decimal
    import httpx
    from rmbg.errors import BudgetError
    from rmbg.money.ledger import Account
    from rmbg.money.paying import Payment, Policy
    spec, url, cap, n = sys.argv[1], sys.argv[2], Decimal(sys.argv[3]), int(sys.argv[4])
    from rmbg.money.ledger.sql import SqlLedger
    policy = Policy(SqlLedger.open(spec))
    payment = Payment("shared-vendor", Decimal("0.01"), (Account("day:shared", cap),))
    go = threading.Barrier(n)
    def one():
        go.wait()
        try:
            policy.pay(payment, lambda: httpx.post(url, timeout=30), lambda r: Decimal("0.01"))
        except BudgetError:
            pass
    threads = [threading.Thread(target=one) for _ in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    """
)


def run_workers(spec: str, url: str, processes: int, calls: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, spec, url, "0.05", str(calls // processes)], env=env)
        for _ in range(processes)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0] * processes


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_on_one_ledger_share_the_cap(spec, processes):
    """20 (or 21) concurrent paid calls from several processes, a cap that allows 5: 5 arrive."""
    counter = Counter()
    run_workers(spec, counter.url, processes, 21 if processes == 3 else 20)
    counter.shutdown()
    assert counter.arrived == 5
    ledger = SqlLedger.open(spec)
    assert ledger.spent("day:shared") == Decimal("0.05")
    ledger.close()


KILLED = textwrap.dedent(
    """
    import sys, time
    from decimal import Decimal
    from rmbg.money.ledger import Account
    from rmbg.money.ledger.sql import SqlLedger
    from rmbg.money.paying import Payment, Policy
    policy = Policy(SqlLedger.open(sys.argv[1]))
    def accepted_then_hang():
        print("sent", flush=True)
        time.sleep(600)
    policy.pay(Payment("slow-vendor", Decimal("0.02"), (Account("day:k", Decimal("0.05")),)), accepted_then_hang, len)
    """
)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"the call waited ({seconds} s): nothing it waits for can come back")


def test_a_call_in_flight_when_its_process_is_killed_stays_counted(spec):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, spec],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == "sent"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ledger = SqlLedger.open(spec)  # "after restart"
    try:
        assert ledger.spent("day:k") == Decimal("0.04")  # the hold (2 x $0.02): its fate is unknown
        day = (Account("day:k", Decimal("0.05")),)
        # $0.02 more does not fit beside it, and the dead call gives nothing back: refused at once, never waited for
        # (it was waited for, the whole wait_s of every call, while its hold stayed "in flight")
        with pytest.raises(BudgetError, match="daily budget"):
            Policy(ledger, sleep=no_sleep).reserve(Payment("slow-vendor", Decimal("0.02"), day))
        # the dead process's first call no longer blocks the provider; the remainder is $0.05 - $0.04
        edge = Policy(ledger, wait_s=0).reserve(Payment("slow-vendor", Decimal("0.005"), day))
        assert edge.usd == Decimal("0.01") and edge.probe
        [dead] = [h for h in ledger.holds() if h.provider == "slow-vendor" and h.id != edge.id]
        result = subprocess.run(
            [sys.executable, "-m", "rmbg.cli.main", "ledger", "holds"],
            capture_output=True,
            text=True,
            env={**os.environ, "RMBG_LEDGER": spec, "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
        assert dead.id in result.stdout and "gone" in result.stdout
        settle = subprocess.run(
            [sys.executable, "-m", "rmbg.cli.main", "ledger", "settle", dead.id, "--usd", "0.02"],
            capture_output=True,
            text=True,
            env={**os.environ, "RMBG_LEDGER": spec, "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
        assert settle.returncode == 0, settle.stderr
        assert ledger.spent("day:k") == Decimal("0.03")  # $0.02 settled by hand + the edge's $0.01 hold
    finally:
        ledger.close()


@pytest.mark.parametrize("typed", ["99999999999", "1e30", "1000000.01"])
def test_a_hold_settled_by_hand_at_an_impossible_amount_is_refused_as_the_line_is_read(
    ledger, spec, typed, monkeypatch, capsys
):
    """`rmbg ledger settle ID --usd 99999999999` (digits typed twice) was an OverflowError traceback from the
    database: the ledger counts nano-dollars in 64 bits. Now a usage error, the hold left as it was."""
    from rmbg.cli.main import main

    monkeypatch.setenv("RMBG_LEDGER", spec)
    hold = ledger.reserve("slow-vendor", (Account("day:k"),), Decimal("0.02"))
    assert isinstance(hold, Hold)
    assert main(["ledger", "settle", hold.id, "--usd", typed]) == 2
    assert f"--usd: must be at most $1,000,000 for one call, not {typed!r}" in capsys.readouterr().err
    assert [h.state for h in ledger.holds()] == ["held"] and ledger.spent("day:k") == Decimal("0.02")
    assert main(["ledger", "settle", hold.id, "--usd", "1000000"]) == 0  # the most: a bill, however large
    assert ledger.spent("day:k") == Decimal(1_000_000)
