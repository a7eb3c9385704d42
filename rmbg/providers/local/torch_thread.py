"""PyTorch's work on one thread for the whole process.

PyTorch's CPU kernels share out their work through OpenMP (GNU libgomp in the
PyPI wheels), and libgomp gives every thread that starts parallel work a team
of helper threads of its own, kept as long as that thread lives. Once more
helper threads exist in the process than it has cores, libgomp stops letting
idle helpers spin and puts them to sleep after every parallel region, so each
of the thousands of small tensor operations in a forward pays for waking them
again. The web app answers every request from one of many worker threads, and
each one that ran a forward kept a team: a forward called from any of them was
measured ~1.2-1.3x slower by the wall clock, for the same CPU time, than the
same forward where only one thread had ever run PyTorch (archived benchmarks/torch_thread.py;
a 40,000-element addition: 4 us against 60 us once a second team exists).

So every local PyTorch network is loaded and run here, on one long-lived
thread: `torch_call(fn)` runs `fn()` on it and returns what it returned (or
raises what it raised) in the caller's thread. A caller keeps its own locks:
it takes the model pool's device lock and its thread budget (POOL.forward) in
its own thread, as before, and hands over only the tensor work, which must
therefore take no lock another caller may hold while waiting here (a model's
load, POOL.get, is resolved before, in the caller's thread). A call made from
this thread runs at once (re-entrant). Thread-local PyTorch state
(torch.inference_mode, torch.autocast) is entered inside `fn`, on this thread.

The thread is a daemon started on first use: a process that stops while a
forward runs (Ctrl-C in the CLI) does not wait for it. A forked child (ZeroGPU
runs a Space's GPU functions in one) starts a thread of its own. A load that may first
download (a transformers model) runs instead on a thread of its own that ends
with it (`passing_call`), so it holds up no forward. Imports nothing heavy.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], "Future[Any]"]


class TorchThread:
    """One daemon thread that runs submitted callables in order, started on first use."""

    def __init__(self, name: str = "rmbg-torch") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def ident(self) -> int | None:
        """The thread's identifier (threading.get_ident() there); None before first use, and in
        a process forked since (the thread did not come with it)."""
        thread = self._thread
        return None if thread is None or self._pid != os.getpid() else thread.ident

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on this thread and return its result in the caller's thread
        (its exception raised there); run it at once when called from this thread."""
        if threading.get_ident() == self.ident:
            return fn()
        done: Future[T] = Future()
        self._ensure_started()
        self._jobs.put((fn, done))
        return done.result()

    def _ensure_started(self) -> None:
        if self._pid != os.getpid():  # a forked child (ZeroGPU runs a Space's GPU calls in one):
            self._start = threading.Lock()  # the parent's thread, queue and lock did not come along
            self._jobs, self._thread, self._pid = queue.SimpleQueue(), None, os.getpid()
        with self._start:
            if self._thread is None:
                thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                thread.start()
                self._thread = thread

    def _serve(self) -> None:
        while True:
            # one job per call of _run: nothing of a finished job (its tensors) stays referenced here
            self._run(*self._jobs.get())

    @staticmethod
    def _run(fn: Callable[[], Any], done: Future[Any]) -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            result = fn()
        except BaseException as exc:  # handed to the caller, who raises it
            done.set_exception(exc)
        else:
            done.set_result(result)


TORCH_THREAD = TorchThread()


def torch_call(fn: Callable[[], T]) -> T:
    """Run `fn()` (PyTorch work) on the process's one PyTorch thread; see the module doc."""
    return TORCH_THREAD.call(fn)


def passing_call(fn: Callable[[], T]) -> T:
    """Run `fn()` on a new thread that ends when it returns, and return its result (or raise
    its exception) in the caller's thread. For a load that may download first (a transformers
    model from the Hub): it does not hold up the PyTorch thread's forwards meanwhile, and the
    OpenMP team its tensor work makes ends with its thread instead of living on in a
    long-lived caller's (the app's worker threads)."""
    done: Future[T] = Future()
    thread = threading.Thread(target=TorchThread._run, args=(fn, done), name="rmbg-torch-load", daemon=True)
    thread.start()
    result = done.result()
    thread.join()  # it has returned: the thread, and with it its OpenMP team, is gone when this does
    return result
