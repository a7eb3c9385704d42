"""The memory the app's video doors may use at once: a clip waits for room, or is refused, before it decodes.

A clip being cut holds memory in proportion to its frames' size, not its
length (rmbg.video streams it): the decoder's frames at the size stored, the
few frames in flight between decoding, the model and the encoders, the
smoothing's window of frames and flows, and the encoders' own look-ahead, all
at the size processed. Two seconds of 4K scaled to 1080p cost about 600 MiB
of RSS through `POST /api/video` (issue 58), so four clips at once (two
through REST, two on the page) took +3.2 GB where an image is held to +1 GB
(docs/serving.md). Every video door (the Video tab, its side by side, its
re-encoding, `POST /api/video`) goes through `VideoRoom.hold` once the
clip's header has been read and before its first frame is decoded:

- the clip's need is estimated from its sizes (`need_bytes`: bytes per pixel
  processed and per pixel stored, plus a fixed part; see PER_PIXEL);
- while the clips running and this one would pass the budget
  (RMBG_VIDEO_MEMORY_MB), it waits its turn (first come, first served, so
  a large clip is not passed over forever by small ones), up to
  RMBG_VIDEO_WAIT_S, then is refused in words (`ServerBusy`, HTTP 503);
  a Stop while it waits ends the wait (VideoStopped, as a stop at any frame);
- a paid call of the clip that must wait before it is sent (rmbg.money.paying)
  gives the room back while it waits, as it gives back its door's slot
  (rmbg.webapp.slots), and waits its turn again after;
- a clip that needs more than the whole budget runs when nothing else does,
  rather than never: the budget bounds what runs together, and the size
  limit (RMBG_VIDEO_MAX_SIZE) bounds one clip.

One room per process (memory is the process's), the settings read at each hold.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...errors import ServerBusy
from ...settings import current
from ...video.limits import VideoStopped
from ..slots import given_back_while_waiting

MIB = 2**20
DEFAULT_BUDGET_MB = 896
DEFAULT_WAIT_S = 300.0
# Per pixel processed, per pixel stored (the decoder's frames) and a fixed part, fitted (rounded up) to
# benchmarks/video_memory.py's clips alone through POST /api/video with U2-Net-p (results/video_memory.json:
# peak RSS over the RSS before, +172 MiB at 854x480, +772 at 1080p, +795 for 4K cut at 1080p).
PER_PIXEL = 380
PER_CODED_PIXEL = 8
FIXED = 32 * MIB
_POLL_S = 0.25  # how often a waiting clip looks at its Stop flag


def need_bytes(width: int, height: int, coded: tuple[int, int]) -> int:
    """What cutting a clip of this size processed (width x height) and stored (`coded`) holds at its peak."""
    return PER_PIXEL * width * height + PER_CODED_PIXEL * coded[0] * coded[1] + FIXED


class VideoRoom:
    """Clips being cut and the bytes each holds, against a budget (module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._held: dict[int, int] = {}
        self._queue: list[int] = []
        self._tickets = itertools.count()

    @property
    def held(self) -> int:
        with self._lock:
            return sum(self._held.values())

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def wait_for_waiting(self, count: int, timeout: float) -> bool:
        """Block until `count` clips wait for room (False after `timeout` s): for tests and
        benchmarks that need a clip to be queued, without polling."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._queue) >= count, timeout)

    @contextlib.contextmanager
    def hold(self, need: int, stop: Any = None) -> Iterator[None]:
        """Room for a clip that needs `need` bytes, for as long as it runs: waits its turn
        (module doc); ServerBusy after RMBG_VIDEO_WAIT_S; VideoStopped when `stop` (anything
        with is_set()) is set while it waits. A paid call of the clip that must wait before it
        is sent gives the room back meanwhile and waits its turn again after (rmbg.webapp.slots)."""
        held: list[int | None] = [self._take(need, stop)]

        @contextlib.contextmanager
        def aside() -> Iterator[None]:
            self._give(held[0])
            held[0] = None
            try:
                yield
            finally:
                held[0] = self._take(need, stop)

        try:
            with given_back_while_waiting(aside):
                yield
        finally:
            self._give(held[0])

    def _take(self, need: int, stop: Any) -> int:
        """Wait for room (hold's rule); the ticket that holds it."""
        settings = current()
        budget = settings.integer("RMBG_VIDEO_MEMORY_MB", DEFAULT_BUDGET_MB) * MIB
        wait_s = settings.number("RMBG_VIDEO_WAIT_S", DEFAULT_WAIT_S)
        ticket = next(self._tickets)
        deadline = time.monotonic() + wait_s
        with self._lock:
            self._queue.append(ticket)
            self._lock.notify_all()
            try:
                while not self._fits(ticket, need, budget):
                    if stop is not None and stop.is_set():
                        raise VideoStopped(0)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ServerBusy(
                            f"The server is cutting other clips and has no memory free for this one "
                            f"(it needs about {need / MIB:.0f} MB) after {wait_s:.0f} s of waiting. "
                            "Try again in a few minutes."
                        )
                    self._lock.wait(min(left, _POLL_S))
            finally:
                self._queue.remove(ticket)
                self._lock.notify_all()
            self._held[ticket] = need
        return ticket

    def _give(self, ticket: int | None) -> None:
        if ticket is None:  # given back while a paid call waited, and not taken again (refused)
            return
        with self._lock:
            del self._held[ticket]
            self._lock.notify_all()

    def _fits(self, ticket: int, need: int, budget: int) -> bool:
        """This clip's turn (the first waiting) and room for it, or nothing else running."""
        if self._queue[0] != ticket:
            return False
        return not self._held or sum(self._held.values()) + need <= budget


ROOM = VideoRoom()
