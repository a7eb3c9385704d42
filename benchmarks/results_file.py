"""benchmarks/results/<name>.json in the shared schema (benchmark, command,
date, machine, versions, tables), for app_memory.py and cutout_colour.py.

Uses benchmarks/harness.py's write_results when the project has it, else
writes the same JSON itself.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def machine() -> dict:
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = [f for f in FLAGS if f in line.split(":", 1)[1].split()]
                break
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    return {"cpu": cpu, "flags": flags, "cores": os.cpu_count(), "memory_gib": round(pages / 2**30, 1)}


def versions(*modules: str) -> dict:
    out = {"python": platform.python_version()}
    for name in modules:
        try:
            out[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            continue
    return out


def write(name: str, command: str, tables: list[dict], modules: tuple[str, ...] = ("numpy", "PIL")) -> Path:
    """Write (and return the path of) benchmarks/results/<name>.json."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from harness import write_results  # type: ignore[import-not-found]
    except ImportError:
        write_results = None
    if write_results is not None:
        try:
            return Path(write_results(name, command, tables))
        except TypeError:  # a different signature: write our own below
            pass
    RESULTS.mkdir(exist_ok=True)
    doc = {"benchmark": name, "command": command,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "versions": versions(*modules), "tables": tables}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path
