"""PyTorch's work on one thread for the whole process (rmbg.providers.local.torch_thread):
every caller's forward runs there, so no other thread keeps an OpenMP team of helper
threads alive (a second team made every small tensor op wait for sleeping helpers:
archived benchmarks/torch_thread.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rmbg.providers.local.torch_thread import TorchThread, passing_call

REPO = Path(__file__).resolve().parent.parent


def test_every_callers_work_runs_on_the_one_thread_and_its_result_comes_back():
    runner = TorchThread("test-torch")
    seen: list[int] = []
    results: list[int] = []

    def caller(n: int) -> None:
        results.append(runner.call(lambda: seen.append(threading.get_ident()) or n * n))

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(5)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert sorted(results) == [0, 1, 4, 9, 16]
    assert set(seen) == {runner.ident} and runner.ident != threading.get_ident()


def test_an_error_is_raised_in_the_caller_and_the_thread_goes_on():
    runner = TorchThread("test-torch")

    def fails() -> None:
        raise ValueError("bad tensor")

    with pytest.raises(ValueError, match="bad tensor"):
        runner.call(fails)
    assert runner.call(lambda: 7) == 7


def test_a_call_from_the_thread_itself_runs_at_once():
    runner = TorchThread("test-torch")
    # a job calling the runner again would wait for itself forever if it were queued
    assert runner.call(lambda: runner.call(lambda: threading.get_ident())) == runner.ident


def test_a_passing_call_runs_on_a_thread_that_is_gone_when_it_returns():
    before = {t.ident for t in threading.enumerate()}
    where = passing_call(threading.get_ident)
    assert where != threading.get_ident() and where not in before
    assert where not in {t.ident for t in threading.enumerate()}
    with pytest.raises(KeyError):
        passing_call(lambda: {}["missing"])


_PROBE = """
import json, os, sys, threading
from PIL import Image
import rmbg


def write_weights(path: str) -> None:  # the network's random weights, written here: the test process needs no torch
    import torch
    from safetensors.torch import save_file

    from rmbg.models.isnet import build_isnet

    torch.manual_seed(0)
    save_file(build_isnet().state_dict(), path)


write_weights(sys.argv[1])
provider = rmbg.get_provider("rmbg-1.4", backend="torch", weights=sys.argv[1], device="cpu", input_size=(64, 64))
photo = Image.new("RGB", (80, 60), (200, 40, 90))


def native() -> int:  # threads of the process that Python did not start: OpenMP's helpers among them
    return len(os.listdir("/proc/self/task")) - threading.active_count()


provider.matte(photo)  # loads, and runs once from the main thread
before = native()
done, leave = threading.Barrier(4), threading.Event()


def visitor() -> None:  # as the app's worker threads: alive after their request
    provider.matte(photo)
    done.wait()
    leave.wait()


visitors = [threading.Thread(target=visitor) for _ in range(3)]
for t in visitors:
    t.start()
done.wait()
after = native()
leave.set()
import torch

print(json.dumps({"before": before, "after": after, "threads": torch.get_num_threads()}))
"""


@pytest.mark.uses("torch")  # in the process it starts (_PROBE): this one never imports torch
def test_mattes_from_many_threads_start_no_second_openmp_team(tmp_path):
    # A fresh process: a provider's mattes from the main thread, then from three threads that
    # stay alive, as the app's workers do. Each thread that ran PyTorch's parallel kernels
    # itself would keep a team of helper threads (one more OS thread each with 2 threads).
    weights = tmp_path / "model.safetensors"  # written by the probe, which imports torch anyway
    env = dict(os.environ, RMBG_THREADS="2", PYTHONPATH=str(REPO))
    env.pop("GOMP_SPINCOUNT", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(weights)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["threads"] == 2
    assert seen["after"] == seen["before"], seen


def _call_in_child(runner: TorchThread, answers) -> None:
    answers.put(runner.call(os.getpid))


def test_a_forked_child_runs_its_calls_on_a_thread_of_its_own():
    """ZeroGPU runs a Space's GPU functions in a forked child: the parent's thread did not come
    along, and a call queued for it would wait forever."""
    import multiprocessing

    runner = TorchThread("test-torch")
    assert runner.call(os.getpid) == os.getpid()  # the parent's thread is running
    ctx = multiprocessing.get_context("fork")
    answers = ctx.Queue()
    child = ctx.Process(target=_call_in_child, args=(runner, answers))
    child.start()
    try:
        assert answers.get(timeout=30) == child.pid
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
