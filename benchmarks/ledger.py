"""What the money ledger adds to a paid call, on SQLite and on PostgreSQL.

    python benchmarks/ledger.py --calls 400 [--postgres-url postgresql://user@host:port/db]

For each store: the time one paid call spends in the ledger (rmbg.money.paying's
Policy.pay around a call that does nothing: reserve, then settle; median and
p95 over --calls calls, one thread), and paid calls per second through the
ledger from 1 and 8 threads of one process and from 4 processes at once (each
call a reserve and a settle against a shared daily account). SQLite is a
fresh file in a temporary folder (WAL, synchronous=FULL); PostgreSQL is the
server named by --postgres-url (its tables are created if missing and its
rows for this benchmark removed first).

Writes benchmarks/results/ledger.json (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from harness import table, write_results
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Payment, Policy

ROOT = Path(__file__).resolve().parent.parent
PAYMENT = Payment("bench-vendor", Decimal("0.001"), (Account("day:bench", Decimal("1000000")),))
WORKER = """
import sys, time
from decimal import Decimal
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Payment, Policy
policy = Policy(SqlLedger.open(sys.argv[1]))
payment = Payment("bench-vendor", Decimal("0.001"), (Account("day:bench", Decimal("1000000")),))
for _ in range(int(sys.argv[2])):
    policy.pay(payment, lambda: None, lambda out: Decimal("0.001"))
"""


def per_call_ms(policy: Policy, calls: int) -> tuple[float, float]:
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        policy.pay(PAYMENT, lambda: None, lambda out: Decimal("0.001"))
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(len(seconds) * 0.95)] * 1000


def threads_per_second(policy: Policy, threads: int, calls: int) -> float:
    each = max(1, calls // threads)

    def work() -> None:
        for _ in range(each):
            policy.pay(PAYMENT, lambda: None, lambda out: Decimal("0.001"))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return each * threads / (time.perf_counter() - start)


def processes_per_second(spec: str, processes: int, calls: int) -> float:
    each = max(1, calls // processes)
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, spec, str(each)]) for _ in range(processes)]
    if any(w.wait() for w in workers):
        raise SystemExit("a worker process failed")
    return each * processes / (time.perf_counter() - start)  # process start-up included: a lower bound


def measure(name: str, spec: str, calls: int) -> list:
    ledger = SqlLedger.open(spec)
    with ledger._tx() as run:
        run("DELETE FROM rmbg_accounts WHERE key = 'day:bench'")
        run("DELETE FROM rmbg_holds WHERE provider = 'bench-vendor'")
    policy = Policy(ledger)
    per_call_ms(policy, 20)  # warm-up: connections, the provider's first call
    median, p95 = per_call_ms(policy, calls)
    one, eight = threads_per_second(policy, 1, calls), threads_per_second(policy, 8, calls)
    four = processes_per_second(spec, 4, calls)
    ledger.close()
    return [name, round(median, 2), round(p95, 2), round(one), round(eight), round(four)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--postgres-url", default="", help="a PostgreSQL database to measure as well")
    args = parser.parse_args()
    rows = [measure("SQLite (WAL, synchronous=FULL)", str(Path(tempfile.mkdtemp()) / "ledger.sqlite3"), args.calls)]
    if args.postgres_url:
        rows.append(measure("PostgreSQL (same machine, TCP)", args.postgres_url, args.calls))
    columns = [
        "store",
        "ledger ms per paid call (median)",
        "p95 ms",
        "paid calls/s, 1 thread",
        "8 threads",
        "4 processes",
    ]
    notes = (
        "Each paid call is a reserve and a settle, two transactions; the call itself does nothing. "
        "The processes' figure includes their start-up, so it is a lower bound."
    )
    path = write_results("ledger", None, [table("The ledger's cost per paid call", columns, rows, notes)])
    print(path.read_text())


if __name__ == "__main__":
    main()
