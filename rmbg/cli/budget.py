"""A batch's money: a CLI batch pays through the one wrapper (rmbg.money.payer.Payer) in its split form, on
the operator's accounts (Payer.operator("batch", --max-cost)), on the shared ledger (rmbg.money.ledger).

A batch counts against its own account (`batch:<id>`, capped by --max-cost)
and against the day's total of the operator's keys (`day:<UTC date>` of the
moment each call's hold is taken), which the web app's visitors share: so a
paid batch and the app on the same keys cannot each spend a whole cap. The
day's cap applies to a batch only where the operator set RMBG_DAILY_CAP_USD.

The local scheduler (rmbg.cli.batch.run_items) reserves each call before it
submits it to a worker thread, and settles it by its outcome (settle_outcome:
the outcome read as where its request got to, closed by the one
Policy.settle_by_fate); the Ray engine runs SharedBudget as an async actor,
which adds what only a driver can do: stop starting new calls, and hand over
the calls in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from decimal import Decimal

from ..money.ledger import Hold, Refused
from ..money.payer import Payer
from ..money.paying import Policy
from ..types import MAY_HAVE_BEEN_BILLED, Cost
from .interrupts import INTERRUPTED
from .items import Item, Outcome


def settle_outcome(payer: Payer, hold: Hold, estimate: Decimal, outcome: Outcome, note: str = "") -> None:
    """Close a batch call's hold by its outcome, through the one settle by fate (rmbg.money.paying): its cost
    when its call was made (done, or failed after it: its output not written), its `estimate` when it failed
    and may have been billed, else nothing (a matte from the cache, or kept from an earlier run: not sent)."""
    cost = outcome.cost
    if cost is not None and cost.source == "free":
        payer.settle_by_fate(hold, estimate, billable=False, note=note or "not sent: a matte made before")
        return
    made = cost.usd if cost is not None and (outcome.status == "done" or cost.note != MAY_HAVE_BEEN_BILLED) else None
    payer.settle_by_fate(hold, estimate, billable=outcome.may_be_billed, cost=made, note=note)


def kept_hold(outcome: Outcome, usd: Decimal) -> Outcome:
    """A failure that may have been billed costs its estimate `usd`: the manifest, the
    summary and the budget count it (an estimate, noted "may have been billed")."""
    if outcome.status == "failed" and outcome.may_be_billed and outcome.cost is None and usd:
        return replace(outcome, cost=Cost(usd, "estimated", MAY_HAVE_BEEN_BILLED))
    return outcome


def in_flight_outcome(item: Item, usd: Decimal) -> Outcome:
    """The row of a call still in flight when a second signal stops the batch:
    failed, and when it was paid, "may have been billed" at its estimate."""
    paid = "; it may have been billed" if usd else ""
    return Outcome(
        item,
        "failed",
        cost=Cost(usd, "estimated", MAY_HAVE_BEEN_BILLED) if usd else None,
        error=f"{INTERRUPTED} while its request was in flight{paid}",
        may_be_billed=bool(usd),
    )


def finish_abandoned(
    future: Future, item: Item, hold: Hold | None, written: bool, payer: Payer, estimate: Decimal, emit: Callable
) -> None:
    """One item of the local scheduler (rmbg.cli.batch.run_items) in flight when a second signal stopped the
    batch, recorded before the process ends (at once, its worker threads still waiting for replies:
    rmbg.cli.interrupts.end_process): not started -> "not run (interrupted)", its hold given back; ended, or
    its file `written` -> as it ended (`finish`); still in flight -> its request's fate is unknown: its row
    says "may have been billed" and its hold is counted at its estimate (the settle by fate), not left held."""
    if future.cancel():
        if hold is not None:
            payer.settle_by_fate(hold, estimate, billable=False, note="not started: interrupted")
        emit(Outcome(item, "not_run", error=INTERRUPTED))
    elif written or future.done():
        finish(future, hold, payer, estimate, emit)
    else:
        outcome = in_flight_outcome(item, estimate if hold is not None else Decimal(0))
        if hold is not None:
            settle_outcome(payer, hold, estimate, outcome)
        emit(outcome)


def finish(future: Future, hold: Hold | None, payer: Payer, estimate: Decimal, emit: Callable) -> None:
    """An item's ended work in the local scheduler (rmbg.cli.batch.run_items): its outcome (a failure that
    may have been billed keeps its hold), settled by where its request got to (settle_outcome) and emitted."""
    outcome = kept_hold(future.result(), estimate if hold is not None else Decimal(0))
    if hold is not None:
        settle_outcome(payer, hold, estimate, outcome)
    emit(outcome)


class SharedBudget:
    """A batch's payer for workers in other processes (the Ray engine runs
    it as an async actor): every paid call reserves through the one wrapper
    (rmbg.money.payer.Payer: the first call alone, the caps, in the shared ledger),
    and

    - once `stop()` is called (the first Ctrl-C or SIGTERM), nothing new starts:
      reserve answers (None, "interrupted");
    - the calls in flight are known by item index, so a second signal can
      record each of them (`abandon()`): calls whose fate is unknown, each
      counted in the ledger at its estimate (the settle by fate, as the
      local scheduler does), before the driver's process ends.
    """

    POLL_S = 0.01

    def __init__(self, max_cost: Decimal | None, provider_id: str = "", policy: Policy | None = None):
        self.payer = Payer.operator("batch", max_cost, policy)
        self.provider_id = provider_id
        self.holds: dict[int, tuple[Hold | None, Decimal]] = {}  # item index -> (hold, estimate)
        self.stopping = False

    async def reserve(self, index: int, estimate: Decimal) -> tuple[Decimal | None, str]:
        """(the call's estimate, "") to go ahead, or (None, why): "budget" or INTERRUPTED."""
        while True:
            if self.stopping:
                return None, INTERRUPTED
            if not estimate:
                self.holds[index] = (None, Decimal(0))
                return Decimal(0), ""
            got = self.payer.try_reserve(self.payer.payment(self.provider_id, estimate))
            if isinstance(got, Hold):
                self.holds[index] = (got, estimate)
                return estimate, ""
            if isinstance(got, Refused):
                return None, "budget"
            import asyncio  # here: the local path never waits, and a cold start need not import it

            await asyncio.sleep(self.POLL_S)  # behind a first call, or for room: let the others settle

    async def settle(self, index: int, outcome: Outcome) -> None:
        hold, estimate = self.holds.pop(index, (None, Decimal(0)))  # absent: abandoned, recorded by the driver
        if hold is not None:
            settle_outcome(self.payer, hold, estimate, outcome)

    @property
    def committed(self) -> Decimal:
        """What this batch has spent, holds in flight included."""
        return self.payer.spent()

    async def stop(self) -> None:
        self.stopping = True

    async def abandon(self) -> dict[int, Decimal]:
        """Stop, and hand over the calls in flight (index -> estimate), each counted at its estimate (its
        request may have reached the vendor: Policy.settle_by_fate); their later settles are ignored."""
        await self.stop()
        held, self.holds = self.holds, {}
        for hold, estimate in held.values():
            if hold is not None:
                self.payer.settle_by_fate(hold, estimate, billable=True)
        return {index: estimate for index, (_, estimate) in held.items()}
