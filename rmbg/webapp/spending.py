"""Money the app's visitors spend: a visitor's Session with what it spent, and
which accounts its paid calls count against. The rule itself (reserve, first
call alone, settle by where the request got to) is rmbg.money.paying's; the
numbers live in the durable ledger (rmbg.money.ledger, RMBG_LEDGER), so every
app process and a CLI batch on the same machine (or, on PostgreSQL, every
replica) share the caps, and a restart keeps them.

The Session is the per-browser values, kept in a gr.State (never a module
global). Money is USD (Decimal). Its `hosted_usd` is what hosted providers
charged in this session (reported or estimated), as the ledger's session
account holds it: the spending cap applies to it. `compute_usd` is the
estimated machine cost of local runs, shown but not capped (nothing is
billed per call). A run's charge is recorded by rmbg.webapp.costs.record.

Two caps, both in USD, both checked before a paid call is sent:
- per browser session (RMBG_SESSION_CAP_USD): what one session
  may spend on hosted calls, with its own key or the server's; forgotten after
  an hour without calls (idle_s), as the page's state is, so a caller keyed
  by address (REST, MCP; rmbg.webapp.identity) is not blocked for ever;
- per UTC day across all sessions (RMBG_DAILY_CAP_USD): what visitors
  together may spend of the server's own keys. The day's total is never
  forgotten.

Their defaults are declared once, in rmbg.settings_declared (rmbg.webapp.config
reads them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from ..money.ledger import Account, LedgerError
from ..money.payer import Payer
from ..money.paying import Policy, day_key
from ..types import Cost, format_cap, format_usd
from .slots import waiting_outside

log = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True)
class Session:
    """hosted_usd / compute_usd: spent so far (USD). images: provider runs.
    last: token of the last Remove result in the app's shared store
    (rmbg.webapp.recent: its pixels are never kept per session), re-rendered
    when a background, mask or format choice changes. last_name: its file
    stem; last_label: its provider's label.
    comparison: token of the last Compare outcome in the same store."""

    hosted_usd: Decimal | None = ZERO  # None: unknown (the ledger cannot be read)
    compute_usd: Decimal = ZERO
    images: int = 0
    last: str | None = None
    last_name: str = "image"
    last_label: str = ""
    comparison: str | None = None

    def charged(self, cost: Cost, kind: str) -> Session:
        """This session after paying `cost` for one call of a `kind` provider."""
        if cost.source == "free":
            return self
        if kind == "hosted":
            hosted = None if self.hosted_usd is None else self.hosted_usd + cost.usd
            return replace(self, hosted_usd=hosted, images=self.images + 1)
        if cost.source != "compute":  # a local result whose cost holds a paid escalation's failed call
            return replace(self, images=self.images + 1)  # (rmbg.cascade.kept): hosted money, in the ledger's total
        return replace(self, compute_usd=self.compute_usd + cost.usd, images=self.images + 1)

    def total_text(self, cap: Decimal) -> str:
        """e.g. 'session: $0.0360 hosted (cap $1.00) + $0.000012 local compute (estimate)'."""
        text = hosted_text(self.hosted_usd, cap)
        if self.compute_usd:
            text += f" + ${format_usd(self.compute_usd)} local compute (estimate)"
        return text


class Ledger:
    """The app's caps on the shared ledger; see the module docstring."""

    def __init__(
        self,
        session_cap: Decimal,
        daily_cap: Decimal,
        *,
        clock: Callable[[], float] = time.time,
        idle_s: float | None = None,
        policy: Policy | None = None,
    ):
        self.session_cap = session_cap
        self.daily_cap = daily_cap
        self.idle_s = idle_s
        self._clock = clock
        # a paid call that must wait waits outside its cut-out slot (rmbg.webapp.slots)
        self.policy = policy or Policy(clock=clock, waiting=waiting_outside)

    def accounts(self, session_id: str, *, server_key: bool) -> tuple[Account, ...]:
        """The accounts a call of this session counts against: its session, and the day's total on a server key."""
        session = Account(f"session:{session_id}", self.session_cap, self.idle_s)
        if not server_key:
            return (session,)
        return (session, Account(day_key(self._clock()), self.daily_cap))

    def payer(self, session_id: str, *, server_key: bool) -> Payer:
        """Who pays for this session's calls (rmbg.money.payer.Payer, the one wrapper every door pays through): its
        accounts named as each call's Payment is made, so a call counts against the day it was made on."""
        return Payer(self.policy, lambda: self.accounts(session_id, server_key=server_key))

    def check_room(
        self, session_id: str, provider_id: str, usd: Decimal, *, server_key: bool, unit: str = "per image"
    ) -> None:
        """BudgetError now when `usd` does not fit under this session's caps (a run's check before it starts)."""
        from ..errors import BudgetError
        from ..money.ledger import Refused
        from ..money.paying import refusal_words

        payment = self.payer(session_id, server_key=server_key).payment(provider_id, usd, unit=unit)
        for account in payment.accounts:
            spent = self.policy.spent(account.key)
            if account.cap is not None and spent + usd > account.cap:
                raise BudgetError(refusal_words(Refused(account, spent), payment))

    def session_spent(self, session_id: str) -> Decimal | None:
        """What this session spent on hosted calls; None when the ledger cannot be read
        (the spending line then says so: free local work never waits on the ledger)."""
        return self._read(f"session:{session_id}")

    def day_spent(self) -> Decimal | None:
        """What visitors spent of the server's keys today (UTC); None when the ledger cannot be read."""
        return self._read(day_key(self._clock()))

    def _read(self, key: str) -> Decimal | None:
        try:
            return self.policy.spent(key)
        except LedgerError as exc:
            log.warning("spending unknown: %s", exc)
            return None


UNREADABLE = "the spending ledger cannot be read"


def hosted_text(spent: Decimal | None, cap: Decimal) -> str:
    """'session: $0.036 hosted (cap $1.00)', or the same saying the amount is unknown."""
    if spent is None:
        return f"session: hosted spending unknown ({UNREADABLE}; cap ${format_cap(cap)})"
    return f"session: ${format_usd(spent)} hosted (cap ${format_cap(cap)})"


def spent_sentence(spent: Decimal | None) -> str:
    """'This session has spent $0.036 on hosted calls.', or that it is unknown."""
    if spent is None:
        return f"What this session has spent on hosted calls is unknown: {UNREADABLE}."
    return f"This session has spent ${format_usd(spent)} on hosted calls."
