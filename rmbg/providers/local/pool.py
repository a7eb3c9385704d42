"""The owner of every loaded local model: the pool, and the lock that runs
one forward at a time on the local device.

Every local backend (PyTorch networks, ONNX Runtime sessions, OpenVINO's
compiled models, transformers models) loads through `POOL.get(key, load)`:

- each key is loaded once, by the first caller; a caller asking for the same
  key meanwhile waits for that load and gets the same object; callers of
  other keys go on loading them (a lock per key being loaded: no lock of the
  whole pool is held while a load runs);
- a key is a tuple whose first element names the backend ("torch",
  "onnxruntime", "openvino", "transformers"); the rest is whatever tells two
  loads apart (file, device, precision, threads);
- `held()` lists what is loaded (key, backend, source file, size in memory,
  load time) and `clear(prefix or predicate)` forgets it: its memory is freed
  once nothing else holds the object.

Forwards: `with POOL.forward(): ...` around the network call. Two forwards on
one GPU, or on the same CPU cores, only slow each other down and double the
memory of their activations, so every local provider takes this lock itself
around its own network call, and no caller needs to. It is one re-entrant lock
for the whole process, whichever device a model runs on, as the app's lock
always was: a model on the GPU and one on the CPU do not run side by side (the
CPU also launches the GPU's kernels and does every model's pre- and
post-processing). This is the only place that takes it: the app's doors and
rmbg.compare leave it to the providers.

A forward on the CPU also takes its threads from the process's thread budget
(`POOL.forward(threads=n)`, rmbg.threads): the device lock keeps two models
from running at once, the budget keeps one model's threads and other requests'
PNG bands and edge estimates from outnumbering the cores together. A local
matte on the CPU (processing.run_stages) takes both once, before its
preprocess, and keeps them to the end of its postprocess, so its banded
resizes do not queue again behind other requests between its stages.

Imports nothing heavy: the pool holds objects; it never builds one itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ...threads import BUDGET, free_in_child

T = TypeVar("T")
Key = tuple[Hashable, ...]


@dataclass(frozen=True)
class Held:
    """One loaded model, as `ModelPool.held()` describes it.

    key: the pool key; key[0] is the backend.
    source: the file or folder (or Hub repository) it was loaded from.
    nbytes: its weights' size in memory, as far as its backend tells it (0: unknown).
    seconds: how long its load took.
    """

    key: Key
    source: str
    nbytes: int
    seconds: float

    @property
    def backend(self) -> str:
        return str(self.key[0])


Match = str | Key | Callable[[Held], bool] | None


class _Loading:
    """A load in progress: the lock its callers queue on, and how many they are."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.callers = 0


class ModelPool:
    """Loaded models by key, loaded once each; the device lock for their forwards."""

    def __init__(self) -> None:
        # Guards _models and _loading, and is notified on every change of either (wait_for).
        self._state = threading.Condition(threading.RLock())
        self._models: dict[Key, tuple[Any, Held]] = {}
        self._loading: dict[Key, _Loading] = {}
        self.device_lock = threading.RLock()

    def after_fork(self) -> None:
        """In a forked child (ZeroGPU runs a Space's GPU calls in one): the device free and no
        load in progress. Only the thread that forked came along: a lock another thread of the
        parent held, or this one held around the call that forked (the app's device lock), would
        never be released here. The loaded models stay: they came with the fork."""
        self._state = threading.Condition(threading.RLock())
        self._loading = {}
        free_in_child(self.device_lock)  # in place: a forward of another thread may have held it at the fork

    def get(self, key: Key, load: Callable[[], T], *, source: str = "", size: Callable[[T], int] | None = None) -> T:
        """The model held under `key`; `load()` makes it on first use (once,
        however many threads ask at the same time). `size(model)`: its bytes in
        memory, for held(). An error in `load` is raised to its caller and
        nothing is kept, so the next caller tries again."""
        with self._state:
            found = self._models.get(key)
            if found is not None:
                return found[0]
            loading = self._loading.setdefault(key, _Loading())
            loading.callers += 1
            self._state.notify_all()
        try:
            with loading.lock:
                with self._state:
                    found = self._models.get(key)
                if found is not None:  # loaded by the caller this one waited for
                    return found[0]
                start = time.perf_counter()
                model = load()
                took = time.perf_counter() - start
                held = Held(key, str(source), _size_of(model, size), took)
                with self._state:
                    self._models[key] = (model, held)
                return model
        finally:
            with self._state:
                loading.callers -= 1
                if loading.callers == 0 and self._loading.get(key) is loading:
                    del self._loading[key]
                self._state.notify_all()

    def held(self) -> list[Held]:
        """What is loaded now, in the order it was loaded."""
        with self._state:
            return [held for _, held in self._models.values()]

    def loading(self) -> dict[Key, int]:
        """The keys being loaded now, each with how many callers are in get() for it
        (1: its loader alone; more: callers waiting for that load)."""
        with self._state:
            return {key: loading.callers for key, loading in self._loading.items()}

    def clear(self, match: Match = None) -> list[Held]:
        """Forget the models that `match` names, and return them: None, every one;
        a string, one backend ("torch"); a tuple, the keys that start with it;
        a function, those whose Held it returns True for. A load in progress is
        not stopped: it is held when it ends."""
        test = _matcher(match)
        with self._state:
            gone = [key for key, (_, held) in self._models.items() if test(held)]
            removed = [self._models.pop(key)[1] for key in gone]
            if removed:
                self._state.notify_all()
        return removed

    def wait_for(self, predicate: Callable[[ModelPool], bool], timeout: float) -> bool:
        """Block until `predicate(pool)` holds, re-checked whenever a load starts
        or ends, a caller starts waiting for one, or models are cleared; False
        when `timeout` seconds passed first."""
        with self._state:
            return self._state.wait_for(lambda: predicate(self), timeout)

    @contextmanager
    def forward(self, threads: int = 0) -> Iterator[None]:
        """Hold the device for one forward (re-entrant: a forward may call one). A forward on
        the CPU names the threads its session runs: they are taken from the process's
        thread budget too (rmbg.threads), after the device, so the PNG bands and edge
        estimates of other requests wait for them instead of sharing their cores."""
        with self.device_lock:
            if threads <= 0:
                yield
                return
            with BUDGET.take(threads, exactly=True):
                yield


def _matcher(match: Match) -> Callable[[Held], bool]:
    if match is None:
        return lambda held: True
    if callable(match):
        return match
    prefix: Key = (match,) if isinstance(match, str) else tuple(match)
    return lambda held: held.key[: len(prefix)] == prefix


def _size_of(model: T, size: Callable[[T], int] | None) -> int:
    if size is None:
        return 0
    try:
        return int(size(model))
    except Exception:  # a size is for the listing only: never a reason to fail a load
        return 0


def tensor_bytes(module: Any) -> int:
    """The bytes of a torch module's parameters and buffers (duck-typed: torch is not imported)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def file_bytes(path: Any) -> int:
    """The size of a file on disk: what a model read from it holds, near enough (ONNX, OpenVINO)."""
    return os.path.getsize(path)


POOL = ModelPool()
os.register_at_fork(after_in_child=POOL.after_fork)
