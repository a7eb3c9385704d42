"""A clip through `rmbg video`: the local engine against `--engine ray` (2 workers), on this machine.

    python benchmarks/ray_video.py [--seconds 10] [--repeats 3] [--chunk-seconds 2]

U2-Net-p on a 10 s 854x480 24 fps clip (DAVIS frames, as benchmarks/video.py builds it),
smoothing on, written as WebM; the two engines take turns, the 1-minute load average is
recorded before and after each run, and the medians are compared. Ray itself is started once
before timing (a cluster is up before a job), but each Ray run starts its two workers and
loads the model in each: that is part of what a clip costs on Ray.

Also measured, to say where the smoothing runs (rmbg.video.chunks): the driver's own CPU time
a frame in the Ray run (decoding, joining, encoding), the filter's CPU time a frame (what the
driver would add if it smoothed the joined stream itself) and the model's, and the share of
model runs the chunks' overlap adds. Writes benchmarks/results/ray_video.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import rmbg
from harness import markdown, table, write_results
from rmbg.video.chunks import chunk_length, plan_chunks
from rmbg.video.decode import frames, probe
from rmbg.video.limits import VideoLimits
from rmbg.video.packets import frame_pts
from rmbg.video.ray_video import RayVideo
from rmbg.video.smooth import SmoothParams, TemporalSmoother
from video import speed_clip

LIMITS = VideoLimits()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-seconds", type=float, default=2.0)
    args = parser.parse_args()

    import ray

    from rmbg import ray_cluster
    from rmbg.providers.local.u2netp_file import ENV_PATH, ensure_u2netp

    os.environ[ENV_PATH] = str(ensure_u2netp())  # the workers read the same file
    engine = RayVideo(workers=2, chunk_seconds=args.chunk_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = speed_clip(folder, args.seconds)
        info = probe(clip, LIMITS)
        n = len(frame_pts(info, LIMITS))
        chunks = plan_chunks(frame_pts(info, LIMITS), chunk_length(info.fps, args.chunk_seconds), SmoothParams())
        overlap = sum(len(c.pts) for c in chunks) / n - 1
        # a small object store: the clip and the chunks in flight are a few tens of MB
        ray.init(
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=300 * 2**20,
            runtime_env=ray_cluster.runtime_env(ray, None),  # as the engine starts a local Ray
        )

        runs: list[list] = []
        wall: dict[str, list[float]] = {"local": [], "ray": []}
        cpu: dict[str, list[float]] = {"local": [], "ray": []}
        model: list[float] = []
        mattes: list[np.ndarray] = []
        for r in range(args.repeats):
            order = ["local", "ray"] if r % 2 == 0 else ["ray", "local"]
            for name in order:
                load = _load()
                start, start_cpu = time.perf_counter(), time.process_time()
                with rmbg.remove_video(
                    clip, "u2netp", output=folder / f"{name}.webm", engine=engine if name == "ray" else "local"
                ) as result:
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
                    if name == "local":
                        model.append(result.seconds.model)
                        mattes = list(result.mattes())
                    assert result.frames == n
                runs.append([r + 1, name, round(wall[name][-1], 1), round(cpu[name][-1], 1), load, _load()])
                print(runs[-1], flush=True)
        ray.shutdown()
        rgbs = [f.rgb for f in frames(info, LIMITS)]
        start = time.process_time()
        TemporalSmoother().run(rgbs, mattes)
        smoothing = time.process_time() - start

    local, on_ray = statistics.median(wall["local"]), statistics.median(wall["ray"])
    driver = statistics.median(cpu["ray"])
    model_frame = statistics.median(model) / n
    summary = [
        [
            f"{args.seconds:g} s, 854x480, 24 fps ({n} frames)",
            round(local, 1),
            round(on_ray, 1),
            round(on_ray / local, 3),
            round(1000 * model_frame),
            round(1000 * driver / n),
            round(1000 * smoothing / n),
            f"{len(chunks)} x {chunk_length(info.fps, args.chunk_seconds)}",
            f"{100 * overlap:.1f} %",
        ]
    ]
    tables = [
        table(
            "Local engine against --engine ray (2 workers), U2-Net-p, smoothing on, WebM out",
            [
                "clip",
                "local s (median)",
                "ray s (median)",
                "ray / local",
                "model ms a frame (local run)",
                "ray driver CPU ms a frame",
                "smoothing CPU ms a frame",
                "chunks x frames",
                "model runs added by the overlap",
            ],
            summary,
            f"Medians of {args.repeats} runs each, the engines taking turns. The model's time is the local run's "
            "(rmbg's seconds.model); the driver's CPU time is the Ray run's own process (decoding, joining, "
            "encoding; the workers' time is not in it); the smoothing's is TemporalSmoother over the local mattes "
            "in this process: what a driver smoothing the joined stream would add a frame.",
        ),
        table(
            "The runs, in the order they ran",
            ["repeat", "engine", "seconds", "CPU seconds (this process)", "load before", "load after"],
            runs,
            "load: the 1-minute load average (os.getloadavg) before and after each run; on a 2-core machine, a "
            "load over 2 means other processes were taking CPU time from the runs.",
        ),
    ]
    print(markdown(tables))
    print(f"\nWrote {write_results('ray_video', None, tables)}")


if __name__ == "__main__":
    main()
