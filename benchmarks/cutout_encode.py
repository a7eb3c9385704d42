"""File size and encode time of transparent cut-outs: ours against rembg's, on the same images and mattes.

    pip install rembg pymatting scikit-image   # only for the comparison column; not a dependency
    python benchmarks/cutout_encode.py --repeats 3

Mattes come from U2-Net-p (the real model, through rmbg). For each image:
rmbg's PNG at zlib levels 1, 3, 6 and 9 and lossless WebP (RGB 0 under alpha
0, as every rmbg output), the cut-out that kept the photo under transparent
pixels (what rmbg wrote before, for reference), and rembg's `naive_cutout`
saved by PIL with its defaults. Medians of --repeats encodes, in ms; sizes in KB.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeats: int) -> tuple[float, bytes]:
    times, data = [], b""
    for _ in range(repeats):
        start = time.perf_counter()
        data = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), data


def png(image, level: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PIL import Image

    import rmbg
    from rmbg.image.compose import cutout, encode

    try:
        from rembg.bg import naive_cutout
    except ImportError:
        naive_cutout = None
    provider = rmbg.get_provider("u2netp")
    photos = sorted((ROOT / "examples").glob("*.jpg"))
    inputs = [(p.name, Image.open(p).convert("RGB")) for p in photos]
    big = Image.open(photos[0]).convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS)
    inputs.append(("12 MP (upscaled " + photos[0].name + ")", big))

    print(f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"Pillow {Image.__version__}, rmbg {rmbg.__version__}, rembg "
          f"{__import__('rembg').__version__ if naive_cutout else 'not installed'}; medians of {args.repeats}\n")
    print("| image | rmbg PNG-1 | PNG-3 | PNG-6 | PNG-9 | WebP lossless | photo kept under α=0 (PNG-6) "
          "| rembg naive_cutout PNG |")
    print("|---|---|---|---|---|---|---|---|")
    for name, image in inputs:
        alpha = provider.matte(image).alpha
        ours = cutout(image, alpha)
        kept = image.copy()
        kept.putalpha(alpha)
        cells = []
        for level in (1, 3, 6, 9):
            ms, data = timed(lambda: png(ours, level), args.repeats)
            cells.append(f"{len(data) / 1024:.0f} KB, {ms:.0f} ms")
        ms, data = timed(lambda: encode(ours, "webp"), args.repeats)
        cells.append(f"{len(data) / 1024:.0f} KB, {ms:.0f} ms")
        ms, data = timed(lambda: png(kept, 6), args.repeats)
        cells.append(f"{len(data) / 1024:.0f} KB, {ms:.0f} ms")
        if naive_cutout is not None:
            theirs = naive_cutout(image, alpha)
            ms, data = timed(lambda: _pil_default(theirs), args.repeats)
            cells.append(f"{len(data) / 1024:.0f} KB, {ms:.0f} ms")
        else:
            cells.append("n/a")
        print(f"| {name} | " + " | ".join(cells) + " |")


def _pil_default(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
