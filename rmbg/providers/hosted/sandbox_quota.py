"""Photoroom's sandbox quota, counted on our side: a `sandbox_` key makes at
most 100 calls a day and 1,000 a month (Photoroom's sandbox-mode page), so a
batch is stopped with words at the quota instead of meeting the vendor's
refusal midway, unexplained.

The counts live on the ledger's database (table rmbg_sandbox_calls, made on
first use through SqlLedger.book), so every process on one RMBG_LEDGER shares
them, and a restart keeps them. A key is held only as a digest. A call is
counted when it is about to be sent, and given back (to the day and month it
was counted in, even past midnight) when it never left the machine. Days and
months are UTC; Photoroom does not say which clock its quota follows, so a
count near midnight may differ from Photoroom's by a day's calls: the
vendor's own refusal is still read and worded then.

If the ledger cannot be used, a sandbox call (free) is sent uncounted, with
a log line: free work does not depend on the ledger.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import Any

from ...errors import ProviderCreditError

DAY_LIMIT = 100  # "100 API calls per day" (Photoroom's sandbox-mode page)
MONTH_LIMIT = 1000  # "1,000 API calls per month" (the same page)
log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_sandbox_calls (key TEXT NOT NULL, period TEXT NOT NULL, "
    "calls INTEGER NOT NULL, PRIMARY KEY (key, period))",
)


class SandboxBook:
    """The sandbox calls counted on one ledger database (SqlLedger.book(SandboxBook))."""

    def __init__(self, backend: Any):
        self.backend = backend
        backend.create(SCHEMA)

    def take(self, key: str, now: float | None = None) -> tuple[str, int] | None:
        """Count one call of `key`; None when it fits, else (the period that is full: "day" or
        "month", its limit), with nothing counted."""
        day, month = periods(key, time.time() if now is None else now)
        with self.backend.transaction() as run:
            counts = {}
            for period in (day, month):
                run("INSERT INTO rmbg_sandbox_calls (key, period, calls) VALUES (?, ?, 0) "
                    "ON CONFLICT (key, period) DO NOTHING", (digest(key), period))  # fmt: skip
                row = run(
                    "SELECT calls FROM rmbg_sandbox_calls WHERE key = ? AND period = ?" + self.backend.for_update,
                    (digest(key), period),
                ).fetchone()
                counts[period] = int(row[0])
            if counts[day] >= DAY_LIMIT:
                return "day", DAY_LIMIT
            if counts[month] >= MONTH_LIMIT:
                return "month", MONTH_LIMIT
            for period in (day, month):
                run(
                    "UPDATE rmbg_sandbox_calls SET calls = calls + 1 WHERE key = ? AND period = ?",
                    (digest(key), period),
                )
        return None

    def give_back(self, key: str, now: float | None = None) -> None:
        """A counted call that never left the machine."""
        with self.backend.transaction() as run:
            for period in periods(key, time.time() if now is None else now):
                run(
                    "UPDATE rmbg_sandbox_calls SET calls = calls - 1 WHERE key = ? AND period = ? AND calls > 0",
                    (digest(key), period),
                )

    def calls(self, key: str, now: float | None = None) -> tuple[int, int]:
        """(calls today, calls this month) of `key`."""
        found = []
        with self.backend.transaction() as run:
            for period in periods(key, time.time() if now is None else now):
                row = run(
                    "SELECT calls FROM rmbg_sandbox_calls WHERE key = ? AND period = ?", (digest(key), period)
                ).fetchone()
                found.append(int(row[0]) if row else 0)
        return found[0], found[1]


def digest(key: str) -> str:
    return hashlib.sha256(f"photoroom\0{key}".encode()).hexdigest()


def periods(key: str, now: float) -> tuple[str, str]:
    moment = datetime.fromtimestamp(now, timezone.utc)
    return f"day:{moment:%Y-%m-%d}", f"month:{moment:%Y-%m}"


def full_words(provider_id: str, period: str, limit: int) -> ProviderCreditError:
    when = "today (UTC)" if period == "day" else "this month (UTC)"
    again = "tomorrow" if period == "day" else "next month"
    return ProviderCreditError(
        provider_id,
        f"this sandbox key has made its {limit:,} calls {when}: Photoroom allows a sandbox key "
        f"{DAY_LIMIT} calls a day and {MONTH_LIMIT:,} a month, so nothing was sent. Use a paid key "
        f"(PHOTOROOM_API_KEY without the sandbox_ prefix), or try again {again}.",
    )


def book() -> SandboxBook | None:
    """The counts on this process's ledger; None (logged) when the ledger cannot be used."""
    from ...money.ledger import LedgerError, open_ledger

    try:
        return open_ledger().book(SandboxBook)
    except LedgerError as exc:
        log.warning("Photoroom sandbox calls are not counted: %s", exc)
        return None
