"""The app's cut-out slots, and a paid call's wait outside them.

A cut-out through the page, its API, MCP (one set of slots) or REST (its own)
runs in one of WORK slots, free models and hosted calls alike. A paid call
that must wait before it is sent (for its provider's first call, or for room
under a cap while calls in flight may give some back: rmbg.paying) steps out
of its slot while it waits, into a waiting room of WAITING places, and takes
a slot again to go on; when the room is full it is refused at once, with
words. So a free cut-out by another visitor is never delayed by a paid
call's wait: the queues in front of the slots (gradio's concurrency limit,
REST's limiter) admit WORK + WAITING requests, so the waiting ones never
fill them (before, paid calls waited up to 120 s inside the 4 slots, and a
free U2-Net-p cut-out took 241 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BudgetError

WORK = 4  # cut-outs working at once through one door (the page, its API and MCP; or REST)
WAITING = 4  # paid calls waiting outside those slots
ADMITTED = WORK + WAITING  # what the queue in front of the slots lets in (gradio's concurrency_limit, REST's)

_held = threading.local()  # the Slots this thread works in


class Slots:
    """WORK slots for cut-outs, and a waiting room for paid calls (see the module docstring)."""

    def __init__(self, work: int = WORK, waiting: int = WAITING):
        self.work, self.waiting = work, waiting
        self._free = threading.BoundedSemaphore(work)
        self._room = threading.BoundedSemaphore(waiting)

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Work in one slot (waiting for one when all are busy); a thread already
        working in a slot (REST's, say, around the app's shared action) stays in it."""
        if getattr(_held, "slots", None) is not None:
            yield
            return
        self._free.acquire()
        _held.slots = self
        try:
            yield
        finally:
            _held.slots = None
            self._free.release()

    @contextmanager
    def stepped_out(self, why: str) -> Iterator[None]:
        """This thread's slot given back while it waits; BudgetError at once when the waiting room is full."""
        if not self._room.acquire(blocking=False):
            raise BudgetError(
                f"{why}, and {self.waiting} paid calls already wait on this server; nothing was sent. "
                "Try again in a few seconds."
            )
        self._free.release()
        _held.slots = None
        try:
            yield
        finally:
            self._free.acquire()
            _held.slots = self
            self._room.release()


@contextmanager
def waiting_outside(why: str) -> Iterator[None]:
    """The wait of a paid call (rmbg.paying.Policy's `waiting`): outside the slot this thread
    works in, if any (elsewhere, a CLI batch say, it waits where it is)."""
    slots = getattr(_held, "slots", None)
    if slots is None:
        yield
        return
    with slots.stepped_out(why):
        yield
