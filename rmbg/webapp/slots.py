"""The app's work slots, and a paid call's wait outside them.

Each door runs its work in a few slots: a cut-out through the page, its API
or MCP (one set, WORK) or REST (its own), a comparison (COMPARE), a
Benchmark run (BENCHMARK), a clip on the Video tab (VIDEO) or through
`POST /api/video` (its own); free models and hosted calls alike. A paid call
that must wait before it is sent (for its provider's first call, or for room
under a cap while calls in flight may give some back: rmbg.money.paying) steps out
of its slot while it waits, into that door's waiting room of
RMBG_PAID_WAITING places, and takes a slot again to go on; when the room
is full it is refused at once (ServerBusy, HTTP 503: the server is busy, not
the cap spent; nothing was sent). So free work by another visitor is never
delayed by a paid call's wait: the queues in front of the slots (gradio's
concurrency limit, REST's limiters) admit the slots + that many requests
(`admitted`), so the waiting ones never fill them (before, paid calls waited
up to 120 s inside the 4 slots, and a free U2-Net-p cut-out took 241 s). The
room is sized for a burst: a provider's first call runs alone
(rmbg.money.price_watch), so a burst of paid calls on a fresh day all wait for it.

One request holds one slot (a `Seat`), whatever threads work for it: a
comparison's providers run in threads of their own (rmbg.compare copies the
request's context into them), and the seat is given back while any of them
waits for a paid call, taken again when the last of them goes on.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext

from ..errors import ServerBusy
from ..settings import current, declared_number

WORK = 4  # cut-outs working at once through one door (the page, its API and MCP; or REST)
COMPARE = 2  # comparisons working at once (the Compare tab and its API)
BENCHMARK = 2  # Benchmark runs working at once
VIDEO = 2  # clips working at once on the Video tab (one clip, side by side, another background)
WAITING = int(declared_number("RMBG_PAID_WAITING"))  # paid calls waiting outside a door's slots


def waiting_places() -> int:
    """RMBG_PAID_WAITING, at least 1 (read when a door is built)."""
    places = current().integer("RMBG_PAID_WAITING", WAITING)
    if places < 1:
        raise ValueError(f"RMBG_PAID_WAITING must be 1 or more, got {places}")
    return places


def admitted(work: int = WORK) -> int:
    """What the queue in front of a door's `work` slots lets in (gradio's concurrency_limit, REST's limiters)."""
    return work + waiting_places()


class Seat:
    """The slot one request works in; `out`: how many of its threads wait outside it for a paid call."""

    def __init__(self, slots: Slots):
        self.slots, self.out = slots, 0
        self.lock = threading.Lock()


_seat: contextvars.ContextVar[Seat | None] = contextvars.ContextVar("rmbg_slot_seat", default=None)


class Slots:
    """`work` slots for a door's work, and a waiting room for paid calls (see the module docstring)."""

    def __init__(self, work: int = WORK, waiting: int | None = None):
        self.work, self.waiting = work, waiting_places() if waiting is None else waiting
        self._free = threading.BoundedSemaphore(work)
        self._room = threading.BoundedSemaphore(self.waiting)

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Work in one slot (waiting for one when all are busy); a request already working in a
        slot (REST's, say, around the app's shared action) stays in it."""
        if _seat.get() is not None:
            yield
            return
        self._free.acquire()
        token = _seat.set(Seat(self))
        try:
            yield
        finally:
            _seat.reset(token)
            self._free.release()

    @contextmanager
    def stepped_out(self, why: str) -> Iterator[None]:
        """This request's slot given back while this thread waits; ServerBusy at once when the waiting
        room is full. The first of a request's threads to wait gives the slot back, the last to go on
        takes one again (waiting for it, as `taken` does)."""
        seat = _seat.get()
        if seat is None or seat.slots is not self:
            raise RuntimeError("stepped_out outside this door's slots")
        with seat.lock:
            if seat.out == 0:
                if not self._room.acquire(blocking=False):
                    raise ServerBusy(
                        f"{why}, and {self.waiting} paid calls already wait on this server; nothing was sent. "
                        "Try again in a few seconds."
                    )
                self._free.release()
            seat.out += 1
        token = _seat.set(None)
        try:
            yield
        finally:
            _seat.reset(token)
            with seat.lock:  # held while the slot is taken again, so no other thread of the seat gives it back first
                seat.out -= 1
                if seat.out == 0:
                    self._free.acquire()
                    self._room.release()


_aside: contextvars.ContextVar[tuple[Callable[[], AbstractContextManager[object]], ...]] = contextvars.ContextVar(
    "rmbg_given_back_while_waiting", default=()
)


@contextmanager
def given_back_while_waiting(aside: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
    """Within this block, a paid call's wait (`waiting_outside`) also enters `aside()`: another limit
    of the door (the video memory budget, rmbg.webapp.video.room) given back while the call waits
    and taken again, after the slot, when it goes on."""
    token = _aside.set((*_aside.get(), aside))
    try:
        yield
    finally:
        _aside.reset(token)


@contextmanager
def waiting_outside(why: str) -> Iterator[None]:
    """The wait of a paid call (rmbg.money.paying.Policy's `waiting`): outside the slot this request
    works in, if any, and outside the door's other limits it holds (elsewhere, a CLI batch say,
    it waits where it is). A full waiting room refuses it before anything is given back; after
    the wait the slot is taken again first, then the rest, in the order the door took them."""
    seat = _seat.get()
    with ExitStack() as rest:  # left last
        with seat.slots.stepped_out(why) if seat is not None else nullcontext():
            for aside in _aside.get():
                rest.enter_context(aside())
            yield
