"""What hosted video services answered, kept on disk: one clip through one service is one paid call.

Key: (the clip's content digest, the service's id, whose key pays (rmbg.cache.payer_scope,
its host within), the format asked of it): one key's answer is not handed to another. The
answer kept is the file the service sent back (its cut-out, with alpha) and its provenance;
every output is written from it as from a fresh answer, so another format, another
background, a retry after a failed write or a second visitor with the same clip costs
nothing new. Asked for again while the first call is still running (a double click, a
client that retried, two visitors), the later callers wait for that call (`once`) and take
its answer, instead of making, and paying for, a second. Should it fail before its answer
came back, the next waiter makes its own, as it would have without waiting.

Bound: the bytes of the kept files (512 MiB by default, RMBG_VIDEO_CACHE_MB, read when the
process's cache is first used), oldest first out; an answer larger than the bound is not
kept. A caller is given its own link to the file, so an answer going out of the cache while
it is read loses nothing. The folder is the process's own and goes with it.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..cache import Default, Flights, Kept, OnePerProcess, resolved

Key = tuple[str, str, str, str]  # (clip digest, service id, whose key pays (its host within), format asked)
AnswersArg = Union["VideoAnswers", None, Default]


@dataclass(frozen=True)
class Answer:
    """A kept answer, linked for one caller: the file, its MIME type, the service's provenance."""

    path: Path
    content_type: str
    meta: Mapping[str, str]


def clip_digest(path: Path) -> str:
    """The SHA-256 of a clip's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _link(source: Path, target: Path) -> None:
    """`target` as a second name of `source` (a copy where the two folders' disks differ)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@dataclass(frozen=True)
class Turn:
    """What `once` gives a caller: the kept answer (`found`), or None and `keep`, which the caller making the
    answer calls with the file the service sent back (its MIME type, its provenance) as soon as it has it."""

    found: Answer | None
    keep: Callable[[Path, str, Mapping[str, str]], None]


@dataclass(frozen=True)
class _Kept:
    path: Path
    content_type: str
    meta: Mapping[str, str]
    size: int


class VideoAnswers(Kept):
    """A bounded, thread-safe LRU of hosted video answers, as files (module doc)."""

    def __init__(self, max_bytes: int | None = None):
        if max_bytes is None:
            from ..settings import current

            max_bytes = int(current().number("RMBG_VIDEO_CACHE_MB", 512) * 1024 * 1024)
        self.max_bytes = max_bytes
        self._items: OrderedDict[Key, _Kept] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.flights: Flights[Key, Answer] = Flights(self._lock)  # who is sending which clip
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def _taken(self, key: Key, into: Path) -> Answer | None:
        """The kept answer under `key`, linked into `into` (under the lock: nothing evicts it meanwhile)."""
        kept = self._items.get(key)
        if kept is None:
            return None
        self._items.move_to_end(key)
        target = into / f"kept-answer{kept.path.suffix}"
        _link(kept.path, target)
        return Answer(target, kept.content_type, kept.meta)

    @contextmanager
    def once(self, key: Key, into: Path) -> Iterator[Turn]:
        """The kept answer under `key` linked into `into`; or none, and the caller makes it (and `keep`s it)
        while every other caller asking for `key` waits for it, until it is kept or the block is left."""
        why = f"{key[1]} is already cutting out this clip for another request"
        found, mine = self.flights.turn(key, lambda: self._taken(key, into), why)
        if mine is None:
            yield Turn(found, lambda path, content_type, meta: None)
            return
        try:
            yield Turn(None, lambda path, content_type, meta: self._put(key, mine, path, content_type, meta))
        finally:
            self.flights.done(key, mine)

    def _put(self, key: Key, made: threading.Event, path: Path, content_type: str, meta: Mapping[str, str]) -> None:
        """Keep the answer at `path` (linked, not moved) and let the callers waiting for it take it. A disk
        that refuses it (full, read-only) is logged, never the run's failure: its clip was written."""
        try:
            self._keep(key, path, content_type, meta)
        except OSError as exc:
            logging.getLogger(__name__).warning("%s's answer for a clip was not kept: %s", key[1], exc)
        finally:
            self.flights.done(key, made)

    def _keep(self, key: Key, path: Path, content_type: str, meta: Mapping[str, str]) -> None:
        size = path.stat().st_size
        if size > self.max_bytes:
            return
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="rmbg-video-answers-")
                atexit.register(self._folder.cleanup)
            name = hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]
            target = Path(self._folder.name) / f"{name}{path.suffix}"
            self._forget(key)
            target.unlink(missing_ok=True)
            _link(path, target)
            self._items[key] = _Kept(target, content_type, dict(meta), size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                self._forget(next(iter(self._items)))

    def _forget(self, key: Key) -> None:
        kept = self._items.pop(key, None)
        if kept is not None:
            self._bytes -= kept.size
            kept.path.unlink(missing_ok=True)

    def holds(self, key: Key) -> bool:
        """Whether an answer is kept under `key` now (it may go before it is asked for)."""
        with self._lock:
            return key in self._items

    def waiters(self, key: Key) -> int:
        """How many callers wait for the answer being made under `key`."""
        return self.flights.waiters(key)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._items):
                self._forget(key)


_default = OnePerProcess(VideoAnswers)


def default_answers() -> VideoAnswers:
    """The process's kept answers, made on first use (RMBG_VIDEO_CACHE_MB read then)."""
    return _default()


def resolve_answers(cache: AnswersArg) -> VideoAnswers | None:
    """A `cache` argument of remove_video -> the answers to use (None: none kept); anything else is refused."""
    return resolved(cache, VideoAnswers, default_answers)
