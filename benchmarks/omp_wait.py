"""How PyTorch's OpenMP threads wait, alone and beside a busy process: BiRefNet_lite's forward.

    python benchmarks/omp_wait.py --repeats 3 --rounds 2

GNU OpenMP (the CPU torch wheel's) keeps a thread that has finished its share of an operation
spinning for GOMP_SPINCOUNT turns (300,000 by default) before it sleeps. Alone on its cores that
saves a wake-up per operation; beside another busy process the spinning threads take the time
the others need, and a network of a few thousand operations slows down several times. Each
configuration runs in its own process (the variables are read when torch loads), one
BiRefNet_lite forward at 1024² in bf16 autocast (random weights: speed does not depend on them),
a warm-up then `--repeats` timed, configurations in turn for `--rounds`; then the same with
another process spinning on one core. Writes benchmarks/results/omp_wait.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from harness import markdown, table, write_results

HERE = Path(__file__).resolve().parent
CONFIGS = {
    "OpenMP's default (spin 300,000)": {},
    "GOMP_SPINCOUNT=100000": {"GOMP_SPINCOUNT": "100000"},
    "GOMP_SPINCOUNT=10000 (rmbg's default)": {"GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}
WORKER = """
import statistics, sys, time
sys.path[:0] = [{root!r}, {here!r}]
import torch
from speed_configs import our_birefnet
torch.manual_seed(0)
net = our_birefnet("birefnet-lite").eval()
x = torch.randn(1, 3, 1024, 1024)
with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
    net(x)
    times = []
    for _ in range({repeats}):
        start = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def forward_seconds(env: dict[str, str], repeats: int) -> float:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = WORKER.format(root=str(HERE.parent), here=str(HERE), repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(repeats: int, rounds: int, busy: bool) -> dict[str, float]:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        seen: dict[str, list[float]] = {name: [] for name in CONFIGS}
        for r in range(rounds):
            names = list(CONFIGS)[r % len(CONFIGS) :] + list(CONFIGS)[: r % len(CONFIGS)]  # order turns each round
            for name in names:
                seen[name].append(forward_seconds(CONFIGS[name], repeats))
        return {name: statistics.median(times) for name, times in seen.items()}
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    alone = measure(args.repeats, args.rounds, busy=False)
    shared = measure(args.repeats, args.rounds, busy=True)
    base_alone = alone["OpenMP's default (spin 300,000)"]
    cores = len(os.sched_getaffinity(0))
    rows = [
        [
            name,
            f"{alone[name]:.2f}",
            f"{alone[name] / base_alone:.2f}x",
            f"{shared[name]:.2f}",
            f"{shared[name] / alone[name]:.2f}x",
            "yes" if shared[name] <= 1.5 * alone[name] * cores / (cores - 1) else "no",
        ]
        for name in CONFIGS
    ]
    notes = (
        f"BiRefNet_lite forward at 1024², bf16 autocast, {cores} cores, medians of {args.rounds} processes x "
        f"{args.repeats} timed forwards. 'In bound': beside a process busy on one core, at most 1.5x the "
        "time alone x cores / (cores - 1) (issue #46)."
    )
    tables = [
        table(
            "PyTorch's OpenMP wait: alone and beside a busy process",
            ["how threads wait", "alone (s)", "vs default alone", "beside a busy core (s)", "vs alone", "in bound"],
            rows,
            notes,
        )
    ]
    print(markdown(tables))
    write_results("omp_wait", None, tables)


if __name__ == "__main__":
    main()
