"""The test files that fork the test process (tests/support/fresh.py: Ray's start, the fork-safety
test) run here, each in a fresh pytest interpreter, so the forked children are not stuck on what
earlier test files left in a shared worker. A failure there fails here, with its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import fresh

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("test_ray_gpus.py", marks=[pytest.mark.uses("ray"), pytest.mark.slow]),
        pytest.param("test_fork_safety.py", marks=pytest.mark.slow),
        pytest.param("test_torch_thread.py", marks=[pytest.mark.uses("torch"), pytest.mark.slow]),
    ],
)
def test_a_file_that_forks_passes_in_an_interpreter_of_its_own(name):
    assert name in fresh.FILES
    env = {**os.environ, fresh.FRESH: "1"}
    done = subprocess.run(
        # -m "": every test of the file, long checks too (pyproject's addopts leaves them out; this one runs them)
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "", f"tests/{name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1] and "skipped" not in done.stdout.splitlines()[-1]
