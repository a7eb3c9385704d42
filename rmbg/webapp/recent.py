"""The full-resolution pixels the app keeps so a visitor can re-render without a new model run.

One store for every session, bounded in bytes (least recently used first
out); a session's gr.State holds only a token. So memory stays flat as
sessions come and go: a forgotten session costs nothing, and a busy server
forgets the oldest results first (re-rendering one then says to run again).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image


def image_bytes(image: Image.Image) -> int:
    """Memory of a decoded PIL image (bands x pixels)."""
    return image.size[0] * image.size[1] * len(image.getbands())


class Recent:
    """A thread-safe LRU of values by token, holding at most `max_bytes` (as `size` reports them)."""

    def __init__(self, max_bytes: int, size: Callable[[Any], int]):
        self.max_bytes = max_bytes
        self._size = size
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, value: Any) -> str:
        """Keep `value`; returns its token. A value larger than the whole budget is not kept."""
        token = uuid.uuid4().hex
        nbytes = self._size(value)
        if nbytes > self.max_bytes:
            return token
        with self._lock:
            self._items[token] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return token

    def get(self, token: str | None) -> Any:
        """The value, or None when there is none or it was forgotten."""
        if token is None:
            return None
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            self._items.move_to_end(token)
            return item[0]

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
