"""The two databases the ledger runs on, behind one small interface:
`transaction()` yields `run(sql, params)` (placeholders written `?`), commits
when the block ends and rolls back when it raises; `read()` the same for a
block that only reads (SQLite: without the write lock); every database
failure becomes a LedgerError whose message an operator can act on.

- SQLite (a file path): rmbg.money.ledger.sqlite.
- PostgreSQL (a postgresql:// URL): psycopg 3 with a small connection pool
  (psycopg_pool), a connect timeout and a statement timeout, so a database
  that is down or slow refuses a paid call in seconds rather than hanging it.
  Once it has failed, each use first tries one direct connection (a refused
  connection answers in milliseconds) and repeats the failure for
  RECHECK_S without trying, so a server that is down costs a paid call
  milliseconds, not the pool's whole wait, and is named in words ("refused
  the connection: is the server running?"), never by an exception's class.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

from . import LedgerError
from .spec import SETTING, LedgerMissing, Spec, check
from .sqlite import BUSY_S, Sqlite

CONNECT_S = 3
RECHECK_S = 2.0  # how long a server found down is taken to be down without trying it again
SCHEMA_LOCK = 0x726D6267  # "rmbg": the advisory lock taken while tables are made (PostgreSQL)


class Backend(Protocol):
    where: str  # for messages: the file, or the server without its password
    for_update: str

    def transaction(self) -> Any: ...

    def read(self) -> Any: ...

    def create(self, statements: Sequence[str]) -> None: ...

    def tables(self) -> set[str]: ...

    def close(self) -> None: ...


class Book:
    """One kind of record on a ledger's database (SqlLedger.book(kind)): its tables (`SCHEMA`) are made
    when it is first opened on a backend."""

    SCHEMA: ClassVar[Sequence[str]] = ()

    def __init__(self, backend: Backend):
        self.backend = backend
        backend.create(self.SCHEMA)


def open_backend(spec: Spec, first: Sequence[str] = (), *, create: bool = True) -> Backend:
    """The backend of `spec` (a new SQLite file is made with `first`; `create`
    False: LedgerMissing rather than a new one). A path that is no ledger is
    refused (rmbg.money.ledger.spec.check) before anything is opened."""
    if spec.kind == "postgresql":
        return Postgres(spec.value, create=create)
    check(spec)
    return Sqlite(spec.path, first, create=create)


def pg_words(exc: BaseException, where: str) -> str:
    """A PostgreSQL failure in a person's words (never the password, never only a class name)."""
    text = str(exc).lower()
    lead = f"The spending ledger's database {where} (setting {SETTING})"
    if "refused" in text:
        why = "refused the connection: is the server running, on that host and port?"
    elif "password" in text or "authentication" in text:
        why = "refused the login: check the user and password in the setting."
    elif "does not exist" in text:
        why = "has no such database or role: check the setting's database and user names."
    elif "statement timeout" in text or "lock timeout" in text or "canceling statement" in text:
        why = f"is too slow: a statement waited more than {BUSY_S:.0f} s (locked by another transaction?)."
    elif "timeout" in text or "timed out" in text or type(exc).__name__ == "PoolTimeout":
        why = f"did not answer within {CONNECT_S} s: is the server up and reachable?"
    elif "could not translate host name" in text or "name or service not known" in text:
        why = "names a host that cannot be found."
    elif "closed" in text or "terminat" in text or "shutdown" in text:
        why = "closed the connection (it stopped or restarted)."
    else:
        why = "cannot be used (" + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200] + ")."
    return f"{lead} {why} Paid calls are refused until it answers; local models still work."


class Postgres:
    """A ledger on a PostgreSQL server, shared by every machine that reaches it.
    `create` False: LedgerMissing when the ledger's tables are not there."""

    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, create: bool = True):
        try:
            import psycopg  # noqa: F401
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise LedgerError(
                f"{SETTING} names a PostgreSQL server, but psycopg is not installed: pip install 'rmbg[postgres]'."
            ) from None
        from .spec import redacted

        self._url = url
        self.where = redacted(url)
        options = f"-c statement_timeout={int(BUSY_S * 1000)} -c lock_timeout={int(BUSY_S * 1000)}"
        self._kwargs = {"connect_timeout": CONNECT_S, "options": options}
        self._pool = ConnectionPool(url, min_size=0, max_size=8, timeout=BUSY_S, open=False, kwargs=self._kwargs)
        self._opened = False
        self._open_lock = threading.Lock()
        self._down: tuple[float, str] | None = (0.0, "")  # (when, words) of the last failure; first use: checked
        if not create:
            with self.read() as run:
                if run("SELECT to_regclass('rmbg_holds')").fetchone()[0] is None:
                    raise LedgerMissing(
                        f"No spending ledger in {self.where} (setting {SETTING}): its tables are not there, so no "
                        "paid call was recorded in it. Check the setting; nothing was created."
                    )

    def _check_up(self) -> None:
        """After a failure (and before the first use): one direct connection, so a server
        that is down is said at once; within RECHECK_S of a failure, the same words at once."""
        import psycopg

        down = self._down
        if down is None:
            return
        when, words = down
        if words and time.monotonic() - when < RECHECK_S:
            raise LedgerError(words)
        try:
            psycopg.connect(self._url, **self._kwargs).close()  # type: ignore[arg-type]
        except psycopg.Error as exc:
            self._failed(exc)
        self._down = None

    def _failed(self, exc: BaseException, down: bool = True) -> None:
        """LedgerError in words; `down`: the server itself failed (not a statement), so say it at once for a while."""
        words = pg_words(exc, self.where)
        if down:
            self._down = (time.monotonic(), words)
        raise LedgerError(words) from None

    @contextmanager
    def transaction(self) -> Iterator[Callable[..., Any]]:
        import psycopg
        from psycopg_pool import PoolTimeout

        self._check_up()
        with self._open_lock:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:

                def run(sql: str, params: tuple[Any, ...] = ()) -> Any:
                    cur.execute(sql.replace("?", "%s"), params)
                    return cur

                yield run
        except (psycopg.Error, PoolTimeout) as exc:
            down = isinstance(exc, (psycopg.OperationalError, PoolTimeout)) and not isinstance(
                exc, psycopg.errors.QueryCanceled
            )
            self._failed(exc, down)

    read = transaction  # PostgreSQL readers never wait for writers (MVCC)

    def tables(self) -> set[str]:
        with self.read() as run:
            return {r[0] for r in run("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def create(self, statements: Sequence[str]) -> None:
        """Make tables (CREATE ... IF NOT EXISTS) in one transaction, one process
        at a time: PostgreSQL's IF NOT EXISTS does not stop two replicas starting
        at once on a new database from colliding (a unique violation)."""
        with self.transaction() as run:
            run("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in statements:
                run(statement)

    def close(self) -> None:
        self._pool.close()
