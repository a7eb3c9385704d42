"""What writing a 12 MP cut-out's PNG costs, step by step, and what a faster deflate would give.

    pip install zlib-ng       # benchmark only: the faster deflate measured here (optional)
    python benchmarks/png_deflate.py --repeats 3

The cut-out is rmbg's own (U²-Net-p on the 12 MP upscale that
benchmarks/vs_rembg.py uses). Timed on one core each, medians of --repeats:
Pillow's per-row filter choice alone (a PNG stored at level 0), then the
filtered rows deflated by zlib (rmbg's settings: Z_FILTERED, window 15,
memLevel 9) and by zlib-ng where it is installed, at levels 5 to 7, with
the size of each stream against zlib's at level 6. rmbg's files must be no
larger than Pillow's defaults (rembg's) on the same pixels, which a deflate
writing larger streams than zlib's at level 6 would break.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import zlib
from pathlib import Path
from typing import Any

from harness import markdown, table, timed, write_results
from vs_rembg import FRAME, inputs

LEVELS = (5, 6, 7)
STRATEGY = 1  # Z_FILTERED, as rmbg.image.compose.PNG_STRATEGY


def deflaters() -> dict[str, Any]:
    found: dict[str, Any] = {"zlib": zlib}
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-not-found]
    except ImportError:
        return found
    found["zlib-ng"] = zlib_ng
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from rmbg import remove_background

    with tempfile.TemporaryDirectory() as tmp:
        big = inputs(FRAME, Path(tmp))[1][1]
        cut = remove_background(big, "u2netp", cache=None).image
    from rmbg.image.png import _filtered

    rows = _filtered(cut, None)[1]  # the rows Pillow filters for it, as rmbg's banded writer takes them
    filtering, _ = timed(lambda: cut.save(io.BytesIO(), "PNG", compress_level=0), args.repeats)
    found = deflaters()
    results: dict[tuple[str, int], tuple[float, int]] = {}
    for name, lib in found.items():
        for level in LEVELS:

            def deflate(lib: Any = lib, level: int = level) -> bytes:
                packer = lib.compressobj(level, lib.DEFLATED, -15, 9, STRATEGY)
                return packer.compress(rows) + packer.flush()

            timing, stream = timed(deflate, args.repeats)
            results[name, level] = (timing.median_ms, len(stream))
    reference_ms, reference_size = results["zlib", 6]
    rows_out: list[list[Any]] = [["Pillow's filter choice (level 0 PNG)", "", round(filtering.median_ms), "", ""]]
    for (name, level), (ms, size) in results.items():
        rows_out.append([name, level, round(ms), round(ms / reference_ms, 2), round(size / reference_size, 4)])
    missing = "" if "zlib-ng" in found else " zlib-ng is not installed here, so only zlib was measured."
    tables = [
        table(
            f"Writing a {cut.size[0]}x{cut.size[1]} RGBA cut-out's PNG, one core",
            ["step", "level", "ms", "x zlib 6 time", "x zlib 6 size"],
            rows_out,
            f"Medians of {args.repeats}; {len(rows) / 1e6:.1f} MB of filtered rows. rmbg writes level 6 on "
            "every core in row bands (rmbg/image/png.py), so its wall time is about half these sums." + missing,
        )
    ]
    print(markdown(tables))
    print(write_results("png_deflate", None, tables, packages=("zlib-ng",)))


if __name__ == "__main__":
    main()
