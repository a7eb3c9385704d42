"""Figures the code carries from the benchmarks' results files are the files' own (rounded): a new run
that moves them fails here until the code says the new figure."""

from __future__ import annotations

import json
from pathlib import Path

from rmbg.webapp.costs import BENCHMARK_CPU_SECONDS

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def cell(name: str, title: str, row: str, column: str) -> float:
    """The value in results file `name`, table titled `title`, the row whose first cell is `row`."""
    tables = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))["tables"]
    table = next(t for t in tables if t["title"] == title)
    found = next(r for r in table["rows"] if r[0] == row)
    return float(found[table["columns"].index(column)])


def test_the_benchmark_cpu_seconds_of_the_projection_are_the_results_files():
    stage = "RMBG-1.4 per stage, 1024x1024"
    u2netp = "U2-Net-p (real weights) per stage, CPU"
    birefnet = next(
        t["title"]
        for t in json.loads((RESULTS / "speed_birefnet.json").read_text(encoding="utf-8"))["tables"]
        if t["title"].startswith("birefnet-lite on the CPU, end to end")
    )
    measured = {
        "rmbg-1.4": cell("speed", stage, "onnx fp32", "network ms") / 1000,
        "u2netp": cell("speed", u2netp, "u2netp 1024x1024", "network ms") / 1000,
        "birefnet-lite": cell(
            "speed_birefnet", birefnet, "ours, auto (the default here: bf16-autocast, allocator reuse)", "ms"
        )
        / 1000,
    }
    assert BENCHMARK_CPU_SECONDS == {
        model: round(seconds, 2 if seconds < 1 else 1) for model, seconds in measured.items()
    }
