"""Ctrl-C (SIGINT) and SIGTERM during a batch: nothing lost, nothing paid twice.

The first signal asks the batch to stop: no new image is started, the calls
in flight finish (each within its deadline) and are written with their
manifest rows, and the images not started are recorded "not run
(interrupted)". A second signal stops at once: every call still in flight
is recorded in the manifest as "may have been billed" (its hold counted),
and a later run does not send it again unless asked (--retry-uncertain).
The process then ends at once (`end_process`), without waiting for the
replies of the calls it abandoned.

The manifest rows a resumed run reads: the last row of an output whose
cost_source is MAY_HAVE_BEEN_BILLED marks an image whose request may have
been billed and has no output; rmbg.cli.manifest.uncertain_outputs lists
them from the storage, and `uncertain_in_csv` from an older manifest.csv.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TextIO

from ..types import MAY_HAVE_BEEN_BILLED

INTERRUPTED = "interrupted"

stop_requested = threading.Event()  # read by rmbg.cli.batch.run_items between submissions
abandoned = threading.Event()  # set once this process abandoned calls in flight (end_process reads it)
_writes = threading.Lock()  # held by an output's write, and by `abandon`: the two never overlap
# Under _writes, each run's own (run_scope): the outputs written while it runs, and those whose calls it
# abandoned (a result that comes back later is not written). A run that ends on an exception (a second
# Ctrl-C, or in a notebook an interrupt or a callback's error) ends the run, not always the process: the
# next run of the process must write its own outputs, so nothing here is one flag for the whole process.
_written: set[Path] = set()
_abandoned: set[Path] = set()
# Called (in the main thread, from the handler) on the first signal: engines whose workers are
# elsewhere (Ray) pass the stop on. A listener must only set flags or events: the handler may run
# in the middle of any code of the main thread.
stop_listeners: list[Callable[[], None]] = []


def write_unless_abandoned(path: Path, write: Callable[[], object]) -> bool:
    """Call `write()` (the atomic write of output `path`) unless its call was abandoned (`abandon`, on a
    second signal or any exception that ends its run); False then (nothing written: the output's row says
    it may have been billed)."""
    with _writes:
        if path in _abandoned:
            return False
        write()
        _written.add(path)
        return True


def abandon(outputs: Iterable[Path]) -> set[Path]:
    """Abandon the calls in flight that write `outputs`, once no output is being written: those already
    written are returned (their calls finished, and their rows must say so: no file without its row, nor a
    row of "may have been billed" beside a written file); the others are never written after this."""
    with _writes:
        abandoned.set()
        outputs = set(outputs)
        _abandoned.update(outputs - _written)
        return outputs & _written


@contextmanager
def run_scope(outputs: Iterable[Path]) -> Iterator[None]:
    """A run on `outputs`: what an earlier run of this process marked on them is forgotten as it starts
    (a call abandoned then, sent again now with --retry-uncertain, writes its result), and what it wrote
    as it ends (so a long-lived process does not keep every output it ever wrote)."""
    outputs = set(outputs)
    with _writes:
        _abandoned.difference_update(outputs)
        _written.difference_update(outputs)
    try:
        yield
    finally:
        with _writes:
            _written.difference_update(outputs)


@contextmanager
def stopping_gently(err: TextIO) -> Iterator[threading.Event]:
    """SIGINT and SIGTERM handlers for the block (main thread only; elsewhere
    nothing changes): the first signal sets `stop_requested`, the second raises
    KeyboardInterrupt. The previous handlers come back after the block. The event
    yielded is the run's own: it stays set after the block when the run was stopped
    (its exit status), while the process's `stop_requested` is cleared as the block
    ends, so a stop never carries to the next run of the same process (a notebook's
    `remove_many` after an interrupted `rmbg` from Python)."""
    stop_requested.clear()
    abandoned.clear()
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        try:
            yield stopped
        finally:
            if stop_requested.is_set():
                stopped.set()
        return

    def handler(signum, frame) -> None:
        if stop_requested.is_set():
            raise KeyboardInterrupt
        stop_requested.set()
        stopped.set()
        for listener in list(stop_listeners):
            listener()
        name = signal.Signals(signum).name
        print(
            f"\nrmbg: {name}: stopping after the images in flight (their calls may be billed); "
            "send it again to stop now.",
            file=err,
            flush=True,
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if stop_requested.is_set():
            stopped.set()
        stop_requested.clear()


def uncertain_in_csv(out_dir: Path, manifest_name: str = "manifest.csv") -> set[str]:
    """Outputs (relative paths) whose last row in manifest.csv says their
    request may have been billed and produced nothing."""
    path = out_dir / manifest_name
    if not path.is_file() or path.is_symlink():
        return set()
    last: dict[str, dict[str, str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("output"):
                    last[row["output"]] = row
    except (OSError, csv.Error, UnicodeDecodeError):
        return set()
    return {
        out
        for out, row in last.items()
        if row.get("status") == "failed" and row.get("cost_source") == MAY_HAVE_BEEN_BILLED
    }


@contextmanager
def on_stop(listener: Callable[[], None]) -> Iterator[None]:
    """Call `listener` on the first stop signal while the block runs (at once when
    the stop came before the block)."""
    stop_listeners.append(listener)
    try:
        if stop_requested.is_set():
            listener()
        yield
    finally:
        stop_listeners.remove(listener)


def end_process(code: int) -> NoReturn:
    """End the process with exit status `code`: for its entry point only (rmbg.cli.main.entry; a caller of
    main() in-process, a test, goes on). After a second signal abandoned calls in flight (`abandoned`), their
    worker threads still wait in HTTP reads whose replies nothing will use, up to a provider's read timeout
    (60 s), and an ordinary exit joins them (concurrent.futures joins its workers when the interpreter exits):
    so the process ends with os._exit, once everything is out. By then the run has recorded the abandoned
    calls (their manifest rows, their holds counted at their estimates: rmbg.cli.batch, rmbg.cli.budget);
    here stdout, stderr and the log handlers are flushed, the ledger's connections closed and a Ray this
    process runs shut down (a local one it started goes down with it). Otherwise an ordinary exit."""
    if not abandoned.is_set():
        raise SystemExit(code)
    steps: list[Callable[[], object]] = []
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        steps.append(ray.shutdown)
    ledger = sys.modules.get("rmbg.money.ledger")
    if ledger is not None:
        steps.append(ledger.close_all)
    steps += [logging.shutdown, sys.stdout.flush, sys.stderr.flush]
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - a closed stream or a ledger already gone must not keep the process
            said = f"rmbg: while ending, {getattr(step, '__qualname__', step)} failed: {type(exc).__name__}: {exc}\n"
            try:
                os.write(2, said.encode("utf-8", "replace"))  # stderr's descriptor: its file object may be the failure
            except OSError:
                pass  # nowhere left to say it
    os._exit(code)
