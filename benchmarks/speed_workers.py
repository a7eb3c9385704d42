"""The speed benchmarks' workers: each configuration in its own long-lived
process (its model, allocator and thread pools are its own, as in a real
deployment), taking turns within each repeat (round robin) so a busy machine
slows them all alike. Used by benchmarks/speed.py and speed_birefnet.py.

Run as a script only by those (--worker / --child); the configurations
themselves are benchmarks/speed_configs.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from speed_configs import STAGES, child, serve


def in_child(name: str, files: dict, image: Path, count: int) -> dict:
    arg = json.dumps(
        {"name": name, "files": {k: str(v) for k, v in files.items() if v}, "image": str(image), "count": count}
    )
    out = subprocess.run([sys.executable, __file__, "--child", arg], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


class Worker:
    """One configuration in its own long-lived process: its model, allocator
    and thread pools are its own, as in a real deployment, and workers take
    turns so they never compete for the cores."""

    def __init__(self, name: str, files: dict, script: str = __file__):
        """`script` is run as `script --worker JOB` (the benchmark that serves the jobs)."""
        self.name = name
        job = json.dumps({"name": name, "files": {k: str(v) for k, v in files.items() if v}})
        self.proc = subprocess.Popen(
            [sys.executable, script, "--worker", job], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, image: Path, save: Path | None = None, **fields: str) -> dict:
        """One job: the image, where to save its output ("" for nowhere) and any other `fields`."""
        job = {"image": str(image), "save": str(save) if save else "", **fields}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name!r} died (see stderr)")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def round_robin(workers: dict[str, Worker], image: Path, repeats: int) -> tuple[dict, dict]:
    """{name: {stage: median s, "total": .., "rss_mib": ..}}, {name: alpha of the last run}."""
    import tempfile

    from PIL import Image

    samples: dict[str, list[dict]] = {name: [] for name in workers}
    for worker in workers.values():  # warm-up: sessions, lazy loads, caches
        worker.run(image)
    alphas, rss = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, worker in workers.items():
                save = Path(tmp) / f"{len(alphas)}.png" if r == repeats - 1 else None
                answer = worker.run(image, save)
                times = answer["times"]
                times["total"] = sum(times.values())
                samples[name].append(times)
                rss[name] = answer["rss_mib"]
                if save:
                    alphas[name] = Image.open(save).copy()
    medians = {name: {k: statistics.median(s[k] for s in rows) for k in rows[0]} for name, rows in samples.items()}
    for name in medians:
        medians[name]["rss_mib"] = rss[name]
    return medians, alphas


def agreement(alpha, reference) -> tuple[int, float, float]:
    a, b = np.asarray(alpha).astype(np.int16), np.asarray(reference).astype(np.int16)
    d = np.abs(a - b)
    pa, pb = a >= 128, b >= 128
    union = (pa | pb).sum()
    return int(d.max()), float(d.mean()), float((pa & pb).sum() / union) if union else 1.0


def stage_table(title: str, medians: dict) -> dict:
    """Per-stage medians (ms) of each configuration, and the share outside the network."""
    from harness import table

    rows = []
    for name, m in medians.items():
        outside = m["total"] - m["network"]
        rows.append(
            [name, *(round(m[s] * 1000) for s in STAGES), round(m["total"] * 1000), round(outside / m["network"], 2)]
        )
    return table(title, ["configuration", *(f"{s} ms" for s in STAGES), "total ms", "outside / network"], rows)


def workers_for(names: list[str], files: dict) -> dict[str, Worker]:
    return {name: Worker(name, files) for name in names}


def close_all(workers: dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="a speed benchmark's worker process")
    parser.add_argument("--child")
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        serve(job["name"], {k: Path(v) for k, v in job["files"].items()})
    elif args.child:
        job = json.loads(args.child)
        files = {k: Path(v) for k, v in job["files"].items()}
        print(json.dumps(child(job["name"], files, Path(job["image"]), job["count"])))


if __name__ == "__main__":
    main()
