"""Where a video frame's time goes: each stage of rmbg.remove_video alone, per frame, at 854x480.

    python benchmarks/video_stages.py [--frames 48] [--repeats 5] [--results video_stages]

The first `--frames` frames of benchmarks/video.py's speed clip (DAVIS 2016's three clips,
854x480, 24 fps) go through each stage on its own, `--repeats` times; the table gives the
median over repeats of the wall and CPU time per frame (CPU: this process's user + system,
so a stage's helper threads count). Stages, in the pipeline's order:

- decode: PyAV's decoder to upright, contiguous RGB frames (rmbg.video.decode.frames);
- frame to image: PIL's fromarray of a decoded frame, and of the same frame as a view with
  padded rows (what PyAV hands out, and what rmbg passed before it copied frames once in the
  decoder: PIL then copies the view through bytes);
- model: U2-Net-p (provider.matte), for scale;
- flow: one DIS flow (OpenCV, the ULTRAFAST preset rmbg.video.smooth uses) between two
  consecutive grey frames at full size, and at half size scaled back (the alternative that
  was measured and not taken), with the mean distance between the two flows;
- smoothing: the whole temporal filter per frame (TemporalSmoother.push: two flows, the
  moves, the weighted mean), on the model's mattes;
- cut-out: the RGBA of a transparent output, rmbg's (OpenCV: a masked copy and a merge)
  and numpy's where and dstack (the same array: checked);
- encode: VP9 with alpha into WebM (VideoWriter), cut-out included.

Needs the U2-Net-p weights (RMBG_U2NETP_PATH, or fetched once like the tests do) and OpenCV.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import rmbg
from harness import table, write_results
from rmbg.video.decode import frames, probe
from rmbg.video.encode import VideoWriter, cutout_rgba, cutout_rgba_numpy
from rmbg.video.limits import VideoLimits
from rmbg.video.pipeline import VideoFrame
from rmbg.video.smooth import SmoothParams, TemporalSmoother, flow_between, grey_of, grid, optical_flow
from video import speed_clip

LIMITS = VideoLimits()


def clocked(run: Callable[[], Any], count: int, repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds per item of `run()` (which handles `count` items), over repeats."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append((time.perf_counter() - wall) * 1000 / count)
        cpus.append((time.process_time() - cpu) * 1000 / count)
    return round(statistics.median(walls), 2), round(statistics.median(cpus), 2)


def half_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS at half size, the flow scaled back to full size (as positions, like flow_between)."""
    h, w = a.shape
    small = [cv2.resize(x, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for x in (a, b)]
    flow = cv2.resize(optical_flow().calc(small[0], small[1], None), (w, h), interpolation=cv2.INTER_LINEAR) * 2
    return np.asarray(flow + grid(h, w), dtype=np.float32)


def padded_view(rgb: np.ndarray) -> np.ndarray:
    """The frame as a view whose rows are padded to 64 bytes, as PyAV's frame planes are."""
    h, w, _ = rgb.shape
    stride = -(-w * 3 // 64) * 64
    buffer = np.zeros((h, stride), np.uint8)
    buffer[:, : w * 3] = rgb.reshape(h, w * 3)
    return buffer[:, : w * 3].reshape(h, w, 3)


def stages(n: int, repeats: int, folder: Path) -> list[list[Any]]:
    clip = speed_clip(folder, 10)
    info = probe(clip, LIMITS)

    def decode() -> list[Any]:
        out = []
        for frame in frames(info, LIMITS):
            out.append(frame)
            if len(out) == n:
                break
        return out

    decoded = decode()
    rgbs = [f.rgb for f in decoded]
    views = [padded_view(rgb) for rgb in rgbs]
    assert not views[0].flags.c_contiguous and np.array_equal(views[0], rgbs[0])
    provider = rmbg.get_provider("u2netp", device="cpu")
    provider.matte(Image.fromarray(rgbs[0]))  # the session is built before any timing
    mattes = [np.asarray(provider.matte(Image.fromarray(rgb)).alpha) for rgb in rgbs]
    video_frames = [VideoFrame(f.index, f.pts, f.time, f.rgb, a) for f, a in zip(decoded, mattes, strict=True)]
    greys = [grey_of(rgb) for rgb in rgbs]
    pairs = list(zip(greys, greys[1:], strict=False))
    assert all(np.array_equal(cutout_rgba(f), cutout_rgba_numpy(f)) for f in video_frames[:4])
    apart = statistics.mean(
        float(np.mean(np.linalg.norm(flow_between(a, b, True) - half_flow(a, b), axis=2))) for a, b in pairs[:8]
    )

    def smoothing() -> None:
        smoother = TemporalSmoother(SmoothParams())
        for f, alpha in zip(decoded, mattes, strict=True):
            smoother.push(f.rgb, alpha, f)
        smoother.flush()

    def encode() -> None:
        writer = VideoWriter(folder / "stages.webm", info, audio=False)
        for f in video_frames:
            writer.write(f)
        writer.close()

    runs: list[tuple[str, Callable[[], Any], int, str]] = [
        ("decode (PyAV, upright contiguous RGB)", decode, n, ""),
        ("frame to PIL image, contiguous", lambda: [Image.fromarray(x) for x in rgbs], n, ""),
        ("frame to PIL image, padded rows", lambda: [Image.fromarray(x) for x in views], n, "PyAV's own layout"),
        ("model: U2-Net-p", lambda: [provider.matte(Image.fromarray(x)) for x in rgbs[:8]], 8, "first 8 frames"),
        ("DIS flow, full size", lambda: [flow_between(a, b, True) for a, b in pairs], len(pairs), "per pair"),
        ("DIS flow, half size scaled back", lambda: [half_flow(a, b) for a, b in pairs], len(pairs),
         f"per pair; {apart:.2f} px from the full-size flow"),
        ("smoothing (whole filter)", smoothing, n, "two flows a frame"),
        ("cut-out RGBA, OpenCV (rmbg)", lambda: [cutout_rgba(f) for f in video_frames], n, "same array"),
        ("cut-out RGBA, numpy where + dstack", lambda: [cutout_rgba_numpy(f) for f in video_frames], n, ""),
        ("encode WebM (VP9 + alpha)", encode, n, "cut-out included"),
    ]  # fmt: skip
    rows = []
    for name, run, count, note in runs:
        wall, cpu = clocked(run, count, repeats)
        rows.append([name, wall, cpu, note])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", default="video_stages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = stages(args.frames, args.repeats, Path(tmp))
    notes = (
        f"The first {args.frames} frames of the 10 s 854x480 speed clip; each stage alone, {args.repeats} times; "
        "medians of the per-frame wall and CPU milliseconds (CPU: the process's user + system time, helper "
        "threads included). The model's row is 8 frames."
    )
    columns = ["stage", "wall ms / frame", "CPU ms / frame", "note"]
    tables = [table("Each stage of a video frame alone, 854x480", columns, rows, notes)]
    path = write_results(args.results, None, tables, packages=("av", "opencv-python-headless"))
    print(path.read_text())


if __name__ == "__main__":
    main()
