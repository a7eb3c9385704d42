"""Video: quality, flicker, speed, memory and file sizes of rmbg.remove_video with U2-Net-p.

    python benchmarks/video.py [--speed-seconds 10] [--skip-speed]

1. Quality and flicker, per DAVIS 2016 clip (data/davis2016-clips: blackswan,
   dog, libby, 854x480, 24 fps): U2-Net-p runs once per frame of the clip;
   the same mattes are scored as they come (frame by frame) and through the
   temporal filter (rmbg.video.smooth, default parameters, and without its
   optical flow): J, F and dtSSD (rmbg.eval.temporal). The "flicker-only
   bound" is the dtSSD left if a filter removed every change of the matte
   where the ground truth does not change and kept the rest: no filter that
   only removes flicker gets below it.
2. Sizes: the smoothed cut-out of each clip as WebM (VP9 alpha), MP4 (on
   white) and MOV (ProRes 4444), against the input clip's size.
3. Speed (2-core CPU class recorded): a 10 s 854x480 24 fps clip (the three
   clips' frames, looped) end to end (decode, model, smoothing, WebM encode)
   against the model's own time on the same frames (provider.matte in a
   loop on decoded frames), and the peak Python memory (tracemalloc) and
   process RSS of the end-to-end run.

Needs the U2-Net-p weights (RMBG_U2NETP_PATH, or fetched once like the tests do).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import rmbg
from harness import table, write_results
from rmbg.eval.temporal import SequenceScorer
from rmbg.video.decode import frames, probe
from rmbg.video.encode import VideoWriter
from rmbg.video.limits import VideoLimits
from rmbg.video.pipeline import VideoFrame
from rmbg.video.smooth import SmoothParams, TemporalSmoother

DATA = Path(__file__).resolve().parents[1] / "data" / "davis2016-clips"
SEQUENCES = ("blackswan", "dog", "libby")
LIMITS = VideoLimits()


def masks(seq: str) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("L")) for p in sorted((DATA / seq / "masks").glob("*.png"))]


def flicker_bound(raw: list[np.ndarray], gts: list[np.ndarray]) -> float:
    """dtSSD with the matte's change zeroed wherever the truth does not change (module doc)."""
    values = []
    for t in range(1, len(raw)):
        da = (raw[t].astype(np.float64) - raw[t - 1]) / 255
        dg = (gts[t].astype(np.float64) - gts[t - 1]) / 255
        kept = np.where(dg != 0, da - dg, 0.0)
        values.append(100 * np.sqrt(np.sum(kept * kept) / kept.size))
    return float(np.mean(values))


def quality(provider, folder: Path) -> tuple[list[list], list[list]]:
    rows, sizes = [], []
    variants = {"smoothed": SmoothParams(), "smoothed, no flow": SmoothParams(flow=False)}
    for seq in SEQUENCES:
        clip = DATA / seq / "clip.mp4"
        result = rmbg.remove_video(clip, provider, smooth=False)
        gts, raw = masks(seq), list(result.mattes())
        scorers = {"frame by frame": SequenceScorer(), **{k: SequenceScorer() for k in variants}}
        smoothers = {k: TemporalSmoother(p) for k, p in variants.items()}
        writers = [VideoWriter(folder / f"{seq}.{ext}", result.info) for ext in ("webm", "mp4", "mov")]
        for frame, alpha, gt in zip(frames(result.info, LIMITS), raw, gts, strict=True):
            scorers["frame by frame"].add(alpha, gt)
            for name, smoother in smoothers.items():
                out = smoother(frame.rgb, alpha)
                scorers[name].add(out, gt)
                if name == "smoothed":
                    for w in writers:
                        w.write(VideoFrame(frame.index, frame.pts, frame.time, frame.rgb, out))
        base = scorers["frame by frame"].scores()
        bound = flicker_bound(raw, gts)
        for name, scorer in scorers.items():
            s = scorer.scores()
            cut = 1 - s.dtssd / base.dtssd
            rows.append([seq, name, s.frames, round(s.j, 4), round(s.f, 4), round(s.dtssd, 3), f"{cut:+.1%}"])
        rows.append([seq, "flicker-only bound", base.frames, "", "", round(bound, 3), f"{1 - bound / base.dtssd:+.1%}"])
        size_in = clip.stat().st_size
        for w in writers:
            out = w.close()
            sizes.append([seq, w.fmt, size_in, out.stat().st_size, round(out.stat().st_size / size_in, 2)])
        result.close()
        print(seq, "done", flush=True)
    return rows, sizes


def speed_clip(folder: Path, seconds: float) -> Path:
    import av

    all_frames = [f.rgb for seq in SEQUENCES for f in frames(probe(DATA / seq / "clip.mp4", LIMITS), LIMITS)]
    n = int(seconds * 24)
    path = folder / "speed.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"crf": "23"})
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(all_frames[i % len(all_frames)], format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def speed(provider, folder: Path, seconds: float) -> list[list]:
    from PIL import Image

    clip = speed_clip(folder, seconds)
    info = probe(clip, LIMITS)
    images = [Image.fromarray(f.rgb) for f in frames(info, LIMITS)]
    provider.matte(images[0])  # warm-up: the session is built before either timing
    start = time.perf_counter()
    for image in images:
        provider.matte(image)
    model = time.perf_counter() - start
    del images
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start = time.perf_counter()
    result = rmbg.remove_video(clip, provider, output=folder / "speed.webm")
    total = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = result.frames
    result.close()
    return [
        [
            f"{seconds:g} s, 854x480, 24 fps ({n} frames)",
            round(model, 1),
            round(total, 1),
            round(total / model, 3),
            round(n / total, 2),
            round(peak, 1),
            round(max(rss, rss_before), 0),
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-seconds", type=float, default=10.0)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    provider = rmbg.get_provider("u2netp", device="cpu")
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        rows, sizes = quality(provider, Path(tmp))
        tables.append(
            table(
                "U2-Net-p on the DAVIS 2016 clips: frame by frame and smoothed",
                ["sequence", "mattes", "frames", "J", "F", "dtSSD", "dtSSD change"],
                rows,
                "J and F: means over frames (fractions); dtSSD: RVM's normalisation (x100), mean over frame "
                "pairs; lower is steadier. One model pass per clip: every row scores the same mattes. "
                f"Smoothing parameters: {SmoothParams()}.",
            )
        )
        tables.append(
            table(
                "Output size against the input clip (H.264 CRF 23), smoothed cut-outs",
                ["sequence", "format", "input bytes", "output bytes", "ratio"],
                sizes,
                "webm: VP9 with alpha; mp4: H.264 on white; mov: ProRes 4444 with alpha (large by design).",
            )
        )
        if not args.skip_speed:
            tables.append(
                table(
                    "End to end (decode, model, smoothing, WebM encode) against the model alone",
                    ["clip", "model s", "end to end s", "ratio", "fps", "peak Python MiB", "peak RSS MiB"],
                    speed(provider, Path(tmp), args.speed_seconds),
                    "model s: provider.matte on the same decoded frames in a loop; ratio: end to end / model. "
                    "Peak Python memory: tracemalloc during the end-to-end run; RSS: the process's peak.",
                )
            )
    path = write_results("video", None, tables, packages=("av", "opencv-python-headless"))
    print(path.read_text())


if __name__ == "__main__":
    main()
