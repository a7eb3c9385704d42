"""A paid call that must wait leaves its cut-out slot (rmbg.webapp.slots), with
real threads on a real ledger: while it waits for room under a cap, free work
takes the slot at once; a second waiting call finds the waiting room full and
is refused at once as a busy server (HTTP 503), with words; the waiting call goes on, in a slot again,
when room comes back."""

from __future__ import annotations

import contextvars
import threading
from decimal import Decimal

import pytest

from rmbg.errors import ServerBusy
from rmbg.money.ledger import Account, Hold
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Payment, Policy
from rmbg.webapp.slots import Slots, waiting_outside

CAP = (Account("day:slots", Decimal("0.05")),)


def test_a_waiting_paid_call_gives_its_slot_to_free_work(tmp_path):
    ledger = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    slots = Slots(work=1, waiting=1)
    waits = threading.Event()

    def sleep(seconds: float) -> None:
        waits.set()  # the call is in its wait loop (outside its slot)
        threading.Event().wait(seconds)

    policy = Policy(ledger, waiting=waiting_outside, sleep=sleep, wait_s=60)
    in_flight = ledger.reserve("v", CAP, Decimal("0.04"), probe=False)  # a live call holds most of the cap
    assert isinstance(in_flight, Hold)
    got: list[object] = []

    def paid() -> None:
        with slots.taken():
            got.append(policy.reserve(Payment("v", Decimal("0.01"), CAP), first_call_alone=False))

    waiter = threading.Thread(target=paid)
    waiter.start()
    assert waits.wait(30)
    free_ran = threading.Event()

    def free() -> None:
        with slots.taken():  # the only slot: it is free while the paid call waits
            free_ran.set()

    other = threading.Thread(target=free)
    other.start()
    assert free_ran.wait(30)
    other.join(30)
    with slots.taken(), pytest.raises(ServerBusy, match="1 paid calls already wait on this server; nothing was sent"):
        policy.reserve(Payment("v", Decimal("0.01"), CAP), first_call_alone=False)
    ledger.settle(in_flight.id, Decimal("0.02"))  # room comes back: the waiting call goes on
    waiter.join(30)
    assert not waiter.is_alive() and isinstance(got[0], Hold)
    ledger.close()


def test_outside_any_slot_a_paid_call_waits_where_it_is(tmp_path):
    """A CLI batch holds no slot: its wait is unchanged."""
    ledger = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    held = ledger.reserve("v", CAP, Decimal("0.04"), probe=False)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            ledger.settle(held.id, Decimal("0.02"))

    hold = Policy(ledger, waiting=waiting_outside, sleep=sleep).reserve(
        Payment("v", Decimal("0.01"), CAP), first_call_alone=False
    )
    assert isinstance(hold, Hold) and len(slept) == 3
    ledger.close()


def test_a_full_waiting_room_is_a_busy_server_not_a_spent_cap():
    """REST answers the refusal 503 (try again), never 402 (the cap is spent): nothing was sent."""
    from rmbg.webapp.rest.body import status_of

    slots = Slots(work=1, waiting=1)
    with slots.taken(), slots.stepped_out("first"):
        with slots.taken(), pytest.raises(ServerBusy) as refused, slots.stepped_out("runware-rembg waits"):
            pass
    assert status_of(refused.value) == 503
    assert str(refused.value).startswith("runware-rembg waits, and 1 paid calls already wait on this server")


def test_a_request_whose_threads_all_wait_gives_its_one_slot_back_once():
    """A comparison's providers run in threads of their own, in the request's context (rmbg.compare): two of
    them waiting take one place in the waiting room and give the request's one slot back once; free work runs
    meanwhile, and another request's wait finds the room full. Then the slot is taken back once."""
    slots = Slots(work=1, waiting=1)
    both_out, back = threading.Barrier(3), threading.Event()

    def waits() -> None:
        with waiting_outside("runware-rembg is waiting for its first call"):
            both_out.wait(30)
            back.wait(30)

    with slots.taken():
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(waits,)) for _ in range(2)]
        for t in threads:
            t.start()
        both_out.wait(30)
        ran, refused = [], []

        def other() -> None:
            with slots.taken():
                ran.append("free")
                try:
                    with slots.stepped_out("fal-bria waits"):
                        pass
                except ServerBusy as exc:
                    refused.append(str(exc))

        free = threading.Thread(target=other)
        free.start()
        free.join(30)
        back.set()
        for t in threads:
            t.join(30)
        assert ran == ["free"] and refused[0].startswith("fal-bria waits, and 1 paid calls already wait")
    with slots.taken():  # the one slot is free again: given back once, taken back once, released once
        pass
