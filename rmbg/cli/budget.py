"""A batch's money: what it has committed (spent plus the holds of calls in
flight) against its --max-cost, shared by the local scheduler
(rmbg.cli.batch.run_items) and, as a Ray actor, by every Ray worker."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from ..types import Cost
from .interrupts import MAY_HAVE_BEEN_BILLED
from .items import Outcome


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
