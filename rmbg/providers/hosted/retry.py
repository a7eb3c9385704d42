"""Retry policy and deadlines for hosted calls (all times in seconds).

A RetryPolicy is a frozen value: the app builds one, tests build one with
zero waits and a recording `sleep` (RetryPolicy.immediate), and nothing is
patched globally.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...errors import ProviderResponseError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How a hosted call retries, waits and gives up. All times in seconds.

    max_attempts: HTTP attempts per request (1 = never retry).
    base_delay: wait before the 2nd attempt; doubles each attempt.
    max_delay: cap on one backoff wait (before jitter).
    jitter: each backoff wait is multiplied by a factor drawn uniformly
        from [1 - jitter, 1 + jitter].
    max_retry_after: a server's Retry-After is honoured up to this; longer
        means "give up now" (a person should hear about it, not wait).
    deadline_s: overall budget of one matte() call, including polling.
    poll_interval / max_poll_interval: queue polling starts at the first,
        grows by 1.5x per poll, capped at the second.
    sleep, clock, random: injectable, so tests can record the waits a policy
        would make instead of waiting.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 30.0
    deadline_s: float = 120.0
    poll_interval: float = 0.2
    max_poll_interval: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    @classmethod
    def immediate(cls, max_attempts: int = 3, deadline_s: float = 10.0, **overrides: Any) -> RetryPolicy:
        """Zero backoff, zero poll waits (tests). Retry-After is still honoured
        through `sleep`; pass a recording `sleep` to see it."""
        values: dict[str, Any] = dict(
            base_delay=0.0, max_delay=0.0, jitter=0.0, poll_interval=0.0, max_poll_interval=0.0
        )
        values.update(overrides)
        return cls(max_attempts=max_attempts, deadline_s=deadline_s, **values)

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt number `attempt` (1-based), with jitter."""
        delay = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        if self.jitter:
            delay *= 1 - self.jitter + 2 * self.jitter * self.random()
        return max(0.0, delay)

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt: the server's Retry-After when it
        gave one (and it is longer than our backoff), else our backoff."""
        delay = self.backoff(attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def poll_wait(self, poll: int) -> float:
        """Wait before status poll number `poll` (1-based)."""
        return min(self.poll_interval * (1.5 ** (poll - 1)), self.max_poll_interval)


class Deadline:
    """The overall time budget of one call, on the policy's clock."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.start = policy.clock()
        self.end = self.start + policy.deadline_s

    def remaining(self) -> float:
        return self.end - self.policy.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0


class Misses:
    """Unreadable answers to a status poll in a row, once a paid job was accepted: one is a proxy's hiccup
    and the job is polled again (giving it up would cancel a job that is billed); `policy.max_attempts` in
    a row end the call, as that many failed polls do (rmbg.providers.hosted.http.send's retries)."""

    def __init__(self, policy: RetryPolicy):
        self.policy, self.count = policy, 0

    def read(self, parse: Callable[..., T], *args: Any) -> T | None:
        """parse(*args); None after an unreadable answer (ProviderResponseError) that is not yet one too many."""
        try:
            value = parse(*args)
        except ProviderResponseError:
            self.count += 1
            if self.count >= self.policy.max_attempts:
                raise
            return None
        self.count = 0
        return value


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def wait_words(seconds: float) -> str:
    """A Retry-After's wait in words: '25 s', '3 min', '2 h', 'more than a day' (a date far ahead, 'inf')."""
    if seconds > 86400:
        return "more than a day"
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.0f} h"
    )


def network_words(exc: Exception) -> str:
    """What went wrong on the network, in words (httpx's class names mean nothing to a visitor)."""
    import httpx

    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting took too long"
    if isinstance(exc, httpx.PoolTimeout):
        return "too many calls were waiting for a connection here"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending the request took too long"
    if isinstance(exc, httpx.TimeoutException):
        return "the answer took too long"
    if isinstance(exc, httpx.ConnectError):
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text or "name resolution" in text:
            return "its address could not be found"
        if "ssl" in text or "certificate" in text:
            return "the secure connection could not be set up"
        if "refused" in text:
            return "the connection was refused"
        return "no connection could be made"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without a complete answer"
    return "the connection broke"
