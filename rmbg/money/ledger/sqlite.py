"""The ledger on an SQLite file, shared by every process on this machine
(rmbg.money.ledger.backends has the interface and PostgreSQL's).

- WAL mode, so readers never block the one writer; synchronous=FULL, so a
  committed hold survives a crash of the machine, not only of the process;
  `BEGIN IMMEDIATE` takes the write lock when a transaction starts, so two
  processes' reservations run one after the other; a connection per thread,
  and one transaction at a time per process (a lock of the process's own,
  waited for up to QUEUE_S), so a process's hundreds of threads queue on that
  lock instead of racing each other for the file's, whose busy wait (up to
  BUSY_S) is then only ever against other processes (the votes' own file lost
  8 of 320 concurrent votes to such waits in #45).
- Reads (`read()`: what a session has spent, the holds) take no write lock:
  in WAL mode they never wait for another process's transaction, so a ledger
  locked by another process does not hold up the spending line of a free
  cut-out.
- A new file appears whole: it is made under a temporary name, its tables
  written, then linked to its name (an existing file is never overwritten),
  so no process ever opens a half-made ledger; connections then open the file
  with mode=rw, which never creates one. So a ledger deleted while processes
  run is not silently made again, empty.
- The file is known by its device and inode from the moment it is opened,
  and every transaction and read checks them: a ledger deleted or replaced
  under a running process refuses paid calls with words (a second, empty
  ledger would restart the day's spending from zero), and a truncated one is
  said to be truncated (SQLite alone reported it as "locked").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import LedgerError
from .spec import SETTING, LedgerMissing, words_of_file

BUSY_S = 5.0  # how long a writer waits for another process's transaction
QUEUE_S = 60.0  # how long a transaction waits for its turn among this process's threads


def _busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def sqlite_words(exc: sqlite3.Error, path: Path) -> str:
    """The failure in words an operator can act on; the file itself is looked at first
    (deleted, emptied, truncated), since SQLite reports those as other things."""
    found = words_of_file(path)
    if found:
        return found
    text = str(exc).lower()
    where = f"The spending ledger {path} (setting {SETTING})"
    if _busy(exc):
        return (
            f"{where} is locked by another process for more than {BUSY_S:.0f} s; paid calls are refused until it frees."
        )
    if "full" in text:
        return f"{where} cannot grow: the disk is full. Free space; paid calls are refused until then."
    if "not a database" in text or "malformed" in text or "corrupt" in text or "no such table" in text:
        return f"{where} is corrupt. Move it aside (a new one starts empty: today's spending restarts from zero)."
    if "readonly" in text or "unable to open" in text or "permission" in text:
        return f"{where} cannot be written. Make its folder writable or point {SETTING} elsewhere."
    return f"{where} failed: {exc}."


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    mode = "rwc" if create else "rw"
    return sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}", uri=True, timeout=BUSY_S, isolation_level=None, check_same_thread=False
    )


def make_new(path: Path, first: Sequence[str]) -> None:
    """A new ledger file at `path`, whole: made under a temporary name with `first`
    (its tables), then linked to `path` unless another process made it meanwhile."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new")
    try:
        conn = _connect(temporary, create=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in first:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()  # the last connection: the WAL is checkpointed into the file and removed
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the ledger
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(temporary, path)
    except sqlite3.Error as exc:
        raise LedgerError(sqlite_words(exc, temporary)) from None
    finally:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


class Sqlite:
    """A ledger file shared by every process on this machine (see the module docstring).

    `first`: the statements a new file is made with; `create`: whether a
    missing file is made (False: LedgerMissing, nothing created)."""

    for_update = ""

    def __init__(self, path: Path, first: Sequence[str] = (), *, create: bool = True):
        self.path = path
        self.where = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        if not path.exists():
            if not create:
                raise LedgerMissing(
                    f"No spending ledger at {path} (setting {SETTING}): no paid call was recorded there. "
                    "Check the setting; nothing was created."
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"The spending ledger's folder {path.parent} cannot be made: {exc.strerror}."
                ) from None
            make_new(path, first)
        try:
            found = os.stat(path)
        except OSError as exc:
            raise LedgerError(words_of_file(path) or f"The spending ledger {path} cannot be read: {exc}.") from None
        self.identity = (found.st_dev, found.st_ino)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode, to the file this process opened (mode=rw: never a new
        one). "database is locked" while other processes open the same file is tried again
        until BUSY_S (SQLite answers it at once, without its busy wait, in that moment)."""
        deadline = time.monotonic() + BUSY_S
        while True:
            conn = None
            try:
                self._same_file()
                conn = _connect(self.path, create=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                return conn
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                if not _busy(exc) or time.monotonic() > deadline or words_of_file(self.path):
                    raise LedgerError(sqlite_words(exc, self.path)) from None
            time.sleep(0.01)  # another process holds the file for a moment: its transactions are short

    def _same_file(self) -> None:
        """LedgerError unless `path` is still the file this process opened."""
        try:
            found = os.stat(self.path)
        except OSError:
            raise LedgerError(words_of_file(self.path) or f"The spending ledger {self.path} is gone.") from None
        if (found.st_dev, found.st_ino) != self.identity:
            raise LedgerError(
                f"The spending ledger {self.path} (setting {SETTING}) was replaced by another file while this "
                "process ran. Paid calls are refused here: restart to use the new file (its totals, not these)."
            )

    @contextmanager
    def transaction(self) -> Iterator[Callable[..., Any]]:
        if not self._one_at_a_time.acquire(timeout=QUEUE_S):
            raise LedgerError(
                f"The spending ledger {self.path} (setting {SETTING}) is too busy in this process: a "
                f"transaction waited {QUEUE_S:.0f} s for its turn. Paid calls are refused until it frees."
            )
        try:
            with self._transaction("BEGIN IMMEDIATE") as run:
                yield run
        finally:
            self._one_at_a_time.release()

    @contextmanager
    def read(self) -> Iterator[Callable[..., Any]]:
        """A read-only transaction: no write lock, no turn among this process's writers."""
        with self._transaction("BEGIN") as run:
            yield run

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Callable[..., Any]]:
        conn = self._connection()

        def run(sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
            return conn.execute(sql, params)

        try:
            conn.execute(begin)
            self._same_file()  # under the lock: the file is the one this process opened
        except sqlite3.Error as exc:
            raise LedgerError(sqlite_words(exc, self.path)) from None
        except LedgerError:
            conn.execute("ROLLBACK") if conn.in_transaction else None
            raise
        try:
            yield run
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK") if conn.in_transaction else None
            raise LedgerError(sqlite_words(exc, self.path)) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def create(self, statements: Sequence[str]) -> None:
        """Make tables (CREATE ... IF NOT EXISTS) in one transaction."""
        with self.transaction() as run:
            for statement in statements:
                run(statement)

    def tables(self) -> set[str]:
        with self.read() as run:
            return {r[0] for r in run("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
