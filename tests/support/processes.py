"""Processes a test starts, ended with everything they started, whatever the test's outcome.

`started(command, ...)` runs a command in a process group of its own (a new session) and, when the
`with` block ends (passed, failed, interrupted), stops the whole group: SIGTERM, then SIGKILL for what
is still there after a grace period. A forked worker (the ZeroGPU stand-in's, multiprocessing's) is in
its parent's group, so it goes too, even when its parent was killed first. The group's leader is reaped.

`leftovers()` is the check behind tests/conftest.py's `_no_process_left`: every process started from
a pytest process (or xdist worker) carries RUN_MARK=its pid in its environment (set in os.environ
before any test starts one), so a process still alive with that mark is one a test left behind,
even one whose parent is gone (parent 1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUN_MARK = "RMBG_TEST_RUN"  # its value: the pid of the pytest process (or xdist worker) whose tests start them


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member runs as another user (runuser): still there
        return True
    return True


def end_group(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to proc's process group, SIGKILL to what is left after `grace` seconds; reaps proc."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group's id, kept while any member lives
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # the leader if it ignored SIGTERM, and any child it left
    proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:  # killed members still being torn down
        time.sleep(0.05)


@contextlib.contextmanager
def started(command: list[str], **popen: Any) -> Iterator[subprocess.Popen]:
    """subprocess.Popen(command, **popen) in a group of its own; the group is ended when the block ends."""
    proc = subprocess.Popen(command, start_new_session=True, **popen)
    try:
        yield proc
    finally:
        end_group(proc)


def _marked(pid: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return False
    return f"{RUN_MARK}={os.environ.get(RUN_MARK)}".encode() in environ.split(b"\0")


def _command(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


# The interpreter's own helpers of this process (multiprocessing's resource tracker and fork server):
# started by the standard library for it, ended when it exits, so never a test's leftover.
_OWN_HELPERS = ("from multiprocessing.resource_tracker import main", "from multiprocessing.forkserver import main")


def _parent(pid: str) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _marked_now() -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _marked(entry):
            command = _command(entry)
            if _parent(entry) == os.getpid() and any(helper in command for helper in _OWN_HELPERS):
                continue
            found[int(entry)] = command
    return found


def leftovers(grace: float = 30.0) -> dict[int, str]:
    """Live processes this process's tests started (RUN_MARK with this process's value in their
    environment; gone or zombie ones are not), after up to `grace` seconds for those already on
    their way out (a Ray worker ending after ray.shutdown()): {pid: command line}. Empty where
    there is no /proc to read."""
    if not os.environ.get(RUN_MARK) or not Path("/proc/self/environ").exists():
        return {}
    deadline = time.monotonic() + grace
    found = _marked_now()
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = _marked_now()
    return found


def end(pids: dict[int, str]) -> None:
    """SIGKILL to each of `pids` (leftovers found by `leftovers`)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
