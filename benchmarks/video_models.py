"""Frames per second of each free model on a clip: end to end, and the model alone.

    python benchmarks/video_models.py [--models u2netp,isnet-general,birefnet-lite,birefnet] [--rounds 2]

For each free local model, as `rmbg video` builds it on this machine (its
default device and precision): a clip of the DAVIS 2016 clips' frames
(854x480, 24 fps; a slow model gets a shorter clip, which does not change
its frames per second), run end to end (rmbg.remove_video to a WebM:
decode, model, temporal smoothing, encode) and through the model alone
(provider.matte on the same decoded frames in a loop), in alternating order
each round, medians over rounds. Wall clock and the process's CPU time.

Weights: U2-Net-p's real file (RMBG_U2NETP_PATH, as the tests use it); the
others use their real files when they are in the Hugging Face cache, else
deterministic weights of the same network (speed does not depend on the
values; benchmarks/speed_setup.py makes them once). RMBG-1.4 is IS-Net's
network at the same size, and RMBG-2.0 BiRefNet's (Swin-L), so their
frames per second are IS-Net general's and BiRefNet's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from cpu_configs import files_for

import rmbg
import speed_setup
from harness import table, write_results
from rmbg.threads import calm_openmp
from rmbg.video.decode import frames, probe
from video import LIMITS, speed_clip

SECONDS = {"u2netp": 2.0, "isnet-general": 0.5, "birefnet-lite": 0.5, "birefnet": 0.25}  # of clip per model


def provider_for(model: str):
    """The provider as `rmbg video -p MODEL` builds it, with stand-in weights where the real ones are not cached."""
    if model == "u2netp":
        return rmbg.get_provider("u2netp")
    if model == "isnet-general":
        files = files_for("isnet-general")
        return rmbg.get_provider("isnet-general", weights=files["onnx"])
    name = "birefnet-lite" if model == "birefnet-lite" else "rmbg-2.0"  # BiRefNet general: RMBG-2.0's network
    provider = rmbg.get_provider(model)
    if provider.status().state == "ready":
        return provider
    return rmbg.get_provider(model, weights=str(speed_setup.deterministic_weights(name)))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def measure(model: str, folder: Path, rounds: int) -> tuple[list, list[list]]:
    from PIL import Image

    clip = speed_clip(folder, SECONDS[model])
    info = probe(clip, LIMITS)
    images = [Image.fromarray(f.rgb) for f in frames(info, LIMITS)]
    provider = provider_for(model)
    meta = provider.matte(images[0]).meta  # the model loaded and run once before any timing
    out = folder / f"{model}.webm"

    def model_alone() -> None:
        for image in images:
            provider.matte(image)

    def end_to_end() -> None:
        rmbg.remove_video(clip, provider, output=out).close()

    runs: dict[str, list[tuple[float, float]]] = {"model": [], "end to end": []}
    log = []
    for r in range(rounds):
        order = ("model", "end to end") if r % 2 == 0 else ("end to end", "model")
        for name in order:
            load = round(os.getloadavg()[0], 2)
            wall, cpu = timed(model_alone if name == "model" else end_to_end)
            runs[name].append((wall, cpu))
            log.append([model, r + 1, name, round(wall, 2), round(cpu, 2), load])
            print(log[-1], flush=True)
    n = len(images)
    m = statistics.median(w for w, _ in runs["model"])
    e = statistics.median(w for w, _ in runs["end to end"])
    mc = statistics.median(c for _, c in runs["model"])
    ec = statistics.median(c for _, c in runs["end to end"])
    how = ", ".join(meta.get(k, "") for k in ("device", "backend", "precision") if meta.get(k))
    row = [model, how, n, round(n / m, 2), round(n / e, 2), round(e / m, 3), round(ec / mc, 3)]
    return row, log


def main() -> None:
    calm_openmp()  # as `rmbg video` does, before anything loads torch (benchmarks/speed_setup does)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SECONDS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--results", default="video_models", help="benchmarks/results/NAME.json")
    args = parser.parse_args()
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            row, log = measure(model, Path(tmp), args.rounds)
            rows.append(row)
            runs.extend(log)
    tables = [
        table(
            "Frames per second of each free model on an 854x480 clip (2 cores)",
            ["model", "device, backend, precision", "frames", "model alone fps", "end to end fps"]
            + ["time ratio", "CPU ratio"],
            rows,
            f"Medians of {args.rounds} rounds, model alone and end to end in alternating order; end to end: "
            "rmbg.remove_video to a WebM (decode, model, temporal smoothing, VP9 encode with alpha); ratios: "
            "end to end / model alone, by the wall clock and by the process's CPU time. RMBG-1.4 runs IS-Net's "
            "network and RMBG-2.0 BiRefNet's (Swin-L) at the same sizes: their speed is those rows'.",
        ),
        table(
            "The runs, in the order they ran",
            ["model", "round", "run", "seconds", "CPU seconds", "load before"],
            runs,
            "load: the 1-minute load average before the run; over 2 on 2 cores, other processes took time.",
        ),
    ]
    path = write_results(args.results, None, tables, packages=("av", "opencv-python-headless"))
    print(path.read_text())


if __name__ == "__main__":
    main()
