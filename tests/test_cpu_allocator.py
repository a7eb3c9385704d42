"""The CPU allocator setting (rmbg.providers.local.device.tune_cpu_allocator):
with reuse, freed blocks are reused instead of being unmapped and faulted in
again, in threads too; RMBG_CPU_ALLOCATOR=system leaves glibc as it is; unset,
reuse, whatever the CPU. Each case runs in its own interpreter, since the
setting is process-wide."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK_PAGES = (64 << 20) // 4096

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting is glibc's mallopt; this machine's C library is not glibc",
)

PROBE = """
import json, resource, sys, threading
from rmbg.providers.local.device import tune_cpu_allocator

def cycle():
    block = bytearray(64 << 20)  # zero-filled: every page is touched
    del block

def faults_per_cycle(out):
    cycle()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        cycle()
    out.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 5)

setting = tune_cpu_allocator()
main, worker = [], []
faults_per_cycle(main)
thread = threading.Thread(target=faults_per_cycle, args=(worker,))  # as the app's worker threads
thread.start()
thread.join()
print(json.dumps({"setting": setting, "again": tune_cpu_allocator(), "main": main[0], "thread": worker[0]}))
"""


def probe(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "RMBG_CPU_ALLOCATOR"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_in_the_main_thread_and_in_workers():
    got = probe(RMBG_CPU_ALLOCATOR="reuse")
    assert got["setting"] == got["again"] == "glibc-reuse"
    # 16384 pages per 64 MiB block were it unmapped on free; reused, none
    assert got["main"] < 50 and got["thread"] < 50, got


def test_rmbg_cpu_allocator_system_leaves_glibc_alone():
    got = probe(RMBG_CPU_ALLOCATOR="system")
    assert got["setting"] == got["again"] == "system"
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists() and "[always]" in thp.read_text():
        pytest.skip("transparent huge pages are always on here: an unmapped block faults in 2 MiB pages")
    assert got["main"] >= BLOCK_PAGES // 2 and got["thread"] >= BLOCK_PAGES // 2, got  # every cycle faults again


def test_unset_reuses_freed_memory():
    got = probe()
    assert got["setting"] == got["again"] == "glibc-reuse"
    assert got["main"] < 50 and got["thread"] < 50, got


@pytest.mark.parametrize("units", [("avx512_bf16",), ()])
def test_auto_is_reuse_whatever_the_cpu_and_the_setting_forces_either(monkeypatch, units):
    from rmbg.providers.local import device

    monkeypatch.setattr(device, "cpu_bf16_units", lambda: units)
    monkeypatch.delenv("RMBG_CPU_ALLOCATOR", raising=False)
    assert device.cpu_allocator_choice() == "reuse"
    monkeypatch.setenv("RMBG_CPU_ALLOCATOR", " Auto ")
    assert device.cpu_allocator_choice() == "reuse"
    for forced in ("reuse", "system"):
        monkeypatch.setenv("RMBG_CPU_ALLOCATOR", forced)
        assert device.cpu_allocator_choice() == forced


def test_a_misspelt_setting_is_an_error_that_names_it(monkeypatch):
    from rmbg.providers.local import device

    monkeypatch.setenv("RMBG_CPU_ALLOCATOR", "jemalloc")
    with pytest.raises(ValueError, match="RMBG_CPU_ALLOCATOR='jemalloc': expected auto, reuse or system"):
        device.cpu_allocator_choice()
