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
from functools import partial
from pathlib import Path

from harness import markdown, table, timed, write_results

ROOT = Path(__file__).resolve().parents[1]


def png(image, level: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def _pil_default(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
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

    columns = ["image", "rmbg PNG-1", "PNG-3", "PNG-6", "PNG-9", "WebP lossless", "photo kept under α=0 (PNG-6)"]
    if naive_cutout is not None:
        columns.append("rembg naive_cutout PNG")
    rows = []
    for name, image in inputs:
        alpha = provider.matte(image).alpha
        ours = cutout(image, alpha)
        kept = image.copy()
        kept.putalpha(alpha)
        encoders = [partial(png, ours, level) for level in (1, 3, 6, 9)]
        encoders += [partial(encode, ours, "webp"), partial(png, kept, 6)]
        if naive_cutout is not None:
            encoders.append(partial(_pil_default, naive_cutout(image, alpha)))
        cells = []
        for fn in encoders:
            timing, data = timed(fn, args.repeats, warmup=0)
            cells.append(f"{len(data) / 1024:.0f} KB, {timing.median_ms:.0f} ms")
        rows.append([name, *cells])
    tables = [
        table(
            "Transparent cut-outs: file size and encode time",
            columns,
            rows,
            notes=f"Medians of {args.repeats} encodes; mattes from U2-Net-p. rembg "
            + ("installed" if naive_cutout else "not installed (no comparison column)")
            + ".",
        )
    ]
    print(markdown(tables))
    print(f"\nWrote {write_results('cutout_encode', None, tables)}")


if __name__ == "__main__":
    main()
