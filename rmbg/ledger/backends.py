"""The two databases the ledger runs on, behind one small interface:
`transaction()` yields `run(sql, params)` (placeholders written `?`), commits
when the block ends and rolls back when it raises; every database failure
becomes a LedgerError whose message an operator can act on.

- SQLite (a file path): WAL mode, so readers never block the one writer;
  synchronous=FULL, so a committed hold survives a crash of the machine, not
  only of the process; `BEGIN IMMEDIATE` takes the write lock when a
  transaction starts, so two processes' reservations run one after the
  other; a connection per thread, and one transaction at a time per process
  (a lock of the process's own, waited for up to queue_s), so a process's
  hundreds of threads queue on that lock instead of racing each other for
  the file's, whose busy wait (up to busy_s) is then only ever against
  other processes (the votes' own file lost 8 of 320 concurrent votes to
  such waits in #45).
- PostgreSQL (a postgresql:// URL): psycopg 3 with a small connection pool
  (psycopg_pool), a connect timeout and a statement timeout, so a database
  that is down or slow refuses a paid call in seconds rather than hanging it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from . import LedgerError, is_url

BUSY_S = 5.0  # how long a writer waits for another process's transaction (SQLite) or a statement runs (PostgreSQL)
CONNECT_S = 3
QUEUE_S = 60.0  # how long a transaction waits for its turn among this process's threads (SQLite)
SCHEMA_LOCK = 0x726D6267  # "rmbg": the advisory lock taken while tables are made (PostgreSQL)


class Backend(Protocol):
    where: str  # for messages: the file, or the server without its password
    for_update: str

    def transaction(self) -> Any: ...

    def create(self, statements: Sequence[str]) -> None: ...

    def close(self) -> None: ...


def open_backend(spec: str) -> Backend:
    return Postgres(spec) if is_url(spec) else Sqlite(Path(spec).expanduser())


def _busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _sqlite_words(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc).lower()
    where = f"The spending ledger {path} (setting RMBG_LEDGER)"
    if _busy(exc):
        return (
            f"{where} is locked by another process for more than {BUSY_S:.0f} s; paid calls are refused until it frees."
        )
    if "full" in text:
        return f"{where} cannot grow: the disk is full. Free space; paid calls are refused until then."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"{where} is corrupt. Move it aside (a new one starts empty: today's spending restarts from zero)."
    if "readonly" in text or "unable to open" in text or "permission" in text:
        return f"{where} cannot be written. Make its folder writable or point RMBG_LEDGER elsewhere."
    return f"{where} failed: {exc}."


class Sqlite:
    """A ledger file shared by every process on this machine."""

    for_update = ""

    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"The spending ledger's folder {path.parent} cannot be made: {exc.strerror}.") from None

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode. SQLite answers "database is locked" at once, without
        waiting out its busy timeout, to a connection that sets WAL while other processes open
        the same new file (six at once: one in six failed), so that is tried again until BUSY_S."""
        deadline = time.monotonic() + BUSY_S
        while True:
            conn = None
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_S, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                return conn
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                if not _busy(exc) or time.monotonic() > deadline:
                    raise LedgerError(_sqlite_words(exc, self.path)) from None
            time.sleep(0.01)  # another process holds the file for a moment: its transactions are short

    @contextmanager
    def transaction(self) -> Iterator[Callable[..., Any]]:
        if not self._one_at_a_time.acquire(timeout=QUEUE_S):
            raise LedgerError(
                f"The spending ledger {self.path} (setting RMBG_LEDGER) is too busy in this process: a "
                f"transaction waited {QUEUE_S:.0f} s for its turn. Paid calls are refused until it frees."
            )
        try:
            with self._transaction() as run:
                yield run
        finally:
            self._one_at_a_time.release()

    @contextmanager
    def _transaction(self) -> Iterator[Callable[..., Any]]:
        conn = self._connection()

        def run(sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
            return conn.execute(sql, params)

        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LedgerError(_sqlite_words(exc, self.path)) from None
        try:
            yield run
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK") if conn.in_transaction else None
            raise LedgerError(_sqlite_words(exc, self.path)) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def create(self, statements: Sequence[str]) -> None:
        """Make tables (CREATE ... IF NOT EXISTS) in one transaction."""
        with self.transaction() as run:
            for statement in statements:
                run(statement)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _redacted(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    user = creds.partition(":")[0]
    return f"{scheme}://{user + '@' if at else ''}{host}"


class Postgres:
    """A ledger on a PostgreSQL server, shared by every machine that reaches it."""

    for_update = " FOR UPDATE"

    def __init__(self, url: str):
        try:
            import psycopg  # noqa: F401
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise LedgerError(
                "RMBG_LEDGER names a PostgreSQL server, but psycopg is not installed: pip install 'rmbg[postgres]'."
            ) from None
        self.where = _redacted(url)
        options = f"-c statement_timeout={int(BUSY_S * 1000)} -c lock_timeout={int(BUSY_S * 1000)}"
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=8,
            timeout=BUSY_S,
            open=False,
            kwargs={"connect_timeout": CONNECT_S, "options": options},
        )
        self._opened = False
        self._open_lock = threading.Lock()

    def _words(self, exc: Exception) -> str:
        return (
            f"The spending ledger's database {self.where} (setting RMBG_LEDGER) cannot be used: "
            f"{type(exc).__name__}. Paid calls are refused until it answers; local models still work."
        )

    @contextmanager
    def transaction(self) -> Iterator[Callable[..., Any]]:
        import psycopg
        from psycopg_pool import PoolTimeout

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
            raise LedgerError(self._words(exc)) from None

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
