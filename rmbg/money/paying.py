"""The one rule every paid call follows, whichever door it comes through (the
web app's page, REST, MCP, Compare, AI backgrounds, Benchmark and progressive
results; the CLI on one machine or on Ray; `rmbg evaluate`; video):

1. **Reserve what the call may cost before it is sent**: its bound, the price-table estimate
   times RMBG_PRICE_BOUND_X, against every account the door names (a visitor's session, the
   day's total of the operator's keys, a batch's --max-cost). A reported cost beyond the bound
   is counted in full, and its provider is refused from then on until the operator accepts the
   new price (rmbg.money.price_watch): a cap is passed by at most that one call. Near a cap, where the
   bound no longer fits but the estimate does, the call goes alone and holds the room left.
2. **A provider's first call runs alone** under a cap until it has settled
   with a cost (in the ledger, so across processes and restarts), and in each
   process until one call has confirmed its price (rmbg.money.price_watch).
3. **Send under the meter** (rmbg.money.charging): where the request got to says
   what a failure costs: not sent or refused -> released; fate unknown or
   accepted -> counted at its estimate ("may have been billed").
4. **Settle with the real cost**: reported by the vendor, else the estimate.
   A ledger that fails at that moment (a full disk, a file deleted or truncated,
   PostgreSQL stopped) does not take the result with it: the call was made, so
   its result is returned with its cost marked unrecorded ("the call was made
   and may have been billed", Cost.unrecorded), a log line names the hold for
   the operator, and the hold, still counted, is settled when the ledger answers
   again (the next paid call of this process tries first), or by hand (`rmbg ledger settle`).

The holds and totals live in the durable ledger (rmbg.money.ledger): written before
the call is sent, shared by every process on the same RMBG_LEDGER. A process
killed mid-call leaves its hold counted ("held"); `rmbg ledger holds` lists
such holds and `rmbg ledger settle` closes them by hand.

A door only says who pays (rmbg.money.payer.Payer: this policy and the accounts) and
what a call is (`Payment`: the provider, the estimate), and pays through the
Payer, in one call (`Policy.pay`) or split (`try_reserve`, then
`settle_by_fate`, the one settle by fate `pay` uses too); it writes no money
logic of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from ..errors import BudgetError, RmbgError
from ..types import MAY_HAVE_BEEN_BILLED, format_cap, format_usd
from . import price_watch
from .charging import metered
from .ledger import Account, Hold, LedgerError, Refused, Wait, open_ledger
from .ledger.unsettled import Unsettled, unrecorded

if TYPE_CHECKING:
    from .ledger.sql import SqlLedger

T = TypeVar("T")
log = logging.getLogger(__name__)

WAIT_S = 120.0  # longest a call waits for a first call or for room before it is refused


def bound_x() -> Decimal:
    """RMBG_PRICE_BOUND_X (its default: rmbg.settings_declared's), 1 or more: below 1 (a call holding less than
    its own estimate) is refused, naming it, where it was raised to 1 without a word."""
    from ..settings import current

    return current().decimal("RMBG_PRICE_BOUND_X", least=1)


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
    vendor: str = ""  # whose key pays (its key variable); "": the registry's declaration of `provider`
    words: Callable[[Refused, Payment], str] | None = field(default=None, compare=False)


def refusal_words(refused: Refused, payment: Payment) -> str:
    """The refusal in a person's words, by the kind of account ("session", "day", "batch", ...)."""
    kind = refused.account.key.partition(":")[0]
    cap = format_cap(refused.account.cap or Decimal(0))
    price = f"${format_usd(payment.estimate)} {payment.unit}"
    if kind == "session":
        return (
            f"Spending cap reached: this session has spent ${format_usd(refused.spent)} of its ${cap} cap on "
            f"hosted calls, and {payment.provider} costs about {price}. Cached results and local models still work."
        )
    if kind == "day":
        return (
            f"This app's daily budget for its own {payment.provider} key is used up (${cap} per UTC day across "
            "all visitors). Paste your own key, or use a local model."
        )
    return (
        f"The budget of ${cap} would be passed: ${format_usd(refused.spent)} is spent or held, and "
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
        self._unsettled = Unsettled()  # closes the ledger failed to write: tried again

    @property
    def ledger(self) -> SqlLedger:
        if self._ledger is None:
            self._ledger = open_ledger()
        return self._ledger

    def try_reserve(
        self, payment: Payment, *, first_call_alone: bool = True, exact: bool = False
    ) -> Hold | Wait | Refused:
        """One attempt at the hold (see rmbg.money.ledger.sql.SqlLedger.reserve); BudgetError when the ledger fails.
        A provider under a price alarm is refused (rmbg.money.price_watch.PriceRefused); one whose price this
        process has not confirmed goes alone (Wait("probe") while another such call is in flight)."""
        try:
            self.retry_unsettled()
            alarm, scale = price_watch.standing(self.ledger.book(price_watch.AlarmBook), payment.provider)
            if alarm is not None:
                return price_watch.PriceRefused(Account(f"price:{payment.provider}"), alarm.reported, alarm.words())
            estimate = payment.estimate * scale
            amount = payment.hold * scale if payment.hold is not None else bound(estimate)
            capped = any(a.cap is not None for a in payment.accounts)
            gate, where = price_watch.CONFIRMING, self.ledger.where
            alone = first_call_alone and capped and not exact and gate.unconfirmed(where, payment.provider)
            vendor = payment.vendor or price_watch.vendor_of(payment.provider)
            with gate.lock if alone else nullcontext():
                if alone and gate.busy(where, vendor):
                    return Wait("probe")
                got = self.ledger.reserve(
                    payment.provider,
                    payment.accounts,
                    amount,
                    floor=min(estimate, amount),
                    probe=first_call_alone and capped,
                    exact=exact,
                    now=self.clock(),
                )
                if isinstance(got, Hold) and alone:
                    gate.take(where, vendor, got.id)
            if isinstance(got, Hold):
                price_watch.HOLDS[got.id] = price_watch.Reserved(estimate, bound(estimate), payment.unit)
                alarm, _ = price_watch.standing(self.ledger.book(price_watch.AlarmBook), payment.provider)
                if alarm is not None:  # raised while this hold was made: nothing is sent
                    self.release(got, "price alarm")
                    return price_watch.PriceRefused(Account(f"price:{payment.provider}"), alarm.reported, alarm.words())
            return got
        except ValueError as exc:  # RMBG_ACCEPT_PRICE malformed
            raise BudgetError(f"{exc}. The paid call to {payment.provider} was not sent.") from None
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
            try:
                with self.waiting(f"{payment.provider} is waiting for {why}"):
                    while isinstance(got, Wait):
                        if time.monotonic() >= deadline or (stop is not None and stop()):
                            raise BudgetError(
                                f"{payment.provider} is waiting for {why}; nothing was sent. Try again shortly."
                            )
                        self._sleep(pause)
                        pause = min(pause * 2, 0.25)
                        got = self.try_reserve(payment, first_call_alone=first_call_alone, exact=exact)
            except BaseException:  # the door refused it after its wait (rmbg.webapp.slots): nothing is sent
                if isinstance(got, Hold):
                    self.release(got, "not sent: refused by its door after its wait")
                raise
        if isinstance(got, price_watch.PriceRefused):
            raise BudgetError(got.words)
        if isinstance(got, Refused):
            raise BudgetError((payment.words or refusal_words)(got, payment))
        return got

    def settle(self, hold: Hold, usd: Decimal, *, priced: bool = True, note: str = "") -> Decimal:
        """Close `hold` at what the call cost, counted in full (a cost that is not a number of 0 or more:
        at the hold). A priced cost beyond the bound of the call's estimate raises its provider's price
        alarm first (rmbg.money.price_watch), so no call waiting behind it starts unseen. The amount counted.
        Never raises for the ledger: a close it cannot write is kept and tried again (see _close)."""
        return self._settled(hold, usd, priced=priced, note=note)[0]

    def _settled(self, hold: Hold, usd: Decimal, *, priced: bool, note: str) -> tuple[Decimal, bool]:
        """settle's work: the amount counted, and whether the ledger recorded it."""
        reserved = price_watch.HOLDS.pop(hold.id, None)
        counted = usd if usd.is_finite() and usd >= 0 else hold.usd
        alarmed = False
        try:
            fallback = hold.usd / bound_x()  # the estimate of a hold made before this process watched prices
            alarmed = counted > hold.usd and price_watch.beyond_hold(
                self.ledger, hold, counted, reserved, priced, fallback
            )
            recorded = self._close(hold, counted, priced=priced, note=note)
        finally:
            price_watch.CONFIRMING.done(self.ledger.where, hold.id, hold.provider, priced and not alarmed)
        return counted, recorded

    def release(self, hold: Hold, note: str = "") -> None:
        """Close `hold` at nothing: its call was not sent, or was refused unbilled."""
        self._released(hold, note)

    def _released(self, hold: Hold, note: str) -> bool:
        price_watch.HOLDS.pop(hold.id, None)
        try:
            return self._close(hold, Decimal(0), priced=False, state="released", note=note)
        finally:
            price_watch.CONFIRMING.done(self.ledger.where, hold.id, hold.provider, False)

    def _close(self, hold: Hold, usd: Decimal, **how) -> bool:
        """Settle (or release) `hold` at `usd`; False when the ledger failed (rmbg.money.ledger.unsettled keeps
        the close, logs it for the operator and writes it later). The hold stays counted meanwhile."""
        return self._unsettled.close(self._ledger_settle, hold, usd, **how)

    def _ledger_settle(self, hold_id: str, usd: Decimal, **how) -> None:
        self.ledger.settle(hold_id, usd, now=self.clock(), **how)

    def retry_unsettled(self) -> None:
        """Write the closes an earlier failure of the ledger kept (LedgerError when it still fails)."""
        self._unsettled.retry(self._ledger_settle)

    @property
    def unsettled(self) -> list[Hold]:
        """Holds whose close the ledger failed to write, still to be tried again."""
        return self._unsettled.holds

    def settle_by_fate(
        self, hold: Hold, estimate: Decimal, *, billable: bool, cost: Decimal | None = None, note: str = ""
    ) -> tuple[Decimal, bool]:
        """Close `hold` by where its request got to (rmbg.money.charging), never by an error's type or status: the one
        implementation both forms share (`pay`, and a scheduler that reserved with try_reserve and ran the call
        elsewhere: rmbg.cli.batch, the Ray engine's budget actor).

        - it ended with a `cost` (the vendor's reported one, else the price table's): counted, priced (a cost
          beyond the bound raises the price alarm: settle);
        - it failed and may have been billed (`billable`: accepted, or its fate unknown): counted at its
          `estimate` (at most the hold), noted "may have been billed";
        - else (not sent, or refused unbilled): released, with `note` saying why.

        The amount counted, and whether the ledger recorded it (a close it cannot write is kept and tried again)."""
        if cost is not None:
            return self._settled(hold, cost, priced=True, note="")
        if billable:
            return self._settled(hold, min(estimate, hold.usd), priced=False, note=MAY_HAVE_BEEN_BILLED)
        return Decimal(0), self._released(hold, note)

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
            except BaseException as exc:
                counted, _ = self.settle_by_fate(hold, payment.estimate, billable=meter.state.billable)
                if counted and isinstance(exc, RmbgError):  # for every door to tell (REST's headers too)
                    said_counted(exc, (exc.counted_usd or Decimal(0)) + counted)
                raise
        try:
            usd = cost_of(out)
        except Exception:  # the vendor made it, what it cost cannot be read: counted at the hold
            self.settle(hold, hold.usd, priced=False, note="cost unreadable")
            raise
        if not self.settle_by_fate(hold, payment.estimate, billable=True, cost=usd)[1]:
            return unrecorded(out)  # the result the vendor made, marked: the ledger could not count it
        return out

    def spent(self, account: str) -> Decimal:
        return self.ledger.spent(account, self.clock())


def said_counted(exc: RmbgError, usd: Decimal) -> None:
    """`exc` with `usd` as what its failed paid call(s) were counted at against the caps, in its
    counted_usd and as the last sentence of its message (one sentence however many calls added to it)."""
    said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    if exc.counted_usd:
        said = said.removesuffix(" " + counted_sentence(exc.counted_usd))
    ended = said.rstrip() if said.rstrip().endswith((".", "!", "?")) else f"{said.rstrip()}."
    exc.args = (f"{ended} {counted_sentence(usd)}", *exc.args[1:])
    exc.counted_usd = usd


def counted_sentence(usd: Decimal) -> str:
    """What a failed paid call's message ends with: the amount counted against the caps for it."""
    return f"${format_usd(usd)} was counted against the spending caps for it."


def everywhere(payments: Sequence[Payment]) -> Decimal:
    """What a set of calls may cost at most (their holds), for a check before a run starts."""
    return sum((p.hold if p.hold is not None else bound(p.estimate) for p in payments), Decimal(0))
