"""Which process owns a hold, a first call or a batch's claim, and whether it still runs.

An owner is written "host:pid/start": the host's name, the process id and,
on Linux, the process's start time (in clock ticks since boot, from
/proc/PID/stat), so a process id the system has since given to another
process does not make a dead owner look alive. Older rows ("host:pid") are
read as before.

A hold whose owner is gone (killed, crashed), or which has been in flight
longer than HOLD_LEASE_S (its process hangs, or runs on another host whose
processes cannot be looked at), is no longer "in flight" for anyone's wait:
it stays counted, as a call that may have been billed, until an operator
settles it (`rmbg ledger settle`); see rmbg.money.ledger.sql.
"""

from __future__ import annotations

import os
import socket

# longer than any paid call may run (a hosted clip's deadline is 900 s): older holds are not waited for
HOLD_LEASE_S = 1800.0


def _started(pid: int | str) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return fields[19].decode()  # field 22 of proc(5), counted after the command's ")"
    except (OSError, IndexError):
        return None


def owner() -> str:
    """This process as "host:pid/start" (read at each call: a forked worker is not its parent)."""
    pid = os.getpid()
    start = _started(pid)
    return f"{socket.gethostname()}:{pid}" + (f"/{start}" if start else "")


def shown(owner_: str) -> str:
    """The owner as people read it: "host:pid"."""
    return owner_.partition("/")[0]


def owner_alive(owner_: str) -> bool | None:
    """Whether the process `owner_` still runs; None when it is on another host."""
    host, _, rest = owner_.rpartition(":")
    pid, _, start = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start:
        now = _started(pid)
        return now is None or now == start  # another process now has this id: the owner is gone
    return True


def in_flight(owner_: str, created: float, now: float) -> bool:
    """Whether a hold made by `owner_` at `created` is still a call in flight (see the module docstring)."""
    return owner_alive(owner_) is not False and created > now - HOLD_LEASE_S
