"""A bounded, thread-safe LRU cache of mattes.

Key: (image content digest, provider id, provider options, whose key pays). The same
image through the same paid provider on the same key is billed once; re-rendering is
free. A matte one key paid for is never given to a caller with another key (or a made-up
one): that caller's own call is made and billed to it (`payer_scope`). Asked for
again while its first call is still running (a double click, a client that
retried, two visitors with one photo), it waits for that call (`once`)
instead of making, and paying for, a second.
Bound: total bytes of the cached alpha mattes (default 512 MiB, or
RMBG_CACHE_MB, read when the default cache is first used).

Functions that take a `cache` accept a MatteCache, None (no caching), or
DEFAULT (the process-wide default_cache(), made on first use).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sized
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, Generic, Literal, TypeVar, Union

from .errors import InvalidRequestError
from .types import Matte

Default = Literal["default"]
MatteKey = tuple[str, str, str, str]  # (image digest, provider id, options, payer_scope)
DEFAULT: Final[Default] = "default"
CacheArg = Union["MatteCache", None, Default]
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


def options_key(options: Mapping[str, object]) -> str:
    """Canonical text of provider options (sorted keys, JSON)."""
    return json.dumps(dict(options), sort_keys=True, default=str, separators=(",", ":"))


def payer_scope(provider: object) -> str:
    """Whose account pays `provider`'s calls, as its `key_scope()` says (a digest of its key, never the
    key; rmbg.providers.hosted.base), "" for a provider that has none (a local model): part of what a
    paid answer is kept under, so one key's answer is not handed to a caller with another key."""
    scope = getattr(provider, "key_scope", None)
    return str(scope()) if callable(scope) else ""


class Flights(Generic[K, V]):
    """One maker per key, the other callers waiting for it: what a cache uses so that a value asked for
    while its first call is still running is not made, and paid for, twice. `lock` is the cache's own:
    `found` (the cache's lookup) runs under it.

    The wait is where `wait_aside` says: outside the web app's door slot, as a paid call's
    (rmbg.webapp.slots.waiting_outside); elsewhere, where the caller is."""

    def __init__(self, lock: threading.Lock):
        self._lock = lock
        self._making: dict[K, threading.Event] = {}  # keys a caller is making, and its event
        self._waiting: dict[K, int] = {}  # callers waiting for each of those
        self.wait_aside: Callable[[str], AbstractContextManager[object]] = lambda why: nullcontext()

    def turn(self, key: K, found: Callable[[], V | None], why: str) -> tuple[V | None, threading.Event | None]:
        """(what `found` gives, None) once it gives something; else (None, an event): this caller makes
        the value, then calls done(key, event), which lets the waiting callers look again."""
        mine = threading.Event()
        while True:
            with self._lock:
                value = found()
                if value is not None:
                    return value, None
                made = self._making.get(key)
                if made is None:
                    self._making[key] = mine
                    return None, mine
                self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                with self.wait_aside(why):
                    made.wait()
            finally:
                with self._lock:
                    self._waiting[key] -= 1
                    if not self._waiting[key]:
                        del self._waiting[key]

    def done(self, key: K, mine: threading.Event) -> None:
        """The value under `key` is made (kept or not): the waiting callers look again."""
        with self._lock:
            if self._making.get(key) is mine:
                del self._making[key]
        mine.set()

    def waiters(self, key: K) -> int:
        """How many callers wait for the value being made under `key`."""
        with self._lock:
            return self._waiting.get(key, 0)


class OnePerProcess(Generic[T]):
    """The process's one object, made by `make` at the first call (settings read then), under a lock."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


def resolved(cache: object, kind: type[T], default: Callable[[], T]) -> T | None:
    """A `cache` argument -> the cache to use: None (none), one of `kind`, or "default" (`default()`);
    anything else is refused, not taken for the default (cache="yes", cache=False)."""
    if cache is None or isinstance(cache, kind):
        return cache
    if isinstance(cache, str) and cache == DEFAULT:
        return default()
    raise InvalidRequestError(f'cache must be "default", None or a {kind.__name__}, not {cache!r:.40}.')


class Kept:
    """What a store bounded in bytes says of itself: len() its entries, nbytes the bytes they hold."""

    _items: Sized
    _bytes: int

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


class MatteCache(Kept):
    def __init__(self, max_bytes: int | None = None):
        if max_bytes is None:
            from .settings import current

            max_bytes = int(current().number("RMBG_CACHE_MB", 512) * 1024 * 1024)
        self.max_bytes = max_bytes
        self._items: OrderedDict[MatteKey, Matte] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.flights: Flights[MatteKey, Matte] = Flights(self._lock)  # who makes which matte

    @staticmethod
    def key(digest: str, provider_id: str, options: Mapping[str, object], payer: str) -> MatteKey:
        """`payer`: payer_scope() of the provider that makes the matte."""
        return (digest, provider_id, options_key(options), payer)

    @classmethod
    def key_of(cls, digest: str, provider: Any, options: Mapping[str, object] | None = None) -> MatteKey:
        """The key of `provider`'s matte of the image `digest`: its id, `options` (else its own) and whose key
        pays it (payer_scope)."""
        return cls.key(digest, provider.id, provider.options() if options is None else options, payer_scope(provider))

    def get(self, key: MatteKey) -> Matte | None:
        with self._lock:
            return self._hit(key)

    def once(self, key: MatteKey, make: Callable[[], Matte]) -> tuple[Matte, bool]:
        """(the matte under `key`, True) when cached, else (make(), False), kept. While one caller
        makes a key's matte, the others asking for it wait and get it from the cache: one call to
        the provider, not one each. Should the maker fail (or its matte be too large to keep), the
        next waiter makes its own, as it would have without waiting."""
        why = f"{key[1]} is already making this photo's matte for another request"
        matte, mine = self.flights.turn(key, lambda: self._hit(key), why)
        if mine is None:
            return matte, True  # type: ignore[return-value]  # found: never None
        try:
            matte = make()
            self.put(key, matte)
            return matte, False
        finally:
            self.flights.done(key, mine)

    def _hit(self, key: MatteKey) -> Matte | None:
        """The matte under `key`, made the newest (the lock held)."""
        matte = self._items.get(key)
        if matte is not None:
            self._items.move_to_end(key)
        return matte

    def waiters(self, key: MatteKey) -> int:
        """How many callers wait for the matte being made under `key` (`once`)."""
        return self.flights.waiters(key)

    def put(self, key: MatteKey, matte: Matte) -> None:
        size = matte.alpha.size[0] * matte.alpha.size[1]
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.alpha.size[0] * old.alpha.size[1]
            self._items[key] = matte
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.alpha.size[0] * evicted.alpha.size[1]

    def limit(self, max_bytes: int) -> None:
        """Lower the bound to `max_bytes` (never raises it), evicting the oldest mattes to fit."""
        with self._lock:
            self.max_bytes = min(self.max_bytes, max_bytes)
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.alpha.size[0] * evicted.alpha.size[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_default = OnePerProcess(MatteCache)


def default_cache() -> MatteCache:
    """The process-wide matte cache, made on first use (RMBG_CACHE_MB read then)."""
    return _default()


def resolve_cache(cache: CacheArg) -> MatteCache | None:
    """A `cache` argument -> the cache to use (None: no caching); anything else is refused, not taken for
    the default (cache="yes", cache=False)."""
    return resolved(cache, MatteCache, default_cache)
