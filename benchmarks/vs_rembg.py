"""rmbg against rembg on the same U²-Net-p weights, end to end: input file -> bytes of the output file.

    pip install --no-deps rembg==2.0.86 pymatting numba llvmlite   # benchmark only (requirements-dev.txt)
    python benchmarks/vs_rembg.py --repeats 5
    python benchmarks/vs_rembg.py --repeats 5 --results vs_rembg_zen4   # another CPU class, its own file

Both read the same u2netp.onnx (rmbg's RMBG_U2NETP_PATH, else its cache;
rembg is pointed at its folder through U2NET_HOME, so it never downloads).
For a DAVIS 854x480 frame and a 12 MP upscale of it (a JPEG on disk), each
output is timed from the file's path to the encoded bytes:

- RGBA PNG: rembg.remove(bytes) (its PNG) vs remove_background(path).encode("png");
- WebP: rembg's cut-out saved as lossless WebP by Pillow (its defaults otherwise)
  vs .encode("webp") (always lossless with alpha);
- mask: rembg.remove(bytes, only_mask=True) vs mask_only=True .encode("png");
- colour JPEG: rembg's bgcolor cut-out as RGB JPEG at quality 95 vs
  background=colour .encode("jpeg") (quality 95 by default).

rmbg runs with cache=None (a cached matte would skip the model). Each library
runs in a worker process of its own (rmbg one per engine), as a user runs
either: in one process, one library's thread pools (ONNX Runtime's spinning
workers in rembg's session, OpenVINO's) ran on through the other's calls.
The workers take turns in alternating order (harness.alternate) and each
times its own call; times are medians of --repeats runs, and the machine's
load average is recorded, since only the ratios mean anything on a shared CPU.
The mattes must agree within 1 grey level, else the run fails. A last table
times each stage of rmbg's RGBA PNG path alone, the two resizes also as one
Pillow call (rmbg.image.bands cuts them into row bands on every core).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from speed_workers import Worker
from vs_rembg_workers import OUTPUTS

from harness import alternate, markdown, table, timed, write_results

ROOT = Path(__file__).resolve().parents[1]
FRAME = ROOT / "data" / "davis2016-sample" / "images" / "blackswan_00000.jpg"
WORKERS = str(Path(__file__).with_name("vs_rembg_workers.py"))  # each library in a process of its own


def weights() -> Path:
    from rmbg.providers.local.u2netp_file import ensure_u2netp

    return ensure_u2netp()


def inputs(frame: Path, folder: Path) -> list[tuple[str, Path]]:
    """The frame as it is and a 12 MP (4000x3000) Lanczos upscale, both JPEG files."""
    big = folder / "upscaled-12mp.jpg"
    with Image.open(frame) as im:
        im.convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS).save(big, "JPEG", quality=95)
    return [(f"{frame.name} 854x480", frame), ("12 MP upscale 4000x3000", big)]


def matte_gap(ours: bytes, theirs: bytes) -> int:
    """Largest difference (grey levels) between two mask PNGs."""
    a = np.asarray(Image.open(io.BytesIO(ours)).convert("L"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(theirs)).convert("L"), dtype=np.int16)
    return int(np.abs(a - b).max())


COLUMNS = [
    "image",
    "output",
    "rmbg s",
    "rembg s",
    "time ratio",
    "rmbg KB",
    "rembg KB",
    "size ratio",
    "size ratio, same pixels",
    "matte gap",
]
NOTES = (
    "Medians of {repeats} runs each, rmbg and rembg each in a worker process of its own, taking turns "
    "in alternating order (warm-up excluded; each worker times its own call); "
    "time ratio below 1: rmbg is faster. Mattes: largest difference in grey levels. "
    "Sizes: each library's own file; 'same pixels' encodes rembg's output image with rmbg's "
    "encoder over rembg's file of it (rmbg's cut-outs differ at soft edges: estimated foreground "
    "colour instead of rembg's premultiplied one). rembg's colour JPEG is saved at quality 95, "
    "rmbg's default; both WebPs are lossless."
)


def run_side(side: Worker, path: Path, output: str, size: dict[Worker, int]) -> float:
    """One output by one library's worker: the seconds its call took (its size kept in `size`)."""
    answer = side.run(path, output=output)
    size[side] = answer["bytes"]
    return answer["seconds"]


def compare(ours: Worker, theirs: Worker, images: list[tuple[str, Path]], repeats: int) -> list[list]:
    """One row per image and output: medians, ratios, sizes and the matte gap; each library
    in its worker process, the two taking turns."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-rembg-masks-") as tmp:
        for label, path in images:
            masks = [Path(tmp) / "ours.png", Path(tmp) / "theirs.png"]
            for side, mask in zip((ours, theirs), masks):
                side.run(path, mask, output="mask PNG")
            gap = matte_gap(masks[0].read_bytes(), masks[1].read_bytes())
            if gap > 1:
                sys.exit(f"{label}: the mattes differ by {gap} grey levels; the comparison is void")
            for output in OUTPUTS:
                size: dict[Worker, int] = {}
                r, a, b = alternate(*(partial(run_side, side, path, output, size) for side in (ours, theirs)), repeats)
                rows.append(
                    [
                        label,
                        output,
                        round(a.median, 3),
                        round(b.median, 3),
                        round(r, 2),
                        round(size[ours] / 1024, 1),
                        round(size[theirs] / 1024, 1),
                        round(size[ours] / size[theirs], 2),
                        round(theirs.run(path, same_pixels=output)["ratio"], 3),
                        gap,
                    ]
                )
                print(rows[-1], flush=True)
    return rows


def forward_share(theirs: Worker, images: list[tuple[str, Path]], rows: list[list], repeats: int) -> dict:
    """rembg's forward pass alone against its whole mask PNG (`rows`: a comparison table's): an
    output through the same file in the same engine cannot take less than that share of rembg's time."""
    mask = {row[0]: row[3] for row in rows if row[1] == "mask PNG"}
    shares = []
    for label, path in images:
        forward = theirs.run(path, forward=str(3 * repeats))["seconds"]
        shares.append([label, round(forward * 1000, 1), round(mask[label] * 1000, 1), round(forward / mask[label], 2)])
    return table(
        "rembg's own forward pass against its mask PNG",
        ["image", "forward pass ms", "mask PNG ms", "share"],
        shares,
        f"rembg's ONNX Runtime session on its own network input, median of {3 * repeats} runs; the mask PNG "
        "from the first table above. The share is the least time ratio an output can reach while its forward "
        "pass is the same file in the same engine as rembg's.",
    )


def stage_rows(label: str, path: Path, provider: Any, repeats: int) -> list[list]:
    """[image, stage, median ms] for each step of rmbg's RGBA PNG path on one image."""
    import rmbg
    from rmbg.image import bands
    from rmbg.image.compose import cutout, encode
    from rmbg.image.foreground import estimate_foreground

    image = rmbg.load_image(path).rgb
    x = provider.preprocess(image)
    prob = provider.forward(x)
    alpha = provider.postprocess(prob, image.size)
    colours = estimate_foreground(image, alpha)
    cut = cutout(colours, alpha)
    steps = {
        "decode (load_image)": lambda: rmbg.load_image(path),
        "network input": lambda: provider.preprocess(image),
        "network input, one Pillow call": lambda: provider.preprocess(image),
        "forward pass": lambda: provider.forward(x),
        "matte to the photo's size": lambda: provider.postprocess(prob, image.size),
        "matte to the photo's size, one Pillow call": lambda: provider.postprocess(prob, image.size),
        "edge-colour estimate": lambda: estimate_foreground(image, alpha),
        "cut-out": lambda: cutout(colours, alpha),
        "PNG": lambda: encode(cut, "png"),
    }
    rows: list[list] = []
    for name, step in steps.items():
        banded = bands.BANDED_MIN_PIXELS
        if "one Pillow call" in name:
            bands.BANDED_MIN_PIXELS = 10**12
        try:
            timing, _ = timed(step, repeats)
        finally:
            bands.BANDED_MIN_PIXELS = banded
        rows.append([label, name, round(timing.median_ms, 1)])
    return rows


def stages(images: list[tuple[str, Path]], repeats: int) -> dict:
    """Where rmbg's RGBA PNG path spends its time, stage by stage (ONNX Runtime), with the two
    resizes also timed as one Pillow call (before they ran in bands on every core)."""
    import rmbg

    provider = rmbg.get_provider("u2netp", engine="onnxruntime")
    rows = [row for label, path in images for row in stage_rows(label, path, provider, repeats)]
    return table(
        "Where rmbg's RGBA PNG path spends its time (U²-Net-p through ONNX Runtime)",
        ["image", "stage", "ms"],
        rows,
        f"Medians of {repeats} runs of each stage alone. 'One Pillow call': the same resize without "
        "rmbg.image.bands' row bands (the same pixels).",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frame", type=Path, default=FRAME)
    parser.add_argument(
        "--engines",
        default="onnxruntime,openvino",
        help="rmbg's U2-Net-p engines to compare, a table each (RMBG_U2NETP_ENGINE): onnxruntime is what a "
        "plain install runs, openvino what the openvino extra runs",
    )
    parser.add_argument(
        "--results",
        default="vs_rembg",
        help="the results file's name (benchmarks/results/NAME.json): one per CPU class measured",
    )
    args = parser.parse_args()

    onnx = weights()
    os.environ["RMBG_U2NETP_PATH"] = str(onnx)  # the workers inherit both
    os.environ["U2NET_HOME"] = str(onnx.parent)  # rembg finds <U2NET_HOME>/u2netp.onnx and skips pooch
    theirs = Worker("rembg", {}, script=WORKERS)
    tables = []
    try:
        with tempfile.TemporaryDirectory(prefix="vs-rembg-") as tmp:
            images = inputs(args.frame, Path(tmp))
            for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
                ours = Worker(f"rmbg {engine}", {}, script=WORKERS)
                try:
                    rows = compare(ours, theirs, images, args.repeats)
                finally:
                    ours.close()
                tables.append(
                    table(
                        f"rmbg ({engine}) vs rembg 2.0.86, U²-Net-p, file path to output bytes",
                        COLUMNS,
                        rows,
                        NOTES.format(repeats=args.repeats),
                    )
                )
            tables.append(forward_share(theirs, images, tables[0]["rows"], args.repeats))
            tables.append(stages(images, args.repeats))
    finally:
        theirs.close()
    print(markdown(tables))
    print(write_results(args.results, None, tables, packages=("rembg", "openvino")))


if __name__ == "__main__":
    main()
