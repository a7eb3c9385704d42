"""The money ledger: where every paid call's hold, every account's total and
every provider's known price are written before a call is sent.

One store serves every process that pays with the same keys: the web app's
replicas, a CLI batch, Ray workers and `rmbg evaluate`. It is chosen by the
setting RMBG_LEDGER:

- a file path (the default: $XDG_STATE_HOME/rmbg/ledger.sqlite3, else
  ~/.local/state/rmbg/ledger.sqlite3): SQLite in WAL mode, shared by every
  process on the machine (rmbg.money.ledger.sql, dialect "sqlite");
- a URL `postgresql://user:pass@host:port/db`: PostgreSQL through psycopg,
  shared by every machine that reaches the server (`pip install
  rmbg[postgres]`); reservations lock the accounts' rows in one transaction.

The same database keeps the other state that must last (SqlLedger.book):
the Benchmark tab's votes (rmbg.money.ledger.votes) and the batch manifests
(rmbg.money.ledger.manifests); docs/storage.md lists what lives where.

The rules (what to hold, when to wait, what a failure costs) are not here:
they are rmbg.money.paying's. This package only keeps the numbers, atomically.

Amounts are integer nano-dollars (1e-9 USD) in the database, so the sums are
exact in both dialects; the API speaks Decimal USD.

No heavy imports: sqlite3 is the standard library; psycopg is imported only
when a PostgreSQL URL is given.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from ...errors import RmbgError

NANO = Decimal("1e9")


class LedgerError(RmbgError):
    """The ledger cannot be read or written (unwritable, locked, corrupt, a
    full disk, a database down): paid calls are refused before they are sent;
    free local models keep working."""


def to_nano(usd: Decimal) -> int:
    """USD as integer nano-dollars, rounded up (a hold is never smaller than asked)."""
    return int((usd * NANO).to_integral_value(ROUND_CEILING))


def to_usd(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).normalize() if nano else Decimal(0)


@dataclass(frozen=True)
class Account:
    """A total a hold counts against: `key` ("session:...", "day:2026-11-25",
    "batch:..."), its cap in USD (None: counted, never refused) and, for a
    visitor's session, how long it is kept without calls (idle_s)."""

    key: str
    cap: Decimal | None = None
    idle_s: float | None = None


@dataclass(frozen=True)
class Hold:
    """One paid call's hold, written before the call is sent."""

    id: str
    provider: str
    usd: Decimal
    accounts: tuple[str, ...]
    probe: bool  # this call is its provider's first: it runs alone


@dataclass(frozen=True)
class Wait:
    """Not now: another call must finish first (`why`: "probe" or "room")."""

    why: str


@dataclass(frozen=True)
class Refused:
    """A cap refuses the call: `account` has `spent` of `cap` (USD)."""

    account: Account
    spent: Decimal


@dataclass(frozen=True)
class HoldRow:
    """A hold as the operator command lists it."""

    id: str
    provider: str
    usd: Decimal
    accounts: tuple[str, ...]
    owner: str  # "host:pid" of the process that made the call
    created: float
    state: str  # "held", "settled", "released", "settled by hand"
    final: Decimal | None
    note: str


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "rmbg" / "ledger.sqlite3"


def is_url(spec: str) -> bool:
    return spec.lower().startswith(("postgresql://", "postgres://"))


def configured() -> str:
    """The storage this process uses: the setting RMBG_LEDGER, else default_path()."""
    from ...settings import current

    return current().raw("RMBG_LEDGER") or str(default_path())


_opened: dict[str, object] = {}
_opened_lock = threading.Lock()


def open_ledger(spec: str | os.PathLike[str] | None = None, *, create: bool = True):  # -> SqlLedger
    """The ledger named by `spec` (a path or a PostgreSQL URL; None: the
    setting RMBG_LEDGER, else default_path()). One object per spec in a
    process (it holds the connections). A value that names no ledger is
    refused (rmbg.money.ledger.spec); `create` False: LedgerMissing where there is
    none yet, and nothing is made (a command that only reads)."""
    from .sql import SqlLedger

    key = configured() if spec is None else str(spec)
    with _opened_lock:
        found = _opened.get(key)
        if found is None:
            found = SqlLedger.open(key, create=create)
            _opened[key] = found
        return found


def check_setting(value: str | None = None) -> str | None:
    """RMBG_LEDGER (or `value`) checked when a program starts, creating nothing.
    Raises LedgerSettingError (rmbg.money.ledger.spec) with a sentence when it names no
    ledger (another scheme, a relative path, a folder, a device, a file that is no
    ledger): the program does not start. A ledger that is there but damaged
    (emptied, truncated, corrupt) does not stop free work: its words are returned
    (paid calls will be refused with them); None when all is well."""
    from ...settings import current
    from .spec import LedgerSettingError, check, parse

    spec = parse(current().raw("RMBG_LEDGER") if value is None else value)
    try:
        check(spec)
    except LedgerSettingError:
        raise
    except LedgerError as exc:
        return str(exc)
    return None


def close_all() -> None:
    """Close every ledger this process opened (tests, and a process that forks)."""
    with _opened_lock:
        for ledger in _opened.values():
            ledger.close()  # type: ignore[attr-defined]
        _opened.clear()


__all__ = [
    "Account",
    "Hold",
    "HoldRow",
    "LedgerError",
    "Refused",
    "Wait",
    "check_setting",
    "close_all",
    "configured",
    "default_path",
    "is_url",
    "open_ledger",
    "to_nano",
    "to_usd",
]
