"""The ZeroGPU rehearsal (.ci/zerogpu_rehearsal.py) as a test: the app launched as a ZeroGPU Space
launches it, an unsigned visitor's photos until their 120 s are spent (at least 8), a refusal in
words with the CPU alternative that then serves the same photo, a page visitor told what is left,
and no binary file committed outside the LFS rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # an app process, 30-odd cut-outs and a gradio client: about 80 s on 2 cores
@pytest.mark.uses("gradio")
def test_the_rehearsal_passes_and_an_unsigned_visitor_gets_at_least_8_photos_then_the_cpu(tmp_path):
    results = tmp_path / "rehearsal.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, ".ci/zerogpu_rehearsal.py", "--results", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    measured = json.loads(results.read_text())
    assert measured["photos"] >= 8
    assert measured["refusal"]["zerogpu"] == "ZeroGPU quota exceeded"
    assert measured["refusal"]["retry_on_cpu"]["cpu"] is True
