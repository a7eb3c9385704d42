"""SAM 2's image embeddings kept between clicks: a bounded, thread-safe LRU keyed by the
image's digest (rmbg.refine.sam2 computes them once per image; every further prompt on the
same image runs only the prompt encoder and mask decoder)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any


def image_digest(image) -> str:
    """sha256 of an image's size, mode and pixels: the embedding cache key."""
    h = hashlib.sha256(f"{image.size}{image.mode}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """A thread-safe LRU of image embeddings; at most `maxsize` images."""

    def __init__(self, maxsize: int = 4):
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


default_embeddings = EmbeddingCache()
