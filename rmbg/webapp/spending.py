"""Money the app's visitors spend, kept on the server so no sequence of calls beats a cap.

Two caps, both in USD, both checked before a paid call is sent:
- per browser session (RMBG_SESSION_CAP_USD, default 1): what one session
  may spend on hosted calls, with its own key or the server's;
- per UTC day across all sessions (RMBG_DAILY_CAP_USD, default 5): what
  visitors together may spend of the server's own keys, so opening new
  sessions does not reset anything that costs the owner money.

Every paid call reserves its worst case under one lock before it is sent (the
larger of the price-table estimate and the highest cost that provider
reported in this process, rmbg.charging.worst_case) and is settled after it
with the real cost in full (reported, else estimated). Until one call of a
provider has settled with its cost, that provider's calls run one at a time,
so concurrent first calls cannot each reserve a price-table estimate the
vendor then exceeds. What a failed call
costs follows where its request got to (rmbg.charging): not sent or refused
-> the hold is released; fate unknown or accepted by the vendor -> the hold
is kept as spent. The totals live here, not in gr.State, so concurrent calls
of one session share them; like the page's state, a session's total is
forgotten after an hour without calls (idle_s), so a caller keyed by address
(REST, MCP; rmbg.webapp.identity) is not blocked until a restart.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TypeVar

from ..charging import metered, worst_case
from ..errors import BudgetError
from ..types import format_usd

T = TypeVar("T")

ZERO = Decimal(0)
MAX_SESSIONS = 100_000  # least recently used totals are forgotten beyond this (the daily cap still holds)


@dataclass(frozen=True)
class Reservation:
    """One paid call's hold on the caps (USD), until settled or released."""

    session_id: str
    usd: Decimal
    server_key: bool
    day: str


class Ledger:
    """Thread-safe per-session and per-day (server keys) spending; see the module docstring."""

    def __init__(
        self,
        session_cap: Decimal,
        daily_cap: Decimal,
        *,
        clock: Callable[[], float] = time.time,
        idle_s: float | None = None,
    ):
        """idle_s: a session's total is forgotten after this many seconds
        without a call (as the page's state expires); None: kept (LRU-bounded)."""
        self.session_cap = session_cap
        self.daily_cap = daily_cap
        self.idle_s = idle_s
        self._clock = clock
        self._used: dict[str, float] = {}  # session -> when it last reserved or settled
        self._holds: dict[str, int] = {}  # session -> calls in flight (never forgotten while any)
        self._lock = threading.Lock()
        self._costed = threading.Condition(self._lock)
        self._known: set[str] = set()  # providers a call of which has settled with a cost here
        self._probing: set[str] = set()  # providers whose first call is in flight
        self._sessions: OrderedDict[str, Decimal] = OrderedDict()
        self._day = ""
        self._day_spent = ZERO

    def _today(self) -> str:
        day = datetime.fromtimestamp(self._clock(), timezone.utc).strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._day_spent = day, ZERO
        return day

    def reserve(
        self, session_id: str, provider_id: str, usd: Decimal, *, server_key: bool, unit: str = "per image"
    ) -> Reservation:
        """Hold `usd` for one call; BudgetError (nothing sent) when either cap would be passed.
        `unit` says what `usd` buys, in the message ("per image", "for 4 generated images")."""
        with self._lock:
            day = self._today()
            self._expire()
            spent = self._sessions.get(session_id, ZERO)
            if usd and spent + usd > self.session_cap:
                raise BudgetError(
                    f"Spending cap reached: this session has spent ${format_usd(spent)} of its "
                    f"${self.session_cap:.2f} cap on hosted calls, and {provider_id} costs about "
                    f"${format_usd(usd)} {unit}. Cached results and local models still work."
                )
            if usd and server_key and self._day_spent + usd > self.daily_cap:
                raise BudgetError(
                    f"This app's daily budget for its own {provider_id} key is used up "
                    f"(${self.daily_cap:.2f} per UTC day across all visitors). Paste your own key, "
                    "or use a local model."
                )
            self._add(session_id, usd, server_key)
            self._holds[session_id] = self._holds.get(session_id, 0) + 1
            return Reservation(session_id, usd, server_key, day)

    def pay(
        self,
        session_id: str,
        provider_id: str,
        usd: Decimal,
        call: Callable[[], T],
        cost_of: Callable[[T], Decimal],
        *,
        server_key: bool,
        unit: str = "per image",
    ) -> T:
        """One paid call under the caps: reserve the worst case of `usd`
        (rmbg.charging.worst_case), make the call, then settle with its real
        cost (counted even if later steps fail). A failure releases the hold
        when its request was not sent or refused, and keeps it when the vendor
        accepted it or its fate is unknown (rmbg.charging.Charge.billable)."""
        probe = self._first_call(provider_id)
        try:
            hold = self.reserve(session_id, provider_id, worst_case(provider_id, usd), server_key=server_key, unit=unit)
            with metered() as meter:
                try:
                    out = call()
                except BaseException:
                    if meter.state.billable:
                        self.settle(hold, hold.usd)  # accepted, or may have been: the hold stays spent
                    else:
                        self.release(hold)
                    raise
            self.settle(hold, cost_of(out))
            probe = self._costs_known(provider_id, probe)
            return out
        finally:
            if probe:
                with self._lock:
                    self._probing.discard(provider_id)
                    self._costed.notify_all()

    def _first_call(self, provider_id: str) -> bool:
        """Until one call of `provider_id` has settled with a cost, its calls go
        one at a time: a vendor may report more than the price table says, and
        concurrent first calls would each reserve only the table's price. True
        when this call is that first one (the probe)."""
        with self._lock:
            while provider_id not in self._known and provider_id in self._probing:
                self._costed.wait()
            if provider_id in self._known:
                return False
            self._probing.add(provider_id)
            return True

    def _costs_known(self, provider_id: str, probe: bool) -> bool:
        if probe:
            with self._lock:
                self._known.add(provider_id)
        return probe

    def settle(self, reservation: Reservation, usd: Decimal) -> None:
        """Replace the hold with what the call really cost (counted even if later steps fail)."""
        self._adjust(reservation, usd - reservation.usd)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold of a call the provider certainly did not charge."""
        self._adjust(reservation, -reservation.usd)

    def session_spent(self, session_id: str) -> Decimal:
        with self._lock:
            self._expire()
            return self._sessions.get(session_id, ZERO)

    def day_spent(self) -> Decimal:
        """What visitors spent of the server's keys today (UTC)."""
        with self._lock:
            self._today()
            return self._day_spent

    def _adjust(self, reservation: Reservation, delta: Decimal) -> None:
        with self._lock:
            sid = reservation.session_id
            self._add(sid, delta, reservation.server_key and reservation.day == self._today())
            self._holds[sid] = self._holds.get(sid, 1) - 1
            if self._holds[sid] <= 0:
                del self._holds[sid]

    def _add(self, session_id: str, usd: Decimal, server_key: bool) -> None:
        self._sessions[session_id] = self._sessions.get(session_id, ZERO) + usd
        self._sessions.move_to_end(session_id)
        self._used[session_id] = self._clock()
        while len(self._sessions) > MAX_SESSIONS:
            self._forget(next(iter(self._sessions)))
        if server_key:
            self._day_spent += usd

    def _expire(self) -> None:
        """Forget the sessions idle for idle_s (oldest first; none with a call in flight)."""
        if self.idle_s is None:
            return
        limit = self._clock() - self.idle_s
        for sid in list(self._sessions):
            if self._used.get(sid, 0.0) > limit:
                break  # ordered by last use: the rest are newer
            if sid not in self._holds:
                self._forget(sid)

    def _forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._used.pop(session_id, None)
