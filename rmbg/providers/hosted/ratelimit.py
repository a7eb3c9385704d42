"""A vendor's published rate limit, kept on our side: at most `limit` calls
in any `window` seconds, shared by every client of the same key in this
process, so that a burst waits its turn instead of earning 429s. A call may
weigh more than one (remove.bg counts an image by its megapixels: 500 a
minute at 1 MP, 20 at 25 MP): the weights in the window are what is limited.

A sliding-window log (the start times of the calls in the last window):
exact at every instant, unlike a fixed window that lets twice the limit
through across its edge, and small at the limits vendors publish (500 a
minute is 500 floats). Libraries that do this exist (pyrate-limiter,
limits); the few lines here keep the install set as it is and take the
clock and the sleep as arguments, so the tests wait on a fake clock.

A wait longer than the call's deadline is not waited: the call is refused
before anything is sent (nothing billed), in the user's words.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable

from ...errors import ProviderRateLimitError


class RateLimiter:
    """At most `limit` calls (or their weights) in any `window` seconds (thread-safe)."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if limit < 1 or window <= 0:
            raise ValueError(f"a rate limit needs at least one call in a positive window, got {limit} in {window} s")
        self.limit, self.window = limit, window
        self.clock, self.sleep = clock, sleep
        self._starts: deque[tuple[float, int]] = deque()  # (start, weight) of the calls in the window
        self._used = 0  # their weights' sum
        self._lock = threading.Lock()

    def wait_needed(self, weight: int = 1) -> float:
        """Seconds until one more call of `weight` may start (0: now)."""
        with self._lock:
            return self._wait(self.clock(), self._weight(weight))

    def acquire(self, provider_id: str, most_s: float | None = None, what: str = "", weight: int = 1) -> float:
        """Take a slot of `weight`, waiting for one if the window is full; the seconds waited.
        A wait past `most_s` (the call's remaining deadline) is refused with
        ProviderRateLimitError before the call is sent. `what` names the limit."""
        weight = self._weight(weight)
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait(now, weight)
                if wait <= 0:
                    self._starts.append((now, weight))
                    self._used += weight
                    return waited
            if most_s is not None and waited + wait > most_s:
                raise ProviderRateLimitError(
                    provider_id,
                    f"{what or f'its rate limit of {self.limit} calls in {self.window:g} s'} is reached for this key; "
                    f"the next call could start in {wait:.0f} s, after this call's deadline, so nothing was sent. "
                    "Try again shortly.",
                )
            self.sleep(wait)
            waited += wait

    def _weight(self, weight: int) -> int:
        return min(max(1, int(weight)), self.limit)  # a call heavier than the whole limit waits for an empty window

    def _wait(self, now: float, weight: int = 1) -> float:
        while self._starts and self._starts[0][0] <= now - self.window:
            self._used -= self._starts.popleft()[1]
        if self._used + weight <= self.limit:
            return 0.0
        freed = 0  # the oldest starts whose leaving the window makes room
        for start, used in self._starts:
            freed += used
            if self._used - freed + weight <= self.limit:
                return start + self.window - now
        return self.window  # not reached: the weight is at most the limit


_SHARED: dict[tuple[str, str, int, float], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(vendor: str, key: str, limit: int, window: float = 60.0) -> RateLimiter:
    """The one limiter of `vendor`'s `key` at `limit` calls per `window` in this
    process (made on first use). The key is held only as a digest."""
    digest = hashlib.sha256(f"{vendor}\0{key}".encode()).hexdigest()
    with _SHARED_LOCK:
        found = _SHARED.get((digest, vendor, limit, window))
        if found is None:
            found = _SHARED[(digest, vendor, limit, window)] = RateLimiter(limit, window)
        return found
