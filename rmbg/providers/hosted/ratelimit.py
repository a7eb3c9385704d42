"""A vendor's published rate limit, kept on our side: at most `limit` calls
in any `window` seconds, shared by every client of the same key in this
process, so that a burst waits its turn instead of earning 429s.

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
    """At most `limit` calls in any `window` seconds (thread-safe)."""

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
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_needed(self) -> float:
        """Seconds until one more call may start (0: now)."""
        with self._lock:
            return self._wait(self.clock())

    def acquire(self, provider_id: str, most_s: float | None = None, what: str = "") -> float:
        """Take a slot, waiting for one if the window is full; the seconds waited.
        A wait past `most_s` (the call's remaining deadline) is refused with
        ProviderRateLimitError before the call is sent. `what` names the limit."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait(now)
                if wait <= 0:
                    self._starts.append(now)
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

    def _wait(self, now: float) -> float:
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()
        if len(self._starts) < self.limit:
            return 0.0
        return self._starts[0] + self.window - now


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
