"""Throughput of a folder through `rmbg remove`: the local engine against Ray
Data with 1 and 2 workers, on this machine.

    python benchmarks/ray_batch.py --images 24 --repeats 3

U2-Net-p (ONNX Runtime) on N generated 1024x768 photos; each run writes a
fresh output folder; medians over --repeats. Ray is started once (its start
is not counted: a cluster is up before a job), so the figures are the
steady-state cost of scheduling, serialising and writing through Ray.
Writes benchmarks/results/ray_batch.json.
ONNX Runtime threads per process: all cores for the local engine, cores /
workers for Ray (nothing is set here: each worker sizes
itself from the cores Ray gives it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from harness import markdown, table, write_results


def make_photos(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
        arr[200:600, 300:700] = (230, 200, 40)
        Image.fromarray(arr).save(folder / f"p{i:03d}.jpg", quality=90)


def one_run(src: Path, engine: str, workers: int) -> float:
    from rmbg.cli.many import remove_many

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        outcomes = remove_many([str(src)], out, "u2netp", engine=engine, workers=workers)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes if o.error]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import ray

    from rmbg import ray_cluster
    from rmbg.providers.local.u2netp_file import ENV_PATH, ensure_u2netp

    os.environ[ENV_PATH] = str(ensure_u2netp())  # workers read the same file
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        make_photos(src, args.images)
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env=ray_cluster.runtime_env(ray, None))
        one_run(src, "ray", 1)  # warm-up: actor start, model load, file caches
        one_run(src, "local", 1)
        configs = (("local", 1), ("ray", 1), ("ray", 2))
        times: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
        for r in range(args.repeats):  # rotating order, so drift on a shared machine falls on every engine
            for config in configs[r % 3 :] + configs[: r % 3]:
                times[config].append(one_run(src, *config))
        ray.shutdown()

    base = statistics.median(times[configs[0]])
    rows = []
    for (engine, workers), seconds in times.items():
        med = statistics.median(seconds)
        rows.append(
            [
                engine,
                workers if engine == "ray" else "–",
                f"{med:.2f} ({min(seconds):.2f}–{max(seconds):.2f})",
                round(args.images / med, 1),
                round(med / base, 2),
            ]
        )
    tables = [
        table(
            f"CLI engines: {args.images} photos of 1024x768 with U2-Net-p",
            ["engine", "workers", "s per run (median, min–max)", "images/s", "× local time"],
            rows,
            notes=f"Medians of {args.repeats} runs, engines taking turns; Ray started once before timing "
            "(its start is not counted).",
        )
    ]
    print(markdown(tables))
    print(f"\nWrote {write_results('ray_batch', None, tables)}")


if __name__ == "__main__":
    main()
