"""A forked child (ZeroGPU runs a Space's GPU calls in one, forked from the app's process while
another visitor's forward may hold the device lock) finds the process-wide locks free: the threads that
held them in the parent did not come along, and would never release them there."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rmbg.providers.local import hub, pinned, u2netp_file
from rmbg.providers.local.pool import POOL
from rmbg.threads import BUDGET

pytestmark = pytest.mark.fast
KEY = ("test-fork",)


def _in_child(answers) -> None:
    with ThreadPoolExecutor(1) as executor:  # as ZeroGPU's worker runs each call: not the thread that forked
        answers.put(executor.submit(_locks_taken).result())


def _locks_taken() -> dict:
    took = {}
    took["device"] = POOL.device_lock.acquire(timeout=5)
    done = threading.Event()

    def budget() -> None:
        with BUDGET.take(BUDGET.total, exactly=True):
            done.set()

    runner = threading.Thread(target=budget, daemon=True)
    runner.start()
    took["budget"] = done.wait(timeout=5)
    for name, lock in [("probe", hub._probe_lock), ("fetch", pinned._FETCH_LOCK), ("u2netp", u2netp_file._FETCH_LOCK)]:
        took[name] = lock.acquire(timeout=5)
    with ThreadPoolExecutor(1) as loader:  # the parent's load of this key is not going on here
        took["loaded"] = loader.submit(POOL.get, KEY, lambda: "loaded in the child").result(timeout=5)
    return took


def test_a_child_forked_while_the_locks_are_held_finds_them_free():
    held, release = threading.Event(), threading.Event()

    def slow_load() -> str:
        held.set()
        release.wait()
        return "loaded in the parent"

    def other_thread() -> None:  # a download, a Hub probe and a model's load in flight in another thread
        with hub._probe_lock, pinned._FETCH_LOCK, u2netp_file._FETCH_LOCK:
            POOL.get(KEY, slow_load)

    other = threading.Thread(target=other_thread, daemon=True)
    other.start()
    assert held.wait(10)
    ctx = multiprocessing.get_context("fork")
    answers = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(answers,))
    try:
        with POOL.forward(threads=BUDGET.total):  # as a forward on the CPU holds them (rmbg.providers.local.pool)
            child.start()
            took = answers.get(timeout=60)
        child.join(timeout=30)
    finally:
        release.set()
        other.join(10)
        if child.is_alive():  # stuck behind a lock that never comes free
            child.kill()
    assert took == {
        "device": True, "budget": True, "probe": True, "fetch": True, "u2netp": True, "loaded": "loaded in the child"
    }  # fmt: skip
    assert child.exitcode == 0
    assert BUDGET.in_use == 0 and POOL.device_lock.acquire(blocking=False)  # the parent's are its own
    POOL.device_lock.release()
    assert POOL.get(KEY, lambda: "again") == "loaded in the parent"
    POOL.clear(KEY)
