"""The Benchmark tab's blind votes, on the same database as the money ledger
(RMBG_LEDGER: an SQLite file, or PostgreSQL shared by every replica).

Tables (created on first use):
- rmbg_votes(voter, image, pair_a, pair_b, shown_left, shown_right, winner,
  voted_at):
  one row per vote; `pair_a` < `pair_b` are the pair's two providers in
  sorted order, so the primary key (voter, image, pair_a, pair_b) lets one
  visitor vote once on one image's pair, whichever side each was shown on
  and however often the pair is asked for again. A second vote is refused
  by the database itself (INSERT ... ON CONFLICT DO NOTHING), so concurrent
  requests, several processes and several replicas cannot slip one through.
- rmbg_vote_tickets(token, voter, image, shown_left, shown_right, issued): a
  pair shown and not yet voted on; the vote takes its ticket and writes
  itself in one transaction (a ticket is used at most once, and a vote is
  never lost between the two). Tickets older than TICKET_S are dropped.
- rmbg_meta(key, value): what was done once (an old votes file imported).

`voter` is an opaque digest (rmbg.webapp.benchmark.arena.voter_digest), `image` a
content hash: the database never holds a session id nor a pixel.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple

from .backends import Book

TICKET_S = 86_400.0  # a pair shown longer ago than this can no longer be voted on

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_votes (voter TEXT NOT NULL, image TEXT NOT NULL, pair_a TEXT NOT NULL, "
    "pair_b TEXT NOT NULL, shown_left TEXT NOT NULL, shown_right TEXT NOT NULL, winner TEXT NOT NULL, "
    "voted_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (voter, image, pair_a, pair_b))",
    "CREATE TABLE IF NOT EXISTS rmbg_vote_tickets (token TEXT PRIMARY KEY, voter TEXT NOT NULL, "
    "image TEXT NOT NULL, shown_left TEXT NOT NULL, shown_right TEXT NOT NULL, issued DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rmbg_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class Ballot(NamedTuple):
    """One vote as stored: who, which image, the sides as shown, the winner."""

    voter: str
    image: str
    left: str
    right: str
    winner: str


class Taken(NamedTuple):
    """What a ticket named, and whether its vote counted (False: this voter had
    already voted on this image's pair)."""

    ballot: Ballot
    counted: bool


class VoteBook(Book):
    """The votes on one database (see the module docstring)."""

    SCHEMA = SCHEMA

    def issue(self, token: str, voter: str, image: str, left: str, right: str, now: float | None = None) -> None:
        """Remember the pair shown to `voter` under `token` (and forget stale tickets)."""
        now = time.time() if now is None else now
        with self.backend.transaction() as run:
            run("DELETE FROM rmbg_vote_tickets WHERE issued < ?", (now - TICKET_S,))
            run(
                "INSERT INTO rmbg_vote_tickets (token, voter, image, shown_left, shown_right, issued) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (token, voter, image, left, right, now),
            )

    def take(self, token: str, voter: str, side: str, now: float | None = None) -> Taken | None:
        """Use `token` once: its vote for `side` ("left" or "right") is written in
        the same transaction. None when the ticket is unknown, used, stale or
        another voter's."""
        now = time.time() if now is None else now
        with self.backend.transaction() as run:
            row = run(
                "SELECT voter, image, shown_left, shown_right, issued FROM rmbg_vote_tickets WHERE token = ?"
                + self.backend.for_update,
                (token,),
            ).fetchone()
            if row is None or row[0] != voter or row[4] < now - TICKET_S:
                return None
            run("DELETE FROM rmbg_vote_tickets WHERE token = ?", (token,))
            ballot = Ballot(voter, row[1], row[2], row[3], row[2] if side == "left" else row[3])
            counted = self._insert(run, ballot, now)
        return Taken(ballot, counted)

    def add(self, ballot: Ballot, now: float | None = None) -> bool:
        """Write one vote; False when this voter already voted on this image's pair."""
        with self.backend.transaction() as run:
            return self._insert(run, ballot, time.time() if now is None else now)

    def _insert(self, run: Any, ballot: Ballot, now: float) -> bool:
        first, second = sorted((ballot.left, ballot.right))
        return bool(
            run(
                "INSERT INTO rmbg_votes (voter, image, pair_a, pair_b, shown_left, shown_right, winner, voted_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (voter, image, pair_a, pair_b) DO NOTHING",
                (ballot.voter, ballot.image, first, second, ballot.left, ballot.right, ballot.winner, now),
            ).rowcount
        )

    def voted(self, voter: str) -> set[tuple[str, str, str]]:
        """(image, pair_a, pair_b) of every pair `voter` has voted on (providers sorted)."""
        with self.backend.transaction() as run:
            rows = run("SELECT image, pair_a, pair_b FROM rmbg_votes WHERE voter = ?", (voter,)).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}

    def all(self) -> list[Ballot]:
        """Every vote, oldest first (a stable order: the ranking's bootstrap depends on it)."""
        with self.backend.transaction() as run:
            rows = run(
                "SELECT voter, image, shown_left, shown_right, winner FROM rmbg_votes "
                "ORDER BY voted_at, voter, image, pair_a, pair_b"
            ).fetchall()
        return [Ballot(*r) for r in rows]

    def version(self) -> tuple[int, float]:
        """(votes, time of the newest): changes whenever a vote is added."""
        with self.backend.transaction() as run:
            count, newest = run("SELECT COUNT(*), MAX(voted_at) FROM rmbg_votes").fetchone()
        return int(count), float(newest or 0.0)

    def import_file(self, path: Path) -> int | None:
        """Copy the votes of an old votes file (SQLite, table `votes`, before the
        votes moved here) once; the number of votes that counted, or None when
        this file was imported before. One visitor's repeated votes on one
        image's pair keep the first, as new votes do."""
        key = f"votes imported from {path.resolve()}"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as old:
            rows = old.execute('SELECT at, voter, image, "left", "right", winner FROM votes ORDER BY id').fetchall()
        with self.backend.transaction() as run:
            if run("SELECT value FROM rmbg_meta WHERE key = ?", (key,)).fetchone() is not None:
                return None
            counted = sum(self._insert(run, Ballot(*row[1:]), float(row[0])) for row in rows)
            run("INSERT INTO rmbg_meta (key, value) VALUES (?, ?)", (key, str(time.time())))
        return counted
