"""Animated lossless WebP: the encoder's effort (libwebp's method, FFmpeg's compression_level) against
CPU time and file size, on the cut-outs rmbg writes.

    python benchmarks/webp_effort.py [--repeats 3]

The repository's three DAVIS clips (data/davis2016-clips: blackswan, dog, libby; 854x480, their first
50 frames), each frame cut out by its ground-truth mask as rmbg writes a cut-out (rmbg.image.arrays.rgba:
colour zeroed under alpha 0), encoded as one animated WebP (libwebp_anim, lossless, BGRA, as
rmbg.video.encode writes it) at each level in alternating order, `--repeats` times. Per clip and level:
the median CPU seconds of the encode, its ratio to level 4 (FFmpeg's default), the file's size and its
change against level 4, and whether the file decodes back to the pixels that went in ("visible exact":
the alpha, and the colour wherever alpha > 0).
Writes benchmarks/results/webp_effort.json.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from harness import table, write_results
from rmbg.image.arrays import rgba

DATA = Path(__file__).resolve().parents[1] / "data" / "davis2016-clips"
LEVELS = (4, 2, 1, 0, 6)
FRAMES = 50


def cutouts(clip: str) -> list[np.ndarray]:
    """The clip's first FRAMES frames cut out by their masks, as BGRA."""
    masks = sorted((DATA / clip / "masks").glob("*.png"))[:FRAMES]
    out = []
    with av.open(str(DATA / clip / "clip.mp4")) as container:
        for frame, mask in zip(container.decode(video=0), masks):
            alpha = np.asarray(Image.open(mask).convert("L"))
            out.append(np.ascontiguousarray(rgba(frame.to_ndarray(format="rgb24"), alpha)[..., [2, 1, 0, 3]]))
    return out


def encode(frames: list[np.ndarray], level: int) -> tuple[float, bytes]:
    h, w = frames[0].shape[:2]
    buffer = io.BytesIO()
    started = time.process_time()
    with av.open(buffer, "w", format="webp") as out:
        options = {"lossless": "1", "compression_level": str(level)}
        stream = out.add_stream("libwebp_anim", rate=24, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "bgra"
        for pixels in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="bgra")))
        out.mux(stream.encode())
    return time.process_time() - started, buffer.getvalue()


def exact(data: bytes, frames: list[np.ndarray]) -> bool:
    """Every frame back with the same alpha, and the same colour wherever it shows (alpha > 0: libwebp may
    store any colour under alpha 0, and from level 1 up it does)."""
    with av.open(io.BytesIO(data)) as container:
        back = [f.to_ndarray(format="bgra") for f in container.decode(video=0)]
    return len(back) == len(frames) and all(
        np.array_equal(a[..., 3], b[..., 3]) and np.array_equal(a[b[..., 3] > 0], b[b[..., 3] > 0])
        for a, b in zip(back, frames)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for clip in ("blackswan", "dog", "libby"):
        frames = cutouts(clip)
        seconds: dict[int, list[float]] = {level: [] for level in LEVELS}
        files: dict[int, bytes] = {}
        for repeat in range(args.repeats):
            for level in LEVELS if repeat % 2 == 0 else LEVELS[::-1]:
                spent, files[level] = encode(frames, level)
                seconds[level].append(spent)
        base_s, base_b = statistics.median(seconds[4]), len(files[4])
        for level in LEVELS:
            s, size = statistics.median(seconds[level]), len(files[level])
            rows.append(
                [clip, level, len(frames), round(s, 2), round(s / base_s, 2), round(size / 1024),
                 f"{size / base_b - 1:+.1%}", "yes" if exact(files[level], frames) else "no"]
            )  # fmt: skip
            print(rows[-1], flush=True)
    write_results(
        "webp_effort",
        None,
        [
            table(
                "Animated lossless WebP of the DAVIS cut-outs (854x480), by libwebp's effort",
                ["clip", "level", "frames", "CPU s (median)", "x level 4", "KiB", "size vs level 4", "visible exact"],
                rows,
                notes="level: FFmpeg's compression_level (libwebp's method); 4 is FFmpeg's default.",
            )
        ],
    )


if __name__ == "__main__":
    main()
