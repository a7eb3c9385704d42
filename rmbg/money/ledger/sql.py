"""The ledger's one implementation, in SQL that SQLite and PostgreSQL both run.

Tables (created on first use; names prefixed rmbg_ so a shared database stays tidy):
- rmbg_accounts(key, spent, inflight, touched, idle_s): each total a hold
  counts against; `spent` includes the holds in flight (nano-dollars).
- rmbg_holds(id, provider, held, accounts, owner, created, state, final,
  closed, note): every paid call, written before it is sent; `state` moves
  from "held" to "settled", "released" or "settled by hand".
- rmbg_prices(provider, highest, calls): providers a call of which settled
  with a cost (their first call has run).
- rmbg_probes(provider, hold_id, owner, since): a provider's first call in
  flight; the next calls wait for it.

Beside them, on the same database, the other state that must last:
rmbg.money.ledger.votes and rmbg.money.ledger.manifests (SqlLedger.book).

Atomicity: a reservation is one transaction that locks the accounts' rows
(SQLite: BEGIN IMMEDIATE takes the database's write lock; PostgreSQL:
SELECT ... FOR UPDATE, rows always locked in key order so two reservations
cannot deadlock), checks every cap and writes the hold, or writes nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from . import Account, Hold, HoldRow, Refused, Wait, to_nano, to_usd
from .backends import Backend, open_backend
from .owners import HOLD_LEASE_S, owner, owner_alive
from .spec import parse

B = TypeVar("B")
PROBE_STALE_S = 900.0  # a first call whose process is gone, or older than this, no longer blocks the others


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_accounts (key TEXT PRIMARY KEY, spent BIGINT NOT NULL, "
    "inflight INTEGER NOT NULL, holding BIGINT NOT NULL, touched DOUBLE PRECISION NOT NULL, idle_s DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS rmbg_holds (id TEXT PRIMARY KEY, provider TEXT NOT NULL, held BIGINT NOT NULL, "
    "accounts TEXT NOT NULL, owner TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, "
    "final BIGINT, closed DOUBLE PRECISION, note TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rmbg_holds_state ON rmbg_holds (state)",
    "CREATE TABLE IF NOT EXISTS rmbg_prices (provider TEXT PRIMARY KEY, highest BIGINT NOT NULL, "
    "calls INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rmbg_probes (provider TEXT PRIMARY KEY, hold_id TEXT NOT NULL, "
    "owner TEXT NOT NULL, since DOUBLE PRECISION NOT NULL)",
)


TABLES = ("rmbg_accounts", "rmbg_holds", "rmbg_prices", "rmbg_probes")


class _Abort(Exception):
    def __init__(self, answer: Wait | Refused):
        self.answer = answer


class SqlLedger:
    """The ledger on one database (see rmbg.money.ledger and this module's docstring)."""

    def __init__(self, backend: Backend, *, make_tables: bool = True):
        self.backend = backend
        self.where = backend.where
        self._books: dict[object, Any] = {}
        self._books_lock = threading.Lock()
        if make_tables and not set(TABLES) <= backend.tables():  # no write at all when they are there
            backend.create(SCHEMA)

    def book(self, kind: Callable[[Backend], B]) -> B:
        """The other state kept on this database (rmbg.money.ledger.votes.VoteBook,
        rmbg.money.ledger.manifests.ManifestBook): one per kind, its tables made on first use."""
        with self._books_lock:
            found = self._books.get(kind)
            if found is None:
                found = self._books[kind] = kind(self.backend)
            return found

    @classmethod
    def open(cls, spec: str | os.PathLike[str], *, create: bool = True) -> SqlLedger:
        """The ledger RMBG_LEDGER's value `spec` names (rmbg.money.ledger.spec: refused when it
        names no ledger); `create` False: LedgerMissing where there is none, nothing made."""
        return cls(open_backend(parse(spec), SCHEMA, create=create), make_tables=create)

    def close(self) -> None:
        self.backend.close()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.backend.transaction() as run:
            yield run

    # --- reservations ---------------------------------------------------------------

    def reserve(
        self,
        provider: str,
        accounts: Sequence[Account],
        usd: Decimal,
        *,
        floor: Decimal | None = None,
        probe: bool = True,
        exact: bool = False,
        now: float | None = None,
    ) -> Hold | Wait | Refused:
        """Hold `usd` against every account, or nothing.

        When a capped account has less room than `usd` but at least `floor`
        and no other call in flight, the hold is that room (the call at the
        cap's edge: what it reports beyond its hold is counted at the hold).
        Wait("room") while calls in flight on a short account may give room
        back; Wait("probe") while `provider`'s first call is in flight (when
        `probe`); Refused when a cap certainly cannot take `floor`.
        `exact`: hold `usd` now or refuse (no edge, no waiting for room)."""
        now = time.time() if now is None else now
        amount = to_nano(usd)
        least = amount if exact or floor is None else min(to_nano(floor), amount)
        keys = sorted({a.key for a in accounts})
        by_key = {a.key: a for a in accounts}
        hold_id = uuid.uuid4().hex
        try:
            return self._reserve(provider, [by_key[k] for k in keys], amount, least, probe, hold_id, now)
        except _Abort as stopped:
            return stopped.answer

    def _reserve(
        self, provider: str, accounts: list[Account], amount: int, least: int, probe: bool, hold_id: str, now: float
    ) -> Hold:
        keys = [a.key for a in accounts]
        by_key = {a.key: a for a in accounts}
        with self._tx() as run:
            rows = self._lock(run, accounts, now)
            is_probe = False
            if probe and not self._priced(run, provider):
                if not self._claim_probe(run, provider, hold_id, now):
                    self._abort(run, Wait("probe"))
                is_probe = True
            caps = {k: to_nano(a.cap) for k, a in by_key.items() if a.cap is not None}
            short = [k for k in keys if k in caps and rows[k][0] + amount > caps[k]]
            if short:
                rooms = {k: caps[k] - rows[k][0] for k in short}
                # holds that may come back: those of calls in flight, not a dead process's (they stay counted)
                live = self._live(run, [k for k in short if rows[k][1] > 0], now)
                # refused when not even every live hold coming back would make room (exact: when it does not fit now)
                refused = [k for k in short if rooms[k] + (0 if least == amount else live.get(k, (0, 0))[1]) < least]
                if refused:
                    self._abort(run, Refused(by_key[refused[0]], to_usd(rows[refused[0]][0])))
                if any(live.get(k, (0, 0))[0] > 0 for k in short):
                    self._abort(run, Wait("room"))  # calls in flight may give room back
                amount = min(rooms.values())  # at the edge, alone: the room that is left
            for key in keys:
                run("UPDATE rmbg_accounts SET spent = ?, inflight = inflight + 1, holding = holding + ?, touched = ? "
                    "WHERE key = ?", (rows[key][0] + amount, amount, now, key))  # fmt: skip
            run(
                "INSERT INTO rmbg_holds (id, provider, held, accounts, owner, created, state, final, closed, note) "
                "VALUES (?, ?, ?, ?, ?, ?, 'held', NULL, NULL, '')",
                (hold_id, provider, amount, json.dumps(keys), owner(), now),
            )
        return Hold(hold_id, provider, to_usd(amount), tuple(keys), is_probe)

    def _lock(self, run: Any, accounts: Sequence[Account], now: float) -> dict[str, tuple[int, int, int]]:
        """Lock the accounts' rows (made when new); key -> (spent, calls in
        flight, their holds), a session idle past its idle_s with nothing in
        flight counting 0."""
        for account in accounts:
            run(
                "INSERT INTO rmbg_accounts (key, spent, inflight, holding, touched, idle_s) VALUES (?, 0, 0, 0, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (account.key, now, account.idle_s),
            )
        marks = ", ".join("?" for _ in accounts)
        found = run(
            "SELECT key, spent, inflight, holding, touched, idle_s FROM rmbg_accounts "
            f"WHERE key IN ({marks}) ORDER BY key" + self.backend.for_update,
            tuple(a.key for a in accounts),
        ).fetchall()
        rows = {}
        for key, spent, inflight, holding, touched, idle_s in found:
            expired = idle_s is not None and inflight == 0 and touched < now - idle_s
            rows[key] = (0 if expired else int(spent), int(inflight), int(holding))
        return rows

    def _live(self, run: Any, keys: Sequence[str], now: float) -> dict[str, tuple[int, int]]:
        """key -> (calls in flight, their holds) among the holds counted against `keys`, leaving out the
        holds whose process is gone or whose lease ran out (rmbg.money.ledger.owners): nobody waits for those."""
        if not keys:
            return {}
        live = {k: (0, 0) for k in keys}
        wanted = set(keys)
        patterns = " OR ".join("accounts LIKE ?" for _ in keys)
        found = run(
            f"SELECT held, accounts, owner, created FROM rmbg_holds WHERE state = 'held' AND ({patterns})",
            tuple(f"%{json.dumps(k)}%" for k in keys),  # the key as the column writes it; LIKE may match more
        ).fetchall()
        alive: dict[str, bool | None] = {}
        for held, accounts, who, created in found:
            if who not in alive:
                alive[who] = owner_alive(who)
            if alive[who] is False or float(created) <= now - HOLD_LEASE_S:
                continue  # gone, or past its lease: counted, never waited for
            for key in wanted.intersection(json.loads(accounts)):  # the holds that truly name the key
                calls, holding = live[key]
                live[key] = (calls + 1, holding + int(held))
        return live

    def _priced(self, run: Any, provider: str) -> bool:
        return run("SELECT calls FROM rmbg_prices WHERE provider = ?", (provider,)).fetchone() is not None

    def _claim_probe(self, run: Any, provider: str, hold_id: str, now: float) -> bool:
        """Make this call `provider`'s first (True), unless another first call
        is in flight whose process lives and which is younger than PROBE_STALE_S."""
        inserted = run(
            "INSERT INTO rmbg_probes (provider, hold_id, owner, since) VALUES (?, ?, ?, ?) ON CONFLICT (provider) "
            "DO NOTHING",
            (provider, hold_id, owner(), now),
        ).rowcount
        if inserted:
            return True
        row = run(
            "SELECT owner, since FROM rmbg_probes WHERE provider = ?" + self.backend.for_update, (provider,)
        ).fetchone()
        if row is not None and owner_alive(row[0]) is not False and row[1] > now - PROBE_STALE_S:
            return False
        run(
            "UPDATE rmbg_probes SET hold_id = ?, owner = ?, since = ? WHERE provider = ?",
            (hold_id, owner(), now, provider),
        )
        return True

    def _abort(self, run: Any, answer: Wait | Refused) -> NoReturn:
        raise _Abort(answer)  # the transaction rolls back: nothing of this reservation is written

    # --- closing a hold -------------------------------------------------------------

    def settle(
        self,
        hold_id: str,
        usd: Decimal,
        *,
        priced: bool = True,
        state: str = "settled",
        note: str = "",
        now: float | None = None,
    ) -> bool:
        """Replace the hold with what the call cost (`usd`, at most what was
        held: the caller clamps and logs); `priced`: the cost is the provider's
        price, so its first-call rule is done. False when the hold was
        already closed (settled by hand, say)."""
        now = time.time() if now is None else now
        with self._tx() as run:
            row = run(
                "SELECT provider, held, accounts, state FROM rmbg_holds WHERE id = ?" + self.backend.for_update,
                (hold_id,),
            ).fetchone()
            if row is None or row[3] != "held":
                return False
            provider, held, keys = row[0], int(row[1]), sorted(json.loads(row[2]))
            final = to_nano(usd)
            marks = ", ".join("?" for _ in keys)
            run(f"SELECT key FROM rmbg_accounts WHERE key IN ({marks}) ORDER BY key" + self.backend.for_update,
                tuple(keys))  # fmt: skip
            for key in keys:
                run(
                    "UPDATE rmbg_accounts SET spent = spent + ?, inflight = inflight - 1, holding = holding - ?, "
                    "touched = ? WHERE key = ?",
                    (final - held, held, now, key),
                )
            run(
                "UPDATE rmbg_holds SET state = ?, final = ?, closed = ?, note = ? WHERE id = ?",
                (state, final, now, note, hold_id),
            )
            if priced:
                run(
                    "INSERT INTO rmbg_prices (provider, highest, calls) VALUES (?, ?, 1) ON CONFLICT (provider) DO "
                    "UPDATE SET calls = rmbg_prices.calls + 1, highest = CASE WHEN excluded.highest > "
                    "rmbg_prices.highest THEN excluded.highest ELSE rmbg_prices.highest END",
                    (provider, final),
                )
            run("DELETE FROM rmbg_probes WHERE provider = ? AND hold_id = ?", (provider, hold_id))
        return True

    def release(self, hold_id: str, note: str = "", now: float | None = None) -> bool:
        """Drop the hold of a call the provider certainly did not charge."""
        return self.settle(hold_id, Decimal(0), priced=False, state="released", note=note, now=now)

    # --- reading ----------------------------------------------------------------------

    def spent(self, key: str, now: float | None = None) -> Decimal:
        """What `key` has spent, holds in flight included (0 for a session forgotten after idle_s)."""
        now = time.time() if now is None else now
        with self.backend.read() as run:  # no write lock: never waits for another process's transaction
            row = run("SELECT spent, inflight, touched, idle_s FROM rmbg_accounts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return Decimal(0)
        spent, inflight, touched, idle_s = row
        if idle_s is not None and inflight == 0 and touched < now - idle_s:
            return Decimal(0)
        return to_usd(int(spent))

    def priced(self, provider: str) -> bool:
        with self.backend.read() as run:
            return self._priced(run, provider)

    def holds(self, state: str | None = "held") -> list[HoldRow]:
        """Holds in `state` (None: every one), oldest first."""
        sql = "SELECT id, provider, held, accounts, owner, created, state, final, note FROM rmbg_holds"
        with self.backend.read() as run:
            if state is None:
                rows = run(sql + " ORDER BY created").fetchall()
            else:
                rows = run(sql + " WHERE state = ? ORDER BY created", (state,)).fetchall()
        return [
            HoldRow(
                r[0],
                r[1],
                to_usd(int(r[2])),
                tuple(json.loads(r[3])),
                r[4],
                float(r[5]),
                r[6],
                None if r[7] is None else to_usd(int(r[7])),
                r[8],
            )  # fmt: skip
            for r in rows
        ]
