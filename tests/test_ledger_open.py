"""Processes opening one new SQLite ledger at the same moment (two `rmbg remove` runs on one
output folder, the app's replicas starting together): every one opens it. SQLite answered
"database is locked" at once, without its busy wait, to a connection switching a new file to
WAL while others did the same; the batch that met it ran without claims and paid for every
image the other run paid for too (tests/test_batch_storage.py saw 24 calls for 12 images)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

PROCESSES = 6
ROUNDS = 24


def _opener(folder: str, barrier, results) -> None:
    from rmbg.money.ledger import LedgerError
    from rmbg.money.ledger.backends import Sqlite

    for r in range(ROUNDS):
        barrier.wait()  # all at once, on a file none has made yet
        try:
            Sqlite(Path(folder) / f"ledger-{r}.sqlite3").create(["CREATE TABLE IF NOT EXISTS t (x INTEGER)"])
            results.put("ok")
        except LedgerError as exc:
            results.put(str(exc))


def test_processes_opening_a_new_ledger_at_once_all_open_it(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [ctx.Process(target=_opener, args=(str(tmp_path), barrier, results)) for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    answers = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    assert [a for a in answers if a != "ok"] == []
