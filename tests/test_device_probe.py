"""Where no GPU can be reached, "auto" is the CPU without importing torch (rmbg.providers.local.device):
the app on a CPU server starts without torch's 1.5-2 s and memory when its models are ONNX ones."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rmbg.providers.local import device
from tests.u2netp_fixture import u2netp_path  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
GPU_HERE = any(glob.glob(trace) for trace in device.GPU_TRACES) or sys.platform == "darwin"


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    device.no_accelerator_here.cache_clear()
    yield device.no_accelerator_here
    device.no_accelerator_here.cache_clear()


def test_a_gpu_drivers_trace_or_a_zerogpu_space_means_torch_is_asked(probe, monkeypatch, tmp_path):
    monkeypatch.setattr(device, "GPU_TRACES", (str(tmp_path / "nvidia*"),))
    assert probe() is True  # nothing there: the CPU, torch not asked
    (tmp_path / "nvidia0").touch()  # a driver's device file appears
    probe.cache_clear()
    assert probe() is False
    (tmp_path / "nvidia0").unlink()
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # ZeroGPU lends its GPU through torch, per call
    probe.cache_clear()
    assert probe() is False


def run(script: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPACES_ZERO_GPU"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_auto_is_the_cpu_and_torch_stays_unimported_where_no_gpu_can_be():
    script = (
        "import sys; from rmbg.providers.local.device import pick_device; print(pick_device(), 'torch' in sys.modules)"
    )
    found = run(script)
    assert found == ["cpu", "False"] if not GPU_HERE else found[1] == "True"  # a GPU's trace: torch asked


@pytest.mark.uses("gradio")
@pytest.mark.slow  # a fresh interpreter builds the page and warms its model: 35-50 s on 2 cores
def test_the_page_is_built_and_its_default_model_warmed_without_torch(u2netp_path):  # noqa: F811
    script = (
        "import sys; from rmbg.webapp.page import build_demo, warm_up; demo = build_demo(); t = warm_up(demo);"
        "t is not None and t.join(); print('torch' in sys.modules)"
    )
    assert run(script) == [str(GPU_HERE)]  # on a CPU server (U2-Net-p the default here), no torch
