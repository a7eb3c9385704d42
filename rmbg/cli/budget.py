"""A batch's money: what it has committed (spent plus the holds of calls in
flight) against its --max-cost, shared by the local scheduler
(rmbg.cli.batch.run_items) and, wrapped in SharedBudget as a Ray actor, by
every Ray worker."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

from ..types import Cost
from .interrupts import INTERRUPTED, MAY_HAVE_BEEN_BILLED
from .items import Item, Outcome


class Budget:
    """What a batch has committed: money spent plus the holds of calls in
    flight. The local scheduler holds one; the Ray engine runs one as an actor
    shared by all workers (so `highest` is the batch's, across processes)."""

    def __init__(self, max_cost: Decimal | None):
        self.max_cost = max_cost
        self.committed = Decimal(0)
        self.highest = Decimal(0)  # the highest cost one call reported in this batch
        self.costed = False  # a call has settled with its cost

    def reserve(self, estimate: Decimal) -> Decimal | None:
        """Hold the worst case of one call, the larger of `estimate` and the
        highest cost a call reported in this batch; the amount held, or None
        (nothing held) when it would pass max_cost."""
        hold = max(estimate, self.highest) if estimate else estimate
        if self.max_cost is not None and self.committed + hold > self.max_cost:
            return None
        self.committed += hold
        return hold

    def settle(self, hold: Decimal, outcome: Outcome) -> None:
        """Replace the hold with the outcome's cost in full; a failure keeps it
        when the call may have been billed (rmbg.charging), else releases it."""
        if outcome.cost is not None:
            self.committed += outcome.cost.usd - hold
            self.costed = self.costed or outcome.status == "done"
            if outcome.cost.source == "reported":
                self.highest = max(self.highest, outcome.cost.usd)
        elif not outcome.may_be_billed:
            self.committed -= hold


def kept_hold(outcome: Outcome, hold: Decimal) -> Outcome:
    """A failure that may have been billed costs its hold: the manifest, the
    summary and the budget count it (an estimate, noted "may have been billed")."""
    if outcome.status == "failed" and outcome.may_be_billed and outcome.cost is None and hold:
        return replace(outcome, cost=Cost(hold, "estimated", MAY_HAVE_BEEN_BILLED))
    return outcome


def in_flight_outcome(item: Item, hold: Decimal) -> Outcome:
    """The row of a call still in flight when a second signal stops the batch:
    failed, and when it was paid, "may have been billed" at its hold."""
    paid = "; it may have been billed" if hold else ""
    return Outcome(
        item,
        "failed",
        cost=Cost(hold, "estimated", MAY_HAVE_BEEN_BILLED) if hold else None,
        error=f"{INTERRUPTED} while its request was in flight{paid}",
        may_be_billed=bool(hold),
    )


class SharedBudget:
    """The batch's Budget for workers in other processes (the Ray engine runs
    it as an async actor), with what the local scheduler does by itself:

    - under a cap, a paid call waits while another is in flight until one has
      settled with its cost (the first call runs alone, so a price reported
      above the table cannot take a burst of first calls past the cap);
    - once `stop()` is called (the first Ctrl-C or SIGTERM), nothing new starts:
      reserve answers (None, "interrupted");
    - the calls in flight are known by item index, so a second signal can
      record each of them (`abandon()`).
    """

    def __init__(self, max_cost: Decimal | None):
        self.budget = Budget(max_cost)
        self.holds: dict[int, Decimal] = {}  # item index -> amount held (0 for a free call)
        self.stopping = False
        self._changed: asyncio.Condition | None = None  # made in the actor's event loop

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _may_start(self, estimate: Decimal) -> bool:
        if self.stopping or not estimate or self.budget.max_cost is None or self.budget.costed:
            return True
        return not any(self.holds.values())  # a paid call alone until one reports its cost

    async def reserve(self, index: int, estimate: Decimal) -> tuple[Decimal | None, str]:
        """(amount held, "") to go ahead, or (None, why): "budget" or INTERRUPTED."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._may_start(estimate))
            if self.stopping:
                return None, INTERRUPTED
            hold = self.budget.reserve(estimate) if estimate else Decimal(0)
            if hold is None:
                return None, "budget"
            self.holds[index] = hold
            return hold, ""

    async def settle(self, index: int, outcome: Outcome) -> None:
        changed = self._condition()
        async with changed:
            hold = self.holds.pop(index, None)  # None: abandoned, already recorded by the driver
            if hold:
                self.budget.settle(hold, outcome)
            changed.notify_all()

    async def stop(self) -> None:
        changed = self._condition()
        async with changed:
            self.stopping = True
            changed.notify_all()

    async def abandon(self) -> dict[int, Decimal]:
        """Stop, and hand over the calls in flight (index -> hold); their later settles are ignored."""
        await self.stop()
        held, self.holds = self.holds, {}
        return held
