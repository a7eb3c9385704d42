"""A stand-in for Hugging Face's `spaces` package on ZeroGPU hardware, as far as
rmbg meets it (put this folder on PYTHONPATH before the app starts).

`spaces.GPU(duration=...)(fn)` returns a function that, for each call, asks
for an allocation and runs `fn` in a worker process forked from the caller's (on a thread of its own there),
its arguments and result pickled through multiprocessing queues, as
spaces.zero.wrappers does: an argument that cannot be pickled fails the call
in the caller with PicklingError, before anything runs. The worker is kept
for the next call, as ZeroGPU keeps an idle one (models it loaded stay
loaded). Each call appends a line to $FAKE_ZEROGPU_LOG: the allocation's
requested duration, the worker's pid and what the call was (the function's
name and, for a list argument, its length), so a test counts allocations.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pickle import PicklingError

_fork = multiprocessing.get_context("fork")


def _serve(task, requests, answers):  # in the forked worker: each call on a thread of its own, as ZeroGPU's
    while True:
        args, kwargs = requests.get()
        with ThreadPoolExecutor(1) as executor:
            answers.put(executor.submit(_run, task, args, kwargs).result())


def _run(task, args, kwargs):
    try:
        return ("ok", task(*args, **kwargs))
    except Exception as exc:  # sent back to the caller, as ZeroGPU's worker does
        return ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


class _Worker:
    def __init__(self, task):
        self.requests, self.answers = _fork.SimpleQueue(), _fork.SimpleQueue()
        self.process = _fork.Process(target=_serve, args=(task, self.requests, self.answers), daemon=True)
        self.process.start()


def _log(entry: dict) -> None:
    path = os.environ.get("FAKE_ZEROGPU_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry) + "\n")


def GPU(fn=None, *, duration=60):  # noqa: N802  (the real package's name)
    def decorate(task):
        lock, kept = threading.Lock(), []  # the worker of this function, kept while it lives

        def on_gpu(*args, **kwargs):
            with lock:  # one allocation at a time here
                if not kept or not kept[0].process.is_alive():
                    kept[:] = [_Worker(task)]
                worker = kept[0]
                try:
                    worker.requests.put((args, kwargs))
                except Exception as exc:
                    if isinstance(exc, PicklingError) or "pickle" in str(exc):
                        raise PicklingError(str(exc)) from exc
                    raise
                status, value = worker.answers.get()
                sizes = [len(a) for a in args if isinstance(a, list)]
                _log({"duration": duration, "worker": worker.process.pid, "fn": task.__name__, "items": sizes})
            if status == "error":
                raise RuntimeError(f"ZeroGPU worker error: {value}")
            return value

        on_gpu.__wrapped__ = task
        return on_gpu

    return decorate(fn) if fn is not None else decorate
