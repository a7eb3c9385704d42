"""A PyTorch model's matte called from the main thread and from another thread.

    python benchmarks/torch_thread.py [--model birefnet-lite] [--mattes 3] [--rounds 3]

The same provider (as rmbg builds it on this machine: its default device and
precision; deterministic weights of the same network, benchmarks/speed_setup)
makes `--mattes` mattes of an 854x480 frame in the main thread, then in a new
thread, in alternating order each round: wall clock and the process's CPU
time, medians over rounds. The web app calls every model from worker
threads; before PyTorch's work ran on one thread of the process
(rmbg.providers.local.torch_thread, docs/cpu.md), a forward called from a
second thread was ~1.2x slower for the same CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time

from harness import table, write_results
from rmbg.threads import calm_openmp


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    calm_openmp()  # as the CLI and the app do, before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="birefnet-lite")
    parser.add_argument("--mattes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from PIL import Image

    import rmbg
    import speed_setup

    provider = rmbg.get_provider(args.model, weights=str(speed_setup.deterministic_weights(args.model)))
    frame = Image.new("RGB", (854, 480), (120, 30, 200))
    meta = provider.matte(frame).meta  # loaded and run once before any timing
    times: dict[str, list[tuple[float, float]]] = {"main thread": [], "another thread": []}

    def mattes(where: str) -> None:
        wall, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(args.mattes):
            provider.matte(frame)
        times[where].append((time.perf_counter() - wall, cpu_seconds() - cpu))

    runs = []
    for r in range(args.rounds):
        order = ("main thread", "another thread") if r % 2 == 0 else ("another thread", "main thread")
        for where in order:
            load = round(os.getloadavg()[0], 2)
            if where == "main thread":
                mattes(where)
            else:
                worker = threading.Thread(target=mattes, args=(where,))
                worker.start()
                worker.join()
            wall, cpu = times[where][-1]
            runs.append([r + 1, where, round(wall, 2), round(cpu, 2), load])
            print(runs[-1], flush=True)
    rows = []
    base = statistics.median(w for w, _ in times["main thread"])
    for where, done in times.items():
        wall = statistics.median(w for w, _ in done)
        cpu = statistics.median(c for _, c in done)
        rows.append([where, round(wall, 2), round(cpu, 2), round(cpu / wall, 2), round(wall / base, 3)])
    how = ", ".join(meta.get(k, "") for k in ("device", "backend", "precision") if meta.get(k))
    tables = [
        table(
            f"{args.mattes} mattes of an 854x480 frame with {args.model} ({how}), by calling thread",
            ["called from", "seconds", "CPU seconds", "cores busy", "time vs main thread"],
            rows,
            f"Medians of {args.rounds} rounds in alternating order; the same provider object, loaded once.",
        ),
        table(
            "The runs, in the order they ran",
            ["round", "called from", "seconds", "CPU seconds", "load before"],
            runs,
            "load: the 1-minute load average before the run.",
        ),
    ]
    print(write_results("torch_thread", None, tables).read_text())


if __name__ == "__main__":
    main()
