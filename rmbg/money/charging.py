"""Where a paid call got to, and therefore what it may cost: the one charge
state machine the one paid-call rule reads (rmbg.money.paying, for every door).

States (`Charge`), in the only order they move:

    NOT_SENT  ->  REFUSED  ->  UNKNOWN  ->  ACCEPTED

- NOT_SENT: nothing reached the vendor: the call failed before the network
  (a bad option, no key, a cap), or the connection could not be opened
  (refused, DNS failure, connect timeout). Released: it costs nothing.
- REFUSED: the vendor answered the paid request with a refusal it does not
  bill (a 4xx at submit, 429, or a status it documents as unbilled, such as
  fal's 5xx). Released.
- UNKNOWN: the request left this machine and no telling answer came back (the
  connection dropped, a read timed out, a 5xx the vendor does not document as
  unbilled, a 2xx we could not read). Kept as "may have been billed", and
  never sent again.
- ACCEPTED: the vendor took the job (fal answered the submit with a request
  id; Runware answered with our task's result). Charged, whatever the later
  status polls, result fetches or downloads answer; where the protocol has a
  cancel (fal's queue) it is sent when a later step fails, and the error
  says the vendor accepted the request and may bill it.

A state only ever moves forward: a retry after a 429 cannot undo a dropped
connection, and nothing after ACCEPTED brings the money back, but one thing:
a job the vendor removed from its queue before it ran (fal bills no queue
time), which `Meter.withdrawn` moves back to REFUSED.

How a provider declares its transitions (rmbg.providers.hosted.http does the
network half for every provider):

    meter = charging.current()            # the meter of the call being paid
    response = send(..., "POST", url, paid=True)
    #   http.send records each attempt: a refused connection leaves NOT_SENT,
    #   a dropped one or a read timeout moves to UNKNOWN, an answer is read by
    #   `Endpoint.charge_of` (default: `charge_of_status`): 4xx and the
    #   vendor's unbilled statuses REFUSED, other 5xx and 2xx UNKNOWN.
    job_id = read(response)               # the vendor's proof that it took the job
    meter.accepted(job_id)                # -> ACCEPTED
    try:
        ...                               # polls, result, download
    except RmbgError as exc:
        cancel(job_id)                    # where the protocol has one
        raise meter.annotate(exc)         # the message says it may be billed

How a budget reads it:

    with charging.metered() as meter:
        try:
            out = provider.matte(image)
        except BaseException:
            keep_or_release(meter.state.billable)
            raise

What a call holds and what it may count are rmbg.money.paying's rule; the holds
and totals live in rmbg.money.ledger.

No heavy imports: this module is imported by `import rmbg`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class Charge(Enum):
    """Where a paid request got to (see the module docstring)."""

    NOT_SENT = "not sent"
    REFUSED = "refused, not billed"
    UNKNOWN = "may have been billed"
    ACCEPTED = "accepted"

    @property
    def billable(self) -> bool:
        """True when the vendor may bill it: the budget keeps it."""
        return self in (Charge.UNKNOWN, Charge.ACCEPTED)


_ORDER = {state: n for n, state in enumerate(Charge)}
MAY_BE_BILLED = "It may have reached the provider and been billed, so it was not sent again."


def charge_of_status(status: int, unbilled: Callable[[int], bool] = lambda status: False) -> Charge:
    """What an HTTP answer to a paid request says about its charge: a 2xx is
    UNKNOWN until the provider reads the job from it; 4xx and the statuses the
    vendor documents as unbilled (`unbilled`) are REFUSED; any other status
    (a 5xx) UNKNOWN."""
    if 200 <= status < 300:
        return Charge.UNKNOWN
    if unbilled(status) or 400 <= status < 500:
        return Charge.REFUSED
    return Charge.UNKNOWN


class Meter:
    """Where one paid call got to. Thread-safe; its state only moves forward."""

    def __init__(self) -> None:
        self._state = Charge.NOT_SENT
        self.provider_id = ""
        self.request_id = ""
        self.cancelled = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Meter({self._state.name}, request_id={self.request_id!r})"

    @property
    def state(self) -> Charge:
        return self._state

    def advance(self, state: Charge) -> Charge:
        """Move to `state` unless the call already got further; the state after."""
        with self._lock:
            if _ORDER[state] > _ORDER[self._state]:
                self._state = state
            return self._state

    def dropped(self) -> None:
        """The request left this machine and no answer came back."""
        self.advance(Charge.UNKNOWN)

    def answered(self, state: Charge) -> None:
        """The vendor answered the paid request; `state` is what the answer says."""
        self.advance(state)

    def accepted(self, provider_id: str, request_id: str = "") -> None:
        """The vendor took the job (its job id, or its result for our task)."""
        with self._lock:
            self.provider_id, self.request_id = provider_id, request_id
        self.advance(Charge.ACCEPTED)

    def withdrawn(self) -> None:
        """The vendor took the job into its queue and removed it before it ran (fal: a cancel answered
        while the job was IN_QUEUE; fal never bills queue time): it bills nothing. The one move back,
        from ACCEPTED to REFUSED, and only from there."""
        with self._lock:
            if self._state is Charge.ACCEPTED:
                self._state = Charge.REFUSED

    def note(self) -> str:
        """What a failure message adds about money, by state ("" when released)."""
        if self._state is Charge.ACCEPTED:
            rid = f" (request {self.request_id})" if self.request_id else ""
            cancel = " Cancellation was requested." if self.cancelled else ""
            return f"The provider accepted the request{rid} and may bill it.{cancel}"
        if self._state is Charge.UNKNOWN:
            return MAY_BE_BILLED
        return ""

    def annotate(self, exc: E) -> E:
        """`exc` with note() appended to its message (once); returns it for `raise`."""
        note = self.note()
        if note and exc.args and isinstance(exc.args[0], str) and note not in exc.args[0]:
            said = exc.args[0].rstrip()
            ended = said if said.endswith((".", "!", "?")) else f"{said}."  # a vendor's reason may end bare
            exc.args = (f"{ended} {note}", *exc.args[1:])
        return exc


_current: ContextVar[Meter | None] = ContextVar("rmbg_charge_meter", default=None)


@contextmanager
def metered() -> Iterator[Meter]:
    """A fresh Meter for the paid call made inside the block (in this thread
    or task). A block inside another passes its state up when it ends, so an
    outer budget never sees less than an inner one did."""
    outer = _current.get()
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)
        if outer is not None:
            outer.advance(meter.state)


def current() -> Meter:
    """The Meter of the paid call in progress; a detached one when no budget
    is metering (a library call without a budget records into nothing)."""
    return _current.get() or Meter()
