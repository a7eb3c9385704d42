"""Batch manifests (`rmbg remove`'s resume state), on the same database as the
money ledger (RMBG_LEDGER): an SQLite file every process of the machine
shares, or PostgreSQL every machine shares.

Tables (created on first use):
- rmbg_manifest(folder, run, output, file, provider, seconds, cost, cost_source,
  status, error, written): one row per output a run ended (done, failed, not
  run), keyed by (output folder, run, output). `folder` is the output
  folder's own id (rmbg.cli.manifest.folder_id: a file inside it, so the
  manifest moves with the folder and goes with it); `run` is one batch's
  id. An output's current row is its newest.
- rmbg_claims(folder, output, run, owner, since, hold, paid): the output a
  run is making now. A run claims an output before it starts it (one
  transaction: no two runs ever hold the same output's claim), and its row
  replaces the claim in one transaction when it ends. A claim whose process
  is gone (kill -9, a crash, a machine lost) is swept by the next run: one
  whose output was written becomes that run's "done" row; an unpaid one is
  dropped (the output is made again); a paid one (a request that may have
  been sent) becomes a "may have been billed" row, so it is not sent again
  unless asked, unless an operator released its hold (`rmbg ledger settle
  ID --release`).

Amounts are integer nano-dollars, as in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ...types import MAY_HAVE_BEEN_BILLED
from .backends import Book
from .owners import owner, owner_alive, shown

CLAIM_STALE_S = 3600.0  # a claim of another host's process older than this is taken to be dead
GONE = "its process ended while its request was in flight (killed?); it may have been billed"
RECORDED_LATE = "its process ended after writing it, before recording it; recorded by the next run"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_manifest (folder TEXT NOT NULL, run TEXT NOT NULL, output TEXT NOT NULL, "
    "file TEXT NOT NULL, provider TEXT NOT NULL, seconds DOUBLE PRECISION NOT NULL, cost BIGINT NOT NULL, "
    "cost_source TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL, written DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (folder, run, output))",
    "CREATE TABLE IF NOT EXISTS rmbg_claims (folder TEXT NOT NULL, output TEXT NOT NULL, run TEXT NOT NULL, "
    "owner TEXT NOT NULL, since DOUBLE PRECISION NOT NULL, hold TEXT, paid INTEGER NOT NULL, "
    "file TEXT NOT NULL, provider TEXT NOT NULL, PRIMARY KEY (folder, output))",
)


class Row(NamedTuple):
    """One manifest row (manifest.csv's columns; cost in nano-dollars)."""

    file: str
    output: str
    provider: str
    seconds: float
    cost: int
    cost_source: str
    status: str
    error: str


class Claimed(NamedTuple):
    """A claim's answer: "ours" (go ahead), "busy" (another live run makes it:
    `who`), "done" (another run made it since ours started: `who`), or
    "uncertain" (a dead run's paid request for it may have been billed)."""

    state: str
    who: str = ""


def _dead(claim_owner: str, since: float, now: float) -> bool:
    alive = owner_alive(claim_owner)
    return alive is False or (alive is None and since < now - CLAIM_STALE_S)


class ManifestBook(Book):
    """Manifests and claims on one database (see the module docstring)."""

    SCHEMA = SCHEMA

    def claim(
        self,
        folder: str,
        output: str,
        run: str,
        *,
        started: float,
        file: str = "",
        provider: str = "",
        paid: bool = False,
        hold: str | None = None,
        now: float | None = None,
    ) -> Claimed:
        """Claim `output` for `run` (see Claimed). `started`: when this run
        began; an output another run made since then is not made again.

        The claim is written first and the made-since check follows it, in
        that order: a run that ends the output between the two (its row and
        the end of its claim commit together) is then always seen."""
        now = time.time() if now is None else now
        values = (folder, output, run, owner(), now, hold, int(paid), file, provider)
        with self.backend.transaction() as tx:
            for _ in range(3):  # a claim that ends while we look: look again
                inserted = tx(
                    "INSERT INTO rmbg_claims (folder, output, run, owner, since, hold, paid, file, provider) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (folder, output) DO NOTHING",
                    values,
                ).rowcount
                if inserted:
                    made = tx(
                        "SELECT run FROM rmbg_manifest WHERE folder = ? AND output = ? AND status = 'done' "
                        "AND written >= ? AND run <> ?",
                        (folder, output, started, run),
                    ).fetchone()
                    if made is None:
                        return Claimed("ours")
                    tx("DELETE FROM rmbg_claims WHERE folder = ? AND output = ? AND run = ?", (folder, output, run))
                    return Claimed("done", made[0])
                found = tx(
                    "SELECT run, owner, since, hold, paid, file, provider FROM rmbg_claims WHERE folder = ? "
                    "AND output = ?" + self.backend.for_update,
                    (folder, output),
                ).fetchone()
                if found is None:
                    continue
                if found[0] == run:
                    self._mark(tx, folder, output, paid, hold)
                    return Claimed("ours")
                if not _dead(found[1], found[2], now):
                    return Claimed("busy", shown(found[1]))
                if self._sweep_one(tx, folder, output, found, now):
                    return Claimed("uncertain", found[0])
        return Claimed("busy")

    def _mark(self, tx: Any, folder: str, output: str, paid: bool, hold: str | None) -> None:
        if paid:
            tx(
                "UPDATE rmbg_claims SET paid = 1, hold = ? WHERE folder = ? AND output = ?",
                (hold, folder, output),
            )

    def _sweep_one(
        self, tx: Any, folder: str, output: str, found: Any, now: float, made: Callable[[str], bool] | None = None
    ) -> bool:
        """Drop a dead run's claim; True when it was paid, its hold not released
        and its output not `made` (then it stays as a "may have been billed" row
        of that run). An output that was written before its process ended gets
        that run's "done" row, at what the ledger counts for it."""
        dead_run, _, _, hold, paid, file, provider = found
        tx("DELETE FROM rmbg_claims WHERE folder = ? AND output = ?", (folder, output))
        counted = 0  # what the ledger counts for it: the hold while in flight, else what it was settled at
        if paid and hold is not None:
            held = tx("SELECT state, held, final FROM rmbg_holds WHERE id = ?", (hold,)).fetchone()
            if held is not None and held[0] == "released":
                return False
            if held is not None:
                counted = int(held[1] if held[2] is None else held[2])
        if made is not None and made(output):
            source = "estimated" if paid else "free"
            row = Row(file, output, provider, 0.0, counted, source, "done", RECORDED_LATE)
            self._write(tx, folder, dead_run, row, now)
            return False
        if not paid:
            return False
        self._write(
            tx, folder, dead_run, Row(file, output, provider, 0.0, counted, MAY_HAVE_BEEN_BILLED, "failed", GONE), now
        )
        return True

    def sweep(self, folder: str, made: Callable[[str], bool] | None = None, now: float | None = None) -> int:
        """Clear the claims of dead runs on `folder` (see the module docstring;
        `made(output)`: whether the output is there); how many were paid and left nothing."""
        now = time.time() if now is None else now
        uncertain = 0
        with self.backend.transaction() as tx:
            claims = tx(
                "SELECT run, owner, since, hold, paid, file, provider, output FROM rmbg_claims WHERE folder = ?"
                + self.backend.for_update,
                (folder,),
            ).fetchall()
            for found in claims:
                if _dead(found[1], found[2], now):
                    uncertain += self._sweep_one(tx, folder, found[7], found[:7], now, made)
        return uncertain

    def record(self, folder: str, run: str, row: Row, now: float | None = None) -> None:
        """Write `run`'s row for an output and drop its claim, in one transaction."""
        now = time.time() if now is None else now
        with self.backend.transaction() as tx:
            self._write(tx, folder, run, row, now)
            tx("DELETE FROM rmbg_claims WHERE folder = ? AND output = ? AND run = ?", (folder, row.output, run))

    def _write(self, tx: Any, folder: str, run: str, row: Row, now: float) -> None:
        tx(
            "INSERT INTO rmbg_manifest (folder, run, output, file, provider, seconds, cost, cost_source, status, "
            "error, written) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (folder, run, output) DO UPDATE "
            "SET file = excluded.file, provider = excluded.provider, seconds = excluded.seconds, cost = excluded.cost, "
            "cost_source = excluded.cost_source, status = excluded.status, error = excluded.error, "
            "written = excluded.written",
            (folder, run, row.output, row.file, row.provider, row.seconds, row.cost, row.cost_source, row.status,
             row.error, now),
        )  # fmt: skip

    def current(self, folder: str) -> dict[str, tuple[str, Row]]:
        """Each output's newest row on `folder`: output -> (run, row)."""
        with self.backend.transaction() as tx:
            rows = tx(
                "SELECT run, file, output, provider, seconds, cost, cost_source, status, error FROM rmbg_manifest "
                "WHERE folder = ? ORDER BY written, run",
                (folder,),
            ).fetchall()
        return {r[2]: (r[0], Row(r[1], r[2], r[3], float(r[4]), int(r[5]), r[6], r[7], r[8])) for r in rows}

    def uncertain(self, folder: str) -> set[str]:
        """Outputs whose newest row says their request may have been billed and made nothing."""
        return {
            output
            for output, (_, row) in self.current(folder).items()
            if row.status == "failed" and row.cost_source == MAY_HAVE_BEEN_BILLED
        }

    def claims(self, folder: str) -> list[tuple[str, str, str]]:
        """(output, run, owner) of the claims on `folder`."""
        with self.backend.transaction() as tx:
            rows = tx("SELECT output, run, owner FROM rmbg_claims WHERE folder = ? ORDER BY output", (folder,))
            return [(r[0], r[1], r[2]) for r in rows.fetchall()]
