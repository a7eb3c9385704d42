"""The Ray engine's shared budget (rmbg.cli.budget.SharedBudget) as the async
actor runs it, driven here on one asyncio loop, on the test's own ledger: the
first paid call runs alone under a cap until one has reported its cost, every
call holds its bound (2x the table), a stop lets nothing new start, and a
second signal hands over exactly the calls in flight."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from rmbg.cli.budget import SharedBudget, in_flight_outcome
from rmbg.cli.items import Item, Outcome
from rmbg.types import Cost

ITEM = Item("in/a.png", "a.png", "a.png", Path("out/a.png"))
TABLE = Decimal("0.0013")  # what the price table says a call costs
REPORTED = Decimal("0.05")  # what the vendor then reports


def done(cost: Decimal) -> Outcome:
    return Outcome(ITEM, "done", 1.0, Cost(cost, "reported", ""))


def test_the_first_paid_call_runs_alone_until_a_cost_is_reported():
    async def scenario() -> list:
        budget = SharedBudget(Decimal("0.0075"), "runware-rembg")
        first = await budget.reserve(0, TABLE)
        second = asyncio.ensure_future(budget.reserve(1, TABLE))
        await asyncio.sleep(0)  # let the second ask (a yield to the loop, no wall-clock wait)
        waiting = not second.done()
        await budget.settle(0, done(Decimal("0.0025")))  # within the 2x bound: counted in full
        return [first, waiting, await second, budget.committed]

    first, waiting, second, committed = asyncio.run(scenario())
    assert first == (TABLE, "") and waiting
    # the second then holds its bound (2 x $0.0013) beside the $0.0025 spent: it fits under $0.0075
    assert second == (TABLE, "") and committed == Decimal("0.0025") + 2 * TABLE


def test_a_cap_refuses_what_cannot_fit_even_at_the_edge():
    async def scenario() -> list:
        budget = SharedBudget(Decimal("0.002"), "runware-rembg")
        first = await budget.reserve(0, TABLE)  # holds the room left, $0.002, at the cap's edge
        await budget.settle(0, done(TABLE))
        return [first, await budget.reserve(1, TABLE), budget.committed]

    assert asyncio.run(scenario()) == [(TABLE, ""), (None, "budget"), TABLE]


def test_without_a_cap_paid_calls_do_not_wait():
    async def scenario() -> list:
        budget = SharedBudget(None, "runware-rembg")
        return [await budget.reserve(i, TABLE) for i in range(3)]

    assert asyncio.run(scenario()) == [(TABLE, "")] * 3


def test_free_calls_neither_wait_nor_hold():
    async def scenario() -> list:
        budget = SharedBudget(Decimal("0.01"), "u2netp")
        held = [await budget.reserve(i, Decimal(0)) for i in range(4)]
        return [held, budget.committed, sorted(budget.holds)]

    held, committed, holds = asyncio.run(scenario())
    assert held == [(Decimal(0), "")] * 4 and committed == 0 and holds == [0, 1, 2, 3]


def test_a_stop_releases_the_waiting_and_starts_nothing():
    async def scenario() -> list:
        budget = SharedBudget(Decimal("1"), "runware-rembg")
        await budget.reserve(0, TABLE)
        waiting = asyncio.ensure_future(budget.reserve(1, TABLE))
        await asyncio.sleep(0)
        await budget.stop()
        return [await waiting, await budget.reserve(2, Decimal(0)), budget.committed]

    waiting, free, committed = asyncio.run(scenario())
    assert waiting == (None, "interrupted") and free == (None, "interrupted") and committed == 2 * TABLE  # 1 hold


def test_abandon_hands_over_the_calls_in_flight_once():
    async def scenario() -> list:
        budget = SharedBudget(None, "runware-rembg")
        await budget.reserve(3, TABLE)
        await budget.reserve(5, TABLE)
        await budget.settle(3, done(TABLE))
        handed = await budget.abandon()
        await budget.settle(5, done(TABLE))  # the late settle of an abandoned call changes nothing
        return [handed, budget.committed, await budget.reserve(6, TABLE)]

    handed, committed, after = asyncio.run(scenario())
    # the abandoned call's fate is unknown: counted at its estimate (the settle by fate), not left held
    assert handed == {5: TABLE} and committed == TABLE + TABLE and after == (None, "interrupted")
    row = in_flight_outcome(ITEM, TABLE)
    assert (row.status, row.cost, row.may_be_billed) == (
        "failed",
        Cost(TABLE, "estimated", "may have been billed"),
        True,
    )
    assert row.error == "interrupted while its request was in flight; it may have been billed"
