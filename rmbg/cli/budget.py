"""A batch's money: the accounts a CLI batch pays from, on the shared ledger
(rmbg.ledger), through the one rule (rmbg.paying).

A batch counts against its own account (`batch:<id>`, capped by --max-cost)
and against the day's total of the operator's keys (`day:<UTC date>`), which
the web app's visitors share: so a paid batch and the app on the same keys
cannot each spend a whole cap. The day's cap applies to a batch only where
the operator set RMBG_DAILY_CAP_USD.

The local scheduler (rmbg.cli.batch.run_items) holds one Budget; the Ray
engine runs SharedBudget as an async actor, which adds what only a driver
can do: stop starting new calls, and hand over the calls in flight.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

from ..ledger import Account, Hold, Refused, Wait
from ..paying import Payment, Policy, operator_accounts
from ..types import Cost
from .interrupts import INTERRUPTED, MAY_HAVE_BEEN_BILLED
from .items import Item, Outcome


class Budget:
    """A batch's holds on the ledger (one per paid call in flight)."""

    def __init__(self, max_cost: Decimal | None, provider_id: str = "", policy: Policy | None = None):
        self.max_cost = max_cost
        self.provider_id = provider_id
        self.policy = policy or Policy()
        self.account = Account(f"batch:{uuid.uuid4().hex}", max_cost)

    def accounts(self) -> tuple[Account, ...]:
        own, day = operator_accounts("batch", self.max_cost)
        return (self.account, day)

    def try_reserve(self, estimate: Decimal) -> Hold | Wait | Refused:
        """One attempt at holding one call priced `estimate` (rmbg.paying)."""
        return self.policy.try_reserve(Payment(self.provider_id, estimate, self.accounts()))

    def settle(self, hold: Hold, outcome: Outcome, estimate: Decimal) -> None:
        """Close the hold by the outcome: its cost when it has one, its
        estimate when it failed and may have been billed, else nothing."""
        if outcome.cost is not None and outcome.status == "done":
            self.policy.settle(hold, outcome.cost.usd, priced=True)
        elif outcome.may_be_billed:
            self.policy.settle(hold, min(estimate, hold.usd), priced=False, note="may have been billed")
        else:
            self.policy.release(hold)

    @property
    def committed(self) -> Decimal:
        """What this batch has spent, holds in flight included."""
        return self.policy.spent(self.account.key)


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


class SharedBudget:
    """The batch's Budget for workers in other processes (the Ray engine runs
    it as an async actor): every paid call reserves through the one rule (the
    first call alone, the caps, in the shared ledger), and

    - once `stop()` is called (the first Ctrl-C or SIGTERM), nothing new starts:
      reserve answers (None, "interrupted");
    - the calls in flight are known by item index, so a second signal can
      record each of them (`abandon()`): they stay held in the ledger, as
      calls whose fate is unknown.
    """

    POLL_S = 0.01

    def __init__(self, max_cost: Decimal | None, provider_id: str = "", policy: Policy | None = None):
        self.budget = Budget(max_cost, provider_id, policy)
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
            got = self.budget.try_reserve(estimate)
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
            self.budget.settle(hold, outcome, estimate)

    async def stop(self) -> None:
        self.stopping = True

    async def abandon(self) -> dict[int, Decimal]:
        """Stop, and hand over the calls in flight (index -> estimate); their later settles are ignored."""
        await self.stop()
        held, self.holds = self.holds, {}
        return {index: estimate for index, (_, estimate) in held.items()}
