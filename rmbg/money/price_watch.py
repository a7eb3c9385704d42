"""Prices a vendor reports beyond the bound, and calls whose price is not yet
confirmed: the two halves of "no run bills more than its cap plus one call,
whatever the vendor reports" (rmbg.money.paying applies them).

**An alarm per provider.** A call whose reported cost is beyond the bound of
its estimate (RMBG_PRICE_BOUND_X x the price table) is counted in full, and
its provider gets an alarm in the ledger's database (table
rmbg_price_alarms, beside the holds: every process on the ledger sees it),
written before the call's hold is settled, so no call waiting behind it can
start unseen. From then on the provider is refused before anything is sent,
in these words: "X now reports $Y per image, above the price we reserve
($Z); refused until the operator accepts it". The operator accepts a new
price with RMBG_ACCEPT_PRICE (comma-separated `provider=USD`, the reported
figure the message names, or more): the provider runs again, every call's
estimate scaled by the reported figure over the estimate it was reported
for, so its holds (and its bound) are at the new price. A later report
beyond that raises a new alarm.

**One unconfirmed call at a time per vendor in a process.** A provider's
price is confirmed in this process once one of its calls has settled with a
reported cost within the bound. Until then its calls go one at a time, and
only one unconfirmed call of a vendor's models (Runware's, say) is in flight
in the process at once: a vendor that raised its prices yesterday is caught
by one call, not by a burst of 16 at the moment the app starts, nor by the
first calls of its five models at once. The ledger's own first-call rule
(rmbg.money.ledger.sql) does the same across processes for a provider that never
had a call settled. What this cannot stop: calls already in flight when a
confirmed provider raises its price mid-run (at most the door's concurrency)
are billed at the new price; each is counted in full.

No heavy imports: this module is imported by `import rmbg` (through rmbg.money.paying).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import UnknownProviderError
from ..provider_table import info
from ..types import format_usd
from .ledger import LedgerError, Refused
from .ledger.backends import Book

ACCEPT_ENV = "RMBG_ACCEPT_PRICE"
PROBE_STALE_S = 900.0  # as the ledger's first calls (rmbg.money.ledger.sql): longer than any call's deadline
log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_price_alarms (provider TEXT PRIMARY KEY, reported BIGINT NOT NULL, "
    "estimate BIGINT NOT NULL, reserved BIGINT NOT NULL, unit TEXT NOT NULL, since DOUBLE PRECISION NOT NULL)",
)


@dataclass(frozen=True)
class Alarm:
    """`provider` reported `reported` USD for a call estimated at `estimate` and held at most `reserved`."""

    provider: str
    reported: Decimal
    estimate: Decimal
    reserved: Decimal
    unit: str

    @property
    def ratio(self) -> Decimal:
        """The reported cost over its estimate: what an accepted price scales estimates by."""
        return self.reported / self.estimate if self.estimate > 0 else Decimal(1)

    def words(self) -> str:
        """The refusal in a visitor's words, with what the operator can do."""
        return (
            f"{self.provider} now reports ${format_usd(self.reported)} {self.unit}, above the price we reserve "
            f"(${format_usd(self.reserved)}); refused until the operator accepts it "
            f"({self.acceptance()}). Nothing was sent."
        )

    def acceptance(self) -> str:
        """The setting that accepts this price: the reported figure exactly (rounded, as the prices in the
        sentence are, it could fall below what was reported and accept nothing)."""
        return f"{ACCEPT_ENV}={self.provider}={self.reported.normalize():f}"


@dataclass(frozen=True)
class PriceRefused(Refused):
    """A provider refused by its price alarm (a Refused, so a batch stops as at a cap); `words` say why."""

    words: str = ""


class AlarmBook(Book):
    """The alarms on one ledger database (SqlLedger.book(AlarmBook))."""

    SCHEMA = SCHEMA

    def raise_alarm(self, alarm: Alarm, now: float | None = None) -> None:
        """Record `alarm`, keeping the higher of it and one already there (by ratio)."""
        from .ledger import to_nano

        now = time.time() if now is None else now
        with self.backend.transaction() as run:
            row = run(
                "SELECT reported, estimate FROM rmbg_price_alarms WHERE provider = ?" + self.backend.for_update,
                (alarm.provider,),
            ).fetchone()
            if row is not None and int(row[0]) * to_nano(alarm.estimate) >= to_nano(alarm.reported) * int(row[1]):
                return
            values = (to_nano(alarm.reported), to_nano(alarm.estimate), to_nano(alarm.reserved), alarm.unit[:120])
            if row is None:
                run(
                    "INSERT INTO rmbg_price_alarms (provider, reported, estimate, reserved, unit, since) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (alarm.provider, *values, now),
                )
            else:
                run(
                    "UPDATE rmbg_price_alarms SET reported = ?, estimate = ?, reserved = ?, unit = ?, since = ? "
                    "WHERE provider = ?",
                    (*values, now, alarm.provider),
                )

    def alarm(self, provider: str) -> Alarm | None:
        from .ledger import to_usd

        with self.backend.transaction() as run:
            row = run(
                "SELECT reported, estimate, reserved, unit FROM rmbg_price_alarms WHERE provider = ?", (provider,)
            ).fetchone()
        if row is None:
            return None
        return Alarm(provider, to_usd(int(row[0])), to_usd(int(row[1])), to_usd(int(row[2])), str(row[3]))

    def clear(self, provider: str) -> None:
        with self.backend.transaction() as run:
            run("DELETE FROM rmbg_price_alarms WHERE provider = ?", (provider,))


def accepted_prices() -> dict[str, Decimal]:
    """RMBG_ACCEPT_PRICE as {provider: USD}; a malformed entry is refused with a sentence (ValueError)."""
    from ..settings import current

    found: dict[str, Decimal] = {}
    for entry in filter(None, (e.strip() for e in current().raw(ACCEPT_ENV).split(","))):
        provider, sep, usd = entry.partition("=")
        try:
            value = Decimal(usd.strip())
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not provider.strip() or not value.is_finite() or value < 0:
            raise ValueError(f"{ACCEPT_ENV} takes provider=USD pairs separated by commas, got {entry[:80]!r}")
        found[provider.strip()] = value
    return found


def standing(book: AlarmBook, provider: str) -> tuple[Alarm | None, Decimal]:
    """(the alarm that refuses `provider`, or None; the factor its estimates are scaled by).
    An alarm the operator accepted (RMBG_ACCEPT_PRICE at or above its reported figure) refuses
    nothing and scales the provider's estimates to the accepted price."""
    accepted = accepted_prices().get(provider)  # read first: a malformed setting is refused at once
    alarm = book.alarm(provider)
    if alarm is None:
        return None, Decimal(1)
    if accepted is not None and accepted >= alarm.reported:
        return None, max(Decimal(1), alarm.ratio)
    return alarm, Decimal(1)


def report(book: AlarmBook, alarm: Alarm) -> None:
    """Record `alarm` and tell the operator (the log line)."""
    book.raise_alarm(alarm)
    log.error(
        "%s reported $%s %s, beyond the $%s reserved for it (%s the estimate of $%s); counted in full, and %s is "
        "refused until the operator accepts the price: %s",
        alarm.provider, format_usd(alarm.reported), alarm.unit, format_usd(alarm.reserved), "beyond the bound of",
        format_usd(alarm.estimate), alarm.provider, alarm.acceptance(),
    )  # fmt: skip


class Confirming:
    """Which providers' prices this process has confirmed on one ledger, and the one unconfirmed call in
    flight per vendor (a vendor reprices its models together; another vendor's first call, a clip of
    minutes say, does not hold this one's up). Forgotten after PROBE_STALE_S: a hold never closed, its
    call abandoned, blocks nothing for ever."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.confirmed: set[tuple[str, str]] = set()  # (ledger, provider)
        self.probes: dict[tuple[str, str], tuple[str, float]] = {}  # (ledger, vendor) -> (hold id, since)

    def unconfirmed(self, ledger: str, provider: str) -> bool:
        return (ledger, provider) not in self.confirmed

    def busy(self, ledger: str, vendor: str) -> bool:
        """Whether an unconfirmed call paid by `vendor` (its key variable) is in flight on `ledger` (the lock
        held)."""
        found = self.probes.get((ledger, vendor))
        return found is not None and found[1] > time.monotonic() - PROBE_STALE_S

    def take(self, ledger: str, vendor: str, hold_id: str) -> None:
        self.probes[(ledger, vendor)] = (hold_id, time.monotonic())

    def done(self, ledger: str, hold_id: str, provider: str, confirmed: bool) -> None:
        with self.lock:
            for where, (held, _) in list(self.probes.items()):
                if where[0] == ledger and held == hold_id:
                    del self.probes[where]
            if confirmed:
                self.confirmed.add((ledger, provider))


def vendor_of(provider: str) -> str:
    """The vendor whose key pays for a registered provider (its key variable), else the id itself (a
    payment that names no vendor of its own: a test's provider, say; rmbg.money.paying.Payment.vendor)."""
    try:
        return info(provider).key_env or provider
    except UnknownProviderError:
        return provider


CONFIRMING = Confirming()


@dataclass(frozen=True)
class Reserved:
    """What a hold was made for: its provider's estimate (scaled to an accepted price), its bound, the unit."""

    estimate: Decimal
    bound: Decimal
    unit: str


HOLDS: dict[str, Reserved] = {}  # hold id -> what it was made for, until it is settled or released


def beyond_hold(
    ledger: Any, hold: Any, counted: Decimal, reserved: Reserved | None, priced: bool, fallback: Decimal
) -> bool:
    """A call that cost more than was held for it: past the bound of its estimate, its provider's price
    alarm is raised on `ledger` (True); else (a hold cut to the room left at a cap's edge) a log line.
    `fallback`: the estimate of a hold made before this process recorded what it was for."""
    most = reserved.bound if reserved is not None else hold.usd
    if not (priced and counted > most):
        log.warning(
            "%s reported $%s for one call, more than the $%s held for it at a cap's edge; counted in full.",
            hold.provider, counted, hold.usd,
        )  # fmt: skip
        return False
    estimate = reserved.estimate if reserved is not None else fallback
    unit = reserved.unit if reserved is not None else "for one call"
    try:
        report(ledger.book(AlarmBook), Alarm(hold.provider, counted, estimate, most, unit))
    except LedgerError as exc:  # a failing ledger refuses every paid call anyway; the operator is told
        log.error("The price alarm for %s could not be written to the spending ledger: %s", hold.provider, exc)
    return True
