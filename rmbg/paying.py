"""The one rule every paid call follows, whichever door it comes through (the
web app's page, REST, MCP, Compare, AI backgrounds, Benchmark and progressive
results; the CLI on one machine or on Ray; `rmbg evaluate`; video):

1. **Reserve what the call may cost before it is sent**: its bound, the
   price-table estimate times RMBG_PRICE_BOUND_X (default 2), against every
   account the door names (a visitor's session, the day's total of the
   operator's keys, a batch's --max-cost). A reported cost beyond the bound
   is logged and counted at the bound, so no call can count more than it
   held and no sequence of calls can pass a cap. Near a cap, where the bound
   no longer fits but the estimate does, the call goes alone and holds the
   room that is left.
2. **A provider's first call runs alone** under a cap until it has settled
   with a cost (in the ledger, so across processes and restarts).
3. **Send under the meter** (rmbg.charging): where the request got to says
   what a failure costs: not sent or refused -> released; fate unknown or
   accepted -> counted at its estimate ("may have been billed").
4. **Settle with the real cost**: reported by the vendor, else the estimate;
   never more than the hold. A ledger that fails at that moment (a full disk,
   a file deleted or truncated, PostgreSQL stopped) does not take the result
   with it: the call was made, so its result is returned with its cost marked
   unrecorded ("the call was made and may have been billed", Cost.unrecorded),
   a log line names the hold for the operator, and the hold, still counted,
   is settled when the ledger answers again (the next paid call of this
   process tries first), or by hand (`rmbg ledger settle`).

The holds and totals live in the durable ledger (rmbg.ledger): written before
the call is sent, shared by every process on the same RMBG_LEDGER. A process
killed mid-call leaves its hold counted ("held"); `rmbg ledger holds` lists
such holds and `rmbg ledger settle` closes them by hand.

A door only says who pays (`Payment`: the provider, the estimate, the
accounts) and calls `Policy.pay`; it writes no money logic of its own.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from .charging import metered
from .errors import BudgetError
from .ledger import Account, Hold, LedgerError, Refused, Wait, open_ledger
from .types import format_usd

if TYPE_CHECKING:
    from .ledger.sql import SqlLedger

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_BOUND_X = Decimal(2)
WAIT_S = 120.0  # longest a call waits for a first call or for room before it is refused


def bound_x() -> Decimal:
    from .settings import current

    x = current().decimal("RMBG_PRICE_BOUND_X", DEFAULT_BOUND_X)
    return max(x, Decimal(1))


def bound(estimate: Decimal) -> Decimal:
    """The most one call priced `estimate` may count (and so what it holds)."""
    return estimate * bound_x()


def day_key(now: float) -> str:
    return "day:" + datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Payment:
    """Who pays for one call: `provider`, its price-table `estimate` (USD),
    the accounts it counts against, and what the estimate buys (`unit`, for
    messages). `hold`: what to reserve (None: the bound of the estimate)."""

    provider: str
    estimate: Decimal
    accounts: tuple[Account, ...]
    unit: str = "per image"
    hold: Decimal | None = None
    words: Callable[[Refused, Payment], str] | None = field(default=None, compare=False)


def refusal_words(refused: Refused, payment: Payment) -> str:
    """The refusal in a person's words, by the kind of account ("session", "day", "batch", ...)."""
    kind = refused.account.key.partition(":")[0]
    cap = refused.account.cap or Decimal(0)
    price = f"${format_usd(payment.estimate)} {payment.unit}"
    if kind == "session":
        return (
            f"Spending cap reached: this session has spent ${format_usd(refused.spent)} of its ${cap:.2f} cap on "
            f"hosted calls, and {payment.provider} costs about {price}. Cached results and local models still work."
        )
    if kind == "day":
        return (
            f"This app's daily budget for its own {payment.provider} key is used up (${cap:.2f} per UTC day across "
            "all visitors). Paste your own key, or use a local model."
        )
    return (
        f"The budget of ${format_usd(cap)} would be passed: ${format_usd(refused.spent)} is spent or held, and "
        f"{payment.provider} costs about {price}."
    )


class Policy:
    """The paid-call rule on one ledger (see the module docstring)."""

    def __init__(
        self,
        ledger: SqlLedger | None = None,
        *,
        clock: Callable[[], float] = time.time,
        wait_s: float = WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
        waiting: Callable[[str], AbstractContextManager[object]] = lambda why: nullcontext(),
    ):
        self._ledger = ledger
        self.clock, self.wait_s, self._sleep = clock, wait_s, sleep
        self.waiting = waiting  # where a call waits (the web app: outside its cut-out slot, rmbg.webapp.slots)
        self._unsettled: list[tuple[Hold, Decimal, dict]] = []  # closes the ledger failed to write: tried again
        self._unsettled_lock = threading.Lock()

    @property
    def ledger(self) -> SqlLedger:
        if self._ledger is None:
            self._ledger = open_ledger()
        return self._ledger

    def try_reserve(
        self, payment: Payment, *, first_call_alone: bool = True, exact: bool = False
    ) -> Hold | Wait | Refused:
        """One attempt at the hold (see rmbg.ledger.sql.SqlLedger.reserve); BudgetError when the ledger fails."""
        amount = payment.hold if payment.hold is not None else bound(payment.estimate)
        try:
            self.retry_unsettled()
            return self.ledger.reserve(
                payment.provider,
                payment.accounts,
                amount,
                floor=min(payment.estimate, amount),
                probe=first_call_alone and any(a.cap is not None for a in payment.accounts),
                exact=exact,
                now=self.clock(),
            )
        except LedgerError as exc:
            log.error("%s", exc)
            raise BudgetError(
                f"{exc} The paid call to {payment.provider} was not sent, and nothing was charged."
            ) from None

    def reserve(
        self,
        payment: Payment,
        *,
        first_call_alone: bool = True,
        exact: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> Hold:
        """The hold, waiting (up to wait_s, inside `waiting`) behind a first call or for room;
        BudgetError when refused. `exact`: hold payment.hold now or refuse (a hold for a whole run, say)."""
        deadline, pause = time.monotonic() + self.wait_s, 0.01
        got = self.try_reserve(payment, first_call_alone=first_call_alone, exact=exact)
        if isinstance(got, Wait):
            why = "its first call" if got.why == "probe" else "calls in flight under the same cap"
            with self.waiting(f"{payment.provider} is waiting for {why}"):
                while isinstance(got, Wait):
                    if time.monotonic() >= deadline or (stop is not None and stop()):
                        raise BudgetError(
                            f"{payment.provider} is waiting for {why}; nothing was sent. Try again shortly."
                        )
                    self._sleep(pause)
                    pause = min(pause * 2, 0.25)
                    got = self.try_reserve(payment, first_call_alone=first_call_alone, exact=exact)
        if isinstance(got, Refused):
            raise BudgetError((payment.words or refusal_words)(got, payment))
        return got

    def settle(self, hold: Hold, usd: Decimal, *, priced: bool = True, note: str = "") -> Decimal:
        """Close `hold` at what the call cost (at most the hold: beyond it, logged
        and counted at the hold). The amount counted. Never raises for the
        ledger: a close it cannot write is kept and tried again (see _close)."""
        counted = self._clamped(hold, usd)
        self._close(hold, counted, priced=priced, note=note)
        return counted

    def _clamped(self, hold: Hold, usd: Decimal) -> Decimal:
        counted = usd if usd.is_finite() and usd >= 0 else hold.usd
        if counted > hold.usd:
            log.warning(
                "%s reported $%s for one call, more than the $%s held for it (%sx its price-table estimate, or the "
                "room left under a cap); counted $%s. Check the vendor's prices against rmbg's price table.",
                hold.provider, usd, hold.usd, bound_x(), hold.usd,
            )  # fmt: skip
            counted = hold.usd
        return counted

    def release(self, hold: Hold, note: str = "") -> None:
        self._close(hold, Decimal(0), priced=False, state="released", note=note)

    def _close(self, hold: Hold, usd: Decimal, **how) -> bool:
        """Settle (or release) `hold` at `usd`; False when the ledger failed: then the
        close is logged for the operator and kept, to be tried again (retry_unsettled).
        The hold stays counted meanwhile: a call that was sent may have been billed."""
        try:
            self.ledger.settle(hold.id, usd, now=self.clock(), **how)
            return True
        except LedgerError as exc:
            with self._unsettled_lock:
                self._unsettled.append((hold, usd, how))
            what = "was not billed" if how.get("state") == "released" else "was made and may have been billed"
            log.error(
                "The call to %s (hold %s) %s, but the spending ledger could not record its cost ($%s): %s The "
                "hold stays counted; it is settled when the ledger answers again, or by hand: "
                "rmbg ledger settle %s --usd %s",
                hold.provider, hold.id, what, usd, exc, hold.id, usd,
            )  # fmt: skip
            return False

    def retry_unsettled(self) -> None:
        """Write the closes an earlier failure of the ledger kept (LedgerError when it still fails)."""
        with self._unsettled_lock:
            waiting, self._unsettled = self._unsettled, []
        for k, (hold, usd, how) in enumerate(waiting):
            try:
                self.ledger.settle(hold.id, usd, now=self.clock(), **how)
            except LedgerError:
                with self._unsettled_lock:
                    self._unsettled[:0] = waiting[k:]
                raise
            log.warning("The hold %s of %s is settled now at $%s (the ledger answers again).", hold.id, hold.provider,
                        usd)  # fmt: skip

    @property
    def unsettled(self) -> list[Hold]:
        """Holds whose close the ledger failed to write, still to be tried again."""
        with self._unsettled_lock:
            return [hold for hold, _, _ in self._unsettled]

    def close_failed(self, hold: Hold, payment: Payment, billable: bool) -> None:
        """A call that failed: counted at its estimate when it may have been
        billed (accepted, or its fate unknown), else released."""
        if billable:
            self.settle(hold, min(payment.estimate, hold.usd), priced=False, note="may have been billed")
        else:
            self.release(hold)

    def pay(
        self,
        payment: Payment,
        call: Callable[[], T],
        cost_of: Callable[[T], Decimal],
        *,
        stop: Callable[[], bool] | None = None,
    ) -> T:
        """One paid call under the rule: reserve, send under the meter, settle
        or release by where the request got to. `cost_of(result)` is what it
        cost (reported, else estimated); it is counted even if later steps fail.
        A call priced $0 (a Photoroom sandbox key: free, watermarked) is no paid
        call: it is sent without a hold, and nothing is counted."""
        if payment.estimate == 0 and payment.hold is None:
            return call()
        hold = self.reserve(payment, stop=stop)
        with metered() as meter:
            try:
                out = call()
            except BaseException:
                self.close_failed(hold, payment, meter.state.billable)
                raise
        try:
            usd = cost_of(out)
        except Exception:
            self.settle(hold, hold.usd, priced=False, note="cost unreadable")
            raise
        counted = self._clamped(hold, usd)
        if not self._close(hold, counted, priced=True, note=""):
            return unrecorded(out)  # the result the vendor made, marked: the ledger could not count it
        return out

    def spent(self, account: str) -> Decimal:
        return self.ledger.spent(account, self.clock())


def unrecorded(out: T) -> T:
    """`out` with its cost marked unrecorded (Cost.unrecorded: "the call was made and may have
    been billed"), where it carries one (a matte, a clip, generated images); else `out`."""
    cost = getattr(out, "cost", None)
    if dataclasses.is_dataclass(out) and dataclasses.is_dataclass(cost) and hasattr(cost, "unrecorded"):
        return dataclasses.replace(out, cost=dataclasses.replace(cost, unrecorded=True))  # type: ignore[type-var]
    return out


def accounts_of(*pairs: tuple[str, Decimal | None]) -> tuple[Account, ...]:
    return tuple(Account(key, cap) for key, cap in pairs)


def everywhere(payments: Sequence[Payment]) -> Decimal:
    """What a set of calls may cost at most (their holds), for a check before a run starts."""
    return sum((p.hold if p.hold is not None else bound(p.estimate) for p in payments), Decimal(0))


class Paid:
    """A provider whose every hosted call is paid through `policy` on
    `accounts`; the same id, options and estimate as `inner`, so a matte
    cache still recognises it (a cached matte is never paid). Free (local)
    providers pass straight through. `pays_itself`: a door that already pays
    (the web app's Guarded) is not wrapped again."""

    pays_itself = True

    def __init__(self, inner, policy: Policy, accounts: tuple[Account, ...]):
        self.inner, self.policy, self.accounts = inner, policy, accounts
        self.id, self.label, self.kind = inner.id, inner.label, inner.kind

    def options(self):
        return self.inner.options()

    def status(self):
        return self.inner.status()

    def estimate(self):
        return self.inner.estimate()

    def matte(self, image):
        if self.kind != "hosted" or getattr(self.inner, "pays_itself", False):
            return self.inner.matte(image)
        payment = Payment(self.id, self.inner.estimate().usd, self.accounts)
        return self.policy.pay(payment, lambda: self.inner.matte(image), lambda matte: matte.cost.usd)


def operator_accounts(name: str, cap: Decimal | None, now: float | None = None) -> tuple[Account, ...]:
    """The accounts of a run on the operator's keys (a CLI batch, `evaluate`):
    its own, capped by `cap`, and the day's total the web app shares (capped
    where the operator set RMBG_DAILY_CAP_USD)."""
    import uuid

    from .settings import current

    daily = current().decimal("RMBG_DAILY_CAP_USD", Decimal(0)) if current().raw("RMBG_DAILY_CAP_USD") else None
    return (Account(f"{name}:{uuid.uuid4().hex}", cap), Account(day_key(time.time() if now is None else now), daily))
