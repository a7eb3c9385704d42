"""The app's cut-out slots, and a paid call's wait outside them.

A cut-out through the page, its API, MCP (one set of slots) or REST (its own)
runs in one of WORK slots, free models and hosted calls alike. A paid call
that must wait before it is sent (for its provider's first call, or for room
under a cap while calls in flight may give some back: rmbg.paying) steps out
of its slot while it waits, into a waiting room of RMBG_PAID_WAITING places
(16), and takes a slot again to go on; when the room is full it is refused
at once (ServerBusy, HTTP 503: the server is busy, not the cap spent;
nothing was sent). So a free cut-out by another visitor is never delayed by
a paid call's wait: the queues in front of the slots (gradio's concurrency
limit, REST's limiter) admit WORK + that many requests, so the waiting ones
never fill them (before, paid calls waited up to 120 s inside the 4 slots,
and a free U2-Net-p cut-out took 241 s). The room is sized for a burst: a
provider's first call runs alone (rmbg.price_watch), so a burst of paid
calls on a fresh day all wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ServerBusy
from ..settings import current

WORK = 4  # cut-outs working at once through one door (the page, its API and MCP; or REST)
WAITING = 16  # paid calls waiting outside those slots, unless RMBG_PAID_WAITING says otherwise


def waiting_places() -> int:
    """RMBG_PAID_WAITING, at least 1 (read when a door is built)."""
    places = current().integer("RMBG_PAID_WAITING", WAITING)
    if places < 1:
        raise ValueError(f"RMBG_PAID_WAITING must be 1 or more, got {places}")
    return places


def admitted() -> int:
    """What the queue in front of a door's slots lets in (gradio's concurrency_limit, REST's limiter)."""
    return WORK + waiting_places()


_held = threading.local()  # the Slots this thread works in


class Slots:
    """WORK slots for cut-outs, and a waiting room for paid calls (see the module docstring)."""

    def __init__(self, work: int = WORK, waiting: int | None = None):
        self.work, self.waiting = work, waiting_places() if waiting is None else waiting
        self._free = threading.BoundedSemaphore(work)
        self._room = threading.BoundedSemaphore(self.waiting)

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
        """This thread's slot given back while it waits; ServerBusy at once when the waiting room is full."""
        if not self._room.acquire(blocking=False):
            raise ServerBusy(
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
