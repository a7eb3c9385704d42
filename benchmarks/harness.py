"""What every benchmark shares: the machine and versions it ran on, a timer
with warm-up, repeats and medians, a ratio measured in alternating order, and
`write_results()`, which writes benchmarks/results/<name>.json.

The docs build turns those files into tables (docs/hooks/results.py), so a
figure in the docs is always the output of the command stored beside it.
Run a benchmark as `python benchmarks/<x>.py` with rmbg installed
(`pip install -e .`); the benchmarks/ folder is then on sys.path by itself.

A results file:

    {"benchmark": "quality", "command": "python benchmarks/quality.py --provider u2netp",
     "date": "2026-11-23T21:40:00Z",
     "machine": {"cpu": "...", "flags": ["avx2", ...], "cores": 2, "memory_gib": 23.4},
     "versions": {"python": "3.11.7", "rmbg": "...", "numpy": "...", ...},
     "tables": [{"title": "...", "columns": [...], "rows": [[...], ...], "notes": "..."}]}
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# The instruction-set extensions that decide which kernels numpy, torch and
# ONNX Runtime pick on x86 and Arm; the rest of /proc/cpuinfo's list is noise here.
FLAGS_OF_INTEREST = (
    "sse4_2 avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni amx_tile amx_bf16 amx_int8 asimd sve"
).split()
PACKAGES = ("numpy", "pillow", "onnxruntime", "torch", "scipy", "gradio", "ray")


def machine() -> dict[str, Any]:
    """CPU model (with its family/model numbers: rmbg.providers.local.cpuinfo), its
    relevant flags, usable cores, memory (GiB) and the load
    average when the benchmark wrote its results."""
    from rmbg.providers.local.cpuinfo import this_cpu

    cpu = this_cpu()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    memory_gib = None
    try:
        total_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory_gib = round(total_kib / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # others' work on a shared machine
    return {
        "cpu": cpu.name,
        "flags": [f for f in FLAGS_OF_INTEREST if f in cpu.flags],
        "cores": cores,
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "load_1min": None if load is None else round(load, 2),
    }


def versions(*extra: str) -> dict[str, str]:
    """Python, rmbg and the installed packages that decide speed and results."""
    found = {"python": platform.python_version()}
    for name in ("rmbg", *PACKAGES, *extra):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if "rmbg" not in found:
        import rmbg

        found["rmbg"] = rmbg.__version__
    return found


@dataclass
class Timing:
    """Seconds of each timed repeat (warm-up runs excluded)."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_ms(self) -> float:
        return self.median * 1000


def timed(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> tuple[Timing, Any]:
    """Run `fn` `warmup` times untimed, then `repeats` times timed; returns the
    timings and the last value `fn` returned."""
    value = None
    for _ in range(warmup):
        value = fn()
    timing = Timing()
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        timing.seconds.append(time.perf_counter() - start)
    return timing, value


def ratio(
    candidate: Callable[[], Any], baseline: Callable[[], Any], repeats: int = 5, warmup: int = 1
) -> tuple[float, Timing, Timing]:
    """Median time of `candidate` over `baseline`, measured in alternating
    order (A B, B A, A B, ...) so that drift on a shared machine (other jobs,
    thermal limits) falls on both sides. Below 1: the candidate is faster."""
    return alternate(_clocked(candidate), _clocked(baseline), repeats, warmup)


def alternate(
    candidate: Callable[[], float], baseline: Callable[[], float], repeats: int = 5, warmup: int = 1
) -> tuple[float, Timing, Timing]:
    """ratio() for calls that time themselves and return their seconds (a worker
    process reports the time of its own call, without the trip to it)."""
    for _ in range(warmup):
        baseline()
        candidate()
    a, b = Timing(), Timing()
    for i in range(repeats):
        pair = ((candidate, a), (baseline, b)) if i % 2 == 0 else ((baseline, b), (candidate, a))
        for fn, timing in pair:
            timing.seconds.append(fn())
    return a.median / b.median, a, b


def _clocked(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def command_line(argv: list[str] | None = None) -> str:
    """How this benchmark was started, as a person would type it."""
    args = sys.argv if argv is None else argv
    script = Path(args[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        script = Path("benchmarks") / script.name
    return " ".join(["python", shlex.quote(str(script)), *map(shlex.quote, args[1:])])


def table(title: str, columns: list[str], rows: list[list[Any]], notes: str = "") -> dict[str, Any]:
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"{title}: every row needs {len(columns)} cells")
    out: dict[str, Any] = {"title": title, "columns": columns, "rows": rows}
    if notes:
        out["notes"] = notes
    return out


def write_results(
    name: str, command: str | None, tables: list[dict[str, Any]], folder: Path = RESULTS, packages: tuple[str, ...] = ()
) -> Path:
    """Write benchmarks/results/<name>.json (the schema in this module's
    docstring) and return its path. `command`: None = this process's own;
    `packages`: versions to record beside the usual ones (e.g. "transformers")."""
    record = {
        "benchmark": name,
        "command": command or command_line(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(*packages),
        "tables": tables,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def markdown(tables: list[dict[str, Any]]) -> str:
    """The tables as Markdown, for a benchmark's own printout."""
    parts = []
    for t in tables:
        lines = [f"### {t['title']}", "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in t["rows"]]
        if t.get("notes"):
            lines += ["", t["notes"]]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
