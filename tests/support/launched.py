"""`python app.py` launched as a process of its own (as a deployment runs it), on a free port of
127.0.0.1, with the environment a test gives it; stopped at the end with every process it started.

Ready means the app said so: it prints "rmbg: ready on URL" once its page answers
(rmbg.webapp.launch.serve), and a thread copying its output to the log sets an event on that line,
or on the end of its output (the app died). The test waits on that event, with a deadline generous
enough for a machine at load 15 (each start is seconds of imports on an idle one), never by polling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.app import free_port
from tests.support.processes import started

ROOT = Path(__file__).resolve().parents[2]
START_S = 300.0  # what an app's start may take on a loaded machine; the tests that launch one allow for it
READY = b"rmbg: ready on "


class _Output:
    """The app's output copied to its log as it comes; `settled` is set once the app is ready or its
    output ended."""

    def __init__(self, proc: subprocess.Popen, log: Path):
        self.ready = False
        self.settled = threading.Event()
        self.log = log
        self.thread = threading.Thread(target=self._copy, args=(proc,), daemon=True)
        self.thread.start()

    def _copy(self, proc: subprocess.Popen) -> None:
        with open(self.log, "wb") as out:
            for line in iter(proc.stdout.readline, b""):  # type: ignore[union-attr]
                out.write(line)
                out.flush()
                if line.startswith(READY):
                    self.ready = True
                    self.settled.set()
        self.settled.set()  # the app's output ended: it is gone

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextmanager
def app_processes(env: dict[str, str], *logs: Path) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """`python app.py` once per log, each on a free port, all started at once; yields their (URL,
    process) once every one is ready. Each is ended with what it started, whatever the outcome."""
    with ExitStack() as stack:
        running: list[tuple[str, subprocess.Popen, _Output]] = []
        for log in logs:
            port = free_port()
            where = {**env, "GRADIO_SERVER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
            command = [sys.executable, "app.py"]
            proc = stack.enter_context(
                started(command, cwd=ROOT, env=where, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            )
            running.append((f"http://127.0.0.1:{port}/", proc, _Output(proc, log)))
        deadline = time.monotonic() + START_S
        for _, proc, output in running:
            output.settled.wait(max(0.0, deadline - time.monotonic()))
            assert output.ready, (
                f"the app (pid {proc.pid}, exit {proc.poll()}) was not ready within {START_S:g} s "
                f"(load average {os.getloadavg()[0]:.1f}):\n{output.tail()}"
            )
        yield [(url, proc) for url, proc, _ in running]


@contextmanager
def app_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python app.py` on a free port; yields its URL and process once it is ready."""
    with app_processes(env, log) as (one,):
        yield one
