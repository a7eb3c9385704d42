"""Memory a serving process gives back: the C allocator set for a long-lived
app rather than for a batch of forwards.

A visitor's 12 MP photo passes through buffers of 12-48 MB (the decoded
photo, its matte, the RGBA cut-out, the encoder's copy). glibc by default
raises its mmap threshold each time such a block is freed (up to 32 MB), so
later blocks of that size are carved from per-thread heaps (up to 8 per
core, one per worker thread that ran an action) that are seldom trimmed:
resident memory ratchets up with every session and stays there.
rmbg.providers.local.device.tune_cpu_allocator goes further for a batch
(no mmap, no trimming below 2 GiB) to save page faults between forwards.

serving_allocator() sets the opposite for the app: a fixed mmap threshold
of 1 MiB (every image-sized block is mapped on its own and unmapped when
freed), at most 2 heaps, and the batch tuning left off unless
RMBG_CPU_ALLOCATOR says otherwise. give_back() asks glibc to return the
free pages of its heaps after each action (malloc_trim), so what a request
freed leaves the process instead of waiting for the next one.
Where the C library is not glibc, both do nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MMAP_THRESHOLD = 1 << 20
ARENAS = 2


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def serving_allocator() -> str:
    """Set the allocator for a long-lived app process (once); returns what is in effect:
    "glibc-serving" or "system"."""
    os.environ.setdefault("RMBG_CPU_ALLOCATOR", "system")  # no batch tuning unless asked for
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return "system"
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_ARENA_MAX, ARENAS) == 1
    return "glibc-serving" if done else "system"


def give_back() -> None:
    """Return the free pages of the C heaps to the system (glibc's malloc_trim(0))."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
