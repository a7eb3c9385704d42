"""What a test starts is ended, with what it started (tests/support/processes.py), and the run's check
finds a process left behind, even one whose parent is gone.

The ZeroGPU stand-in's app forks a worker that outlived a SIGTERM to the app (parent 1, hundreds of MB,
its port held): the forking parent below is that app, in small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support import processes

# A parent that forks a child (multiprocessing's fork, as the ZeroGPU stand-in does), says both pids and
# waits; a SIGTERM ends the parent only (the default action: no atexit runs to end the daemon child).
FORKING = """
import multiprocessing, sys, time
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,), daemon=True)
child.start()
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """A live process of this run (not a zombie waiting for its parent, not gone)."""
    return pid in processes.leftovers(grace=0)


def test_a_started_process_and_its_forked_worker_are_ended_whatever_the_outcome():
    with pytest.raises(AssertionError), processes.started([sys.executable, "-c", FORKING], stdout=subprocess.PIPE) as p:
        child = int(p.stdout.readline())
        assert alive(p.pid) and alive(child)
        raise AssertionError("the test failed here")  # the block's end is what a failing test goes through
    assert p.returncode == -signal.SIGTERM
    assert not alive(child)


def test_a_sigterm_to_the_parent_alone_leaves_its_forked_worker_running():
    """What the launched app's stop did before its process group was ended (why `started` exists)."""
    p = subprocess.Popen([sys.executable, "-c", FORKING], stdout=subprocess.PIPE)
    child = int(p.stdout.readline())
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    try:
        assert alive(child)  # parent 1 now
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_runs_check_names_a_process_left_behind_and_not_the_test_process():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        left = processes.leftovers(grace=0)
        assert p.pid in left and "time.sleep(600)" in left[p.pid]
        assert os.getpid() not in left
    finally:
        processes.end({p.pid: ""})
        p.wait(timeout=30)
    assert p.pid not in processes.leftovers(grace=0)
