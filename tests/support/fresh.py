"""Test files that run in an interpreter of their own (tests/test_fresh_process.py runs each), not in
the shared pytest workers.

Each forks the test process while other threads run: Ray's start forks its servers with a pre-exec
hook, and tests/test_fork_safety.py forks while locks are held, as ZeroGPU forks the app. On the
Python 3.12.1 this machine has for the Space's pins, a worker that had run other test files first
left those forked children hung (reproduced twice in a full run; each file passes alone, and the
shared workers on Python 3.11 never hung), so each runs in a fresh interpreter where its fork is
the first.
"""

from __future__ import annotations

import os

FRESH = "RMBG_FRESH_PROCESS"  # set in the interpreter that runs one of FILES
FILES = ("test_ray_gpus.py", "test_fork_safety.py", "test_torch_thread.py")


def left_to_a_fresh_process(name: str) -> bool:
    """True for one of FILES collected in the shared run (the fresh run collects it)."""
    return name in FILES and not os.environ.get(FRESH)
