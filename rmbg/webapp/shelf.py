"""What the app keeps of its visitors' clips between clicks, and their Stop buttons.

- `Kept`: one clip through one provider, kept so that another background or
  format is encoded from its mattes without running the model again: the
  VideoResult (its mattes, compressed, in a private temporary folder) and a
  copy of the input clip in a folder of its own. `close()` deletes both.
- `Shelf`: every session's kept clips, one entry per session and slot ("one"
  for the Video tab's last cut-out, "compare" for its last comparison). A new
  entry replaces (and deletes) the one before it; the whole shelf is bounded
  in bytes on disk (least recently used out first), an entry unused for
  `idle_s` goes, and a session's entries go when its page closes (`drop`), and
  every entry when the app stops. So disk stays flat however many sessions come and go.
- `Runs`: one video run at a time per session, each with the threading.Event
  its Stop button sets (rmbg.video stops at the next frame and leaves nothing
  written).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import RmbgError
from ..video.result import VideoResult

SHELF_BYTES = 512 * 2**20  # the kept inputs and mattes of every session together
IDLE_S = 3600.0  # as the page's session state (rmbg.webapp.page.SESSION_TTL_S)


@dataclass(frozen=True)
class Kept:
    """A clip through one provider or more (a comparison): their results, the
    providers' labels (in the same order), the input's file stem, and the
    folder holding the input's copy that `VideoResult.save` decodes again."""

    results: tuple[VideoResult, ...]
    labels: tuple[str, ...]
    stem: str
    folder: Path

    @property
    def nbytes(self) -> int:
        sizes = (p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return sum(r.store.nbytes for r in self.results) + sum(sizes)

    def close(self) -> None:
        for result in self.results:
            result.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _close_all(items: OrderedDict[tuple[str, str], tuple[Kept, int, float]], lock: threading.Lock) -> None:
    with lock:
        gone = [kept for kept, _, _ in items.values()]
        items.clear()
    for kept in gone:
        kept.close()


class Shelf:
    """Kept clips by (session, slot); see the module docstring. Thread-safe."""

    def __init__(
        self, max_bytes: int = SHELF_BYTES, idle_s: float = IDLE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes, self.idle_s, self._clock = max_bytes, idle_s, clock
        self._items: OrderedDict[tuple[str, str], tuple[Kept, int, float]] = OrderedDict()
        self._lock = threading.Lock()
        # what is still kept when the app stops (Ctrl-C) goes with it: visitors' clips are not left in /tmp
        weakref.finalize(self, _close_all, self._items, self._lock)

    def put(self, session: str, slot: str, kept: Kept) -> None:
        """Keep `kept` as this session's `slot`, deleting what it replaces and
        whatever no longer fits (the oldest first; never the entry just put)."""
        size = kept.nbytes
        gone: list[Kept] = []
        with self._lock:
            old = self._items.pop((session, slot), None)
            gone += [old[0]] if old else []
            self._items[(session, slot)] = (kept, size, self._clock())
            gone += self._trim()
        for k in gone:
            k.close()

    def get(self, session: str, slot: str) -> Kept | None:
        """This session's `slot`, or None (never kept, replaced, or let go)."""
        with self._lock:
            gone = self._trim()
            item = self._items.get((session, slot))
            if item is not None:
                self._items[(session, slot)] = (item[0], item[1], self._clock())
                self._items.move_to_end((session, slot))
        for k in gone:
            k.close()
        return item[0] if item else None

    def drop(self, session: str, slot: str | None = None) -> None:
        """Delete this session's entries (one slot, or all of them)."""
        with self._lock:
            keys = [key for key in self._items if key[0] == session and slot in (None, key[1])]
            gone = [self._items.pop(key)[0] for key in keys]
        for k in gone:
            k.close()

    def _trim(self) -> list[Kept]:
        """Entries to delete: idle ones, then the oldest while over max_bytes (never the newest)."""
        now = self._clock()
        gone: list[Kept] = []
        for key, (_, _, used) in list(self._items.items()):
            if now - used > self.idle_s:
                gone.append(self._items.pop(key)[0])
        while len(self._items) > 1 and sum(size for _, size, _ in self._items.values()) > self.max_bytes:
            gone.append(self._items.popitem(last=False)[1][0])
        return gone

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(size for _, size, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class AlreadyRunning(RmbgError):
    """This session already has a clip running."""


class Runs:
    """The video runs in progress, one per session, each with its stop flag."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self, session: str) -> Iterator[threading.Event]:
        """The stop flag of this session's new run, for as long as it runs."""
        flag = threading.Event()
        with self._lock:
            if session in self._flags:
                raise AlreadyRunning("A clip is already being cut in this session: wait for it, or press Stop.")
            self._flags[session] = flag
        try:
            yield flag
        finally:
            with self._lock:
                self._flags.pop(session, None)

    def stop(self, session: str) -> bool:
        """Ask this session's run to stop at its next frame; False when none runs."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def __len__(self) -> int:
        return len(self._flags)
