"""One thread budget per process: the cores it may use, shared by every CPU-heavy stage.

`usable_cores()` is the budget: RMBG_THREADS when set, else the smaller of the
CPU affinity and the cgroup's CPU quota (a container given 2 CPUs of a
64-core host sees 64 cores in its affinity but may only use 2).

`BUDGET.take(want)` hands out threads from it: a local model's forward on the
CPU takes as many as its session runs (ONNX Runtime's intra-op threads,
OpenVINO's inference threads, torch's), the PNG bands, the banded resizes and
the edge-colour estimate take up to what they could use and run on what they
got. Together they never hold more than the budget, however many requests run
at once: a thread pool that outnumbers the cores only makes every request
wait for the others' time slices (issue #46: 1.7 s alone, 21-28 s beside two
busy processes). Takers are served in turn, so a forward waiting for all the
cores is not starved by a stream of one-thread encodes.

Standard library only: `import rmbg` stays light.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .settings import of

__all__ = ["BUDGET", "ThreadBudget", "cgroup_cores", "system_cores", "usable_cores"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_CGROUP = Path("/proc/self/cgroup")


def usable_cores(environ: Mapping[str, str] | None = None) -> int:
    """The threads this process's CPU work may use at once: RMBG_THREADS, else system_cores()."""
    settings = of(environ)
    if not settings.raw("RMBG_THREADS"):
        return system_cores()
    threads = settings.integer("RMBG_THREADS", 0)
    if threads < 1:
        raise ValueError(f"RMBG_THREADS must be a whole number of 1 or more, got {settings.raw('RMBG_THREADS')!r}")
    return threads


@functools.lru_cache(maxsize=1)
def system_cores() -> int:
    """The smaller of the CPU affinity and the cgroup quota (read once per process)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        affinity = os.cpu_count() or 1
    quota = cgroup_cores()
    return max(1, min(affinity, quota) if quota else affinity)


def cgroup_cores(root: Path = CGROUP_ROOT, own: Path = OWN_CGROUP) -> int | None:
    """The cores the CPU quota of this process's cgroup allows (ceil of quota / period, at
    least 1), the tightest of its cgroup and their parents; None when none is set.

    `own` lists the process's cgroups (/proc/self/cgroup: "0::/path" for cgroup v2,
    "N:cpu,cpuacct:/path" for v1); `root` is where the hierarchies are mounted. v2 reads
    cpu.max ("quota period" or "max period"); v1 cpu.cfs_quota_us and cpu.cfs_period_us
    (-1: none). A container sees its own cgroup as the mount's root, so the root is read
    too."""
    limits = [limit for folder in _cgroup_folders(root, own) if (limit := _quota(folder)) is not None]
    return max(1, math.ceil(min(limits))) if limits else None


def _cgroup_folders(root: Path, own: Path) -> list[Path]:
    try:
        lines = own.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = ["0::/", "0:cpu:/"]
    folders: list[Path] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers and "cpu" not in controllers.split(","):
            continue
        mounts = [root] if not controllers else [root / controllers, root / "cpu"]
        for mount in mounts:
            folder = mount / path.strip("/")
            while True:
                folders.append(folder)
                if folder == mount:
                    break
                folder = folder.parent
    return folders


def _quota(folder: Path) -> float | None:
    """The cgroup's CPU quota in cores, or None (no limit, or no such files)."""
    try:
        fields = (folder / "cpu.max").read_text(encoding="utf-8").split()
        quota, period = fields[0], fields[1] if len(fields) > 1 else "100000"
    except OSError:
        try:
            quota = (folder / "cpu.cfs_quota_us").read_text(encoding="utf-8").strip()
            period = (folder / "cpu.cfs_period_us").read_text(encoding="utf-8").strip()
        except OSError:
            return None
    if quota in ("max", "-1"):
        return None
    try:
        cores = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None  # a file we do not understand limits nothing we can honour
    return cores if cores > 0 else None


class ThreadBudget:
    """Threads handed out from `total` (usable_cores() when None, read at each take so
    RMBG_THREADS takes effect at once); in turn, first come first served."""

    def __init__(self, total: int | None = None) -> None:
        self._total = total
        self._state = threading.Condition(threading.Lock())
        self._turns: deque[object] = deque()
        self._mine = threading.local()
        self.in_use = 0
        self.peak = 0

    @property
    def total(self) -> int:
        return self._total if self._total is not None else usable_cores()

    @contextmanager
    def take(self, want: int, *, exactly: bool = False) -> Iterator[int]:
        """Hold up to `want` threads (at least 1; all of `want`, capped at the total, when
        `exactly`: a session whose thread count is fixed) and yield how many. Waits its turn
        while fewer are free. A thread that already holds some (a stage inside a stage)
        gets what it holds, never more, and waits for nothing."""
        held = getattr(self._mine, "held", 0)
        if held:
            yield min(max(want, 1), held)
            return
        total = self.total
        need = min(max(want, 1), total) if exactly else 1
        turn = object()
        with self._state:
            self._turns.append(turn)
            self._state.notify_all()
            try:
                self._state.wait_for(lambda: self._turns[0] is turn and total - self.in_use >= need)
            finally:  # served, or interrupted (Ctrl-C): either way its turn is over, for the ones behind
                self._turns.remove(turn)
                self._state.notify_all()
            got = max(need, min(want, total - self.in_use))
            self.in_use += got
            self.peak = max(self.peak, self.in_use)
            self._state.notify_all()
        self._mine.held = got
        try:
            yield got
        finally:
            self._mine.held = 0
            with self._state:
                self.in_use -= got
                self._state.notify_all()

    def after_fork(self) -> None:
        """In a forked child: nothing taken, nobody waiting. Only the thread that forked came
        along (ZeroGPU runs a Space's GPU calls in such a child), and the threads that held
        some, or queued for them, in the parent will never give them back here."""
        self._state = threading.Condition(threading.Lock())
        self._turns = deque()
        self._mine = threading.local()
        self.in_use = 0

    def queued(self) -> int:
        """How many takers wait for their turn now (no lock: callable from a wait_for predicate)."""
        return len(self._turns)

    def wait_for(self, predicate: Callable[[ThreadBudget], bool], timeout: float) -> bool:
        """Block until `predicate(budget)` holds, re-checked whenever a taker queues, is
        served or gives threads back; False when `timeout` seconds passed first."""
        with self._state:
            return self._state.wait_for(lambda: predicate(self), timeout)

    def reset_peak(self) -> int:
        """The most threads held at once since the last reset (then starts again from now)."""
        with self._state:
            peak, self.peak = self.peak, self.in_use
            return peak


BUDGET = ThreadBudget()
os.register_at_fork(after_in_child=BUDGET.after_fork)


def free_in_child(lock: Any) -> None:
    """Free `lock` (a Lock or RLock) in place in a forked child: only the thread that forked
    comes along, so a lock another thread held at the fork would never be released there.
    Called from an after-fork hook, or registered as one with `release_in_children`. It uses
    `_at_fork_reinit`, which CPython's locks have (3.9+) and its own modules call after a fork."""
    lock._at_fork_reinit()


def release_in_children(*locks: Any) -> None:
    """Module-level locks that every forked child gets free (free_in_child)."""
    for lock in locks:
        os.register_at_fork(after_in_child=functools.partial(free_in_child, lock))


"""The process's budget: every CPU-heavy stage of rmbg takes its threads from it."""


# GNU OpenMP (the CPU torch wheel's) spins a thread that has done its share of an operation for
# 300,000 turns before it sleeps: free alone, but beside another busy process the spinning takes
# the time the others need (BiRefNet_lite's forward 1.6 s alone, 9.4 s beside one busy core).
# 10,000 turns: 1.02x the time alone, 4.1 s beside the busy core (archived benchmarks/omp_wait.py, docs/cpu.md).
SPINCOUNT = "10000"


def calm_openmp(
    environ: MutableMapping[str, str] | None = None, modules: Mapping[str, object] | None = None
) -> str | None:
    """Set GOMP_SPINCOUNT for PyTorch's threads before torch loads (it is read then), unless the
    operator chose how OpenMP waits (GOMP_SPINCOUNT or OMP_WAIT_POLICY) or torch is already loaded.
    Called by the CLI, the web app and the local torch providers' modules; returns what it set.
    `environ`, `modules`: the process's (os.environ, sys.modules) unless given."""
    env = os.environ if environ is None else environ
    if "torch" in (sys.modules if modules is None else modules) or "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env:
        return None
    env["GOMP_SPINCOUNT"] = SPINCOUNT
    return SPINCOUNT
