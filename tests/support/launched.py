"""`python app.py` launched as a process of its own (as a deployment runs it), on a free port of
127.0.0.1, with the environment a test gives it; stopped with SIGTERM at the end."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.app import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def app_processes(env: dict[str, str], *logs: Path) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """`python app.py` once per log, each on a free port, all started at once (each start is seconds of
    imports); yields their (URL, process) once every one answers."""
    started: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for log in logs:
            port = free_port()
            with open(log, "wb") as out:
                command, where = [sys.executable, "app.py"], {**env, "GRADIO_SERVER_PORT": str(port)}
                proc = subprocess.Popen(command, cwd=ROOT, env=where, stdout=out, stderr=out)
            started.append((f"http://127.0.0.1:{port}/", proc, log))
        deadline = time.monotonic() + 180
        for url, proc, log in started:
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the app did not start: " + log.read_text()[-3000:]
                time.sleep(0.25)
        yield [(url, proc) for url, proc, _ in started]
    finally:
        for _, proc, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, _ in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@contextmanager
def app_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python app.py` on a free port; yields its URL and process once it answers."""
    with app_processes(env, log) as (one,):
        yield one
