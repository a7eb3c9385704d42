"""Pillow's resizing on every core, in row bands, with the same pixels.

Pillow's resampling releases the GIL but runs on one core, so a large resize
(a 12 MP photo to the network's 320x320, a matte back to 12 MP) can be cut
into bands of output rows that run in threads and are pasted together.

Pillow computes each output row from a window of source rows around its
centre, (row + 0.5) * scale. A band given to Pillow as a source box keeps
that scale to the last bit when its box starts and ends on whole source
rows: the cuts are output rows where row * source height / output height is
a whole number (where none lies between the bands' ends, 767 output rows
from 320 say, the resize runs in one piece). The windows and weights are
then the same and so are the pixels, bar a rare one-grey-level difference
where a centre's last bit rounds the other way (tests/test_bands.py: none
on the sizes of a cut-out's path, at most 1 over random sizes).

Cut only where that holds: 8-bit images without alpha (L, RGB: with alpha,
Pillow resizes premultiplied colours and a one-level change of a faint
alpha can move its colour far), filters without jumps (not BOX, whose
window edge is a step), both axes resized the same way Pillow does in one
piece (not images over 100 times taller than wide, which Pillow resizes
vertically first when it shrinks them, as a band of a taller output may),
and not a width-only resize.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ..threads import BUDGET

# From this many pixels (the larger of source and output) up, bands pay: a 12 MP photo
# to 320x320 with Lanczos takes 92 ms in one call and 51 ms in two bands; below, the
# saving is a few milliseconds (an 854x480 photo: 4.8 against 2.8 ms), not worth a
# thread a request on a busy server.
BANDED_MIN_PIXELS = 1_000_000
# A band's source box reaches past its ends by the filter's support (Lanczos down from 12 MP
# to 320 rows: about 28 source rows each way), so thin bands repeat work: many cores get
# fewer, taller bands.
MIN_BAND_ROWS = 32
CUT_MODES = frozenset({"L", "RGB"})
SMOOTH_FILTERS = frozenset(
    {Image.Resampling.BILINEAR, Image.Resampling.HAMMING, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS}
)


def can_cut(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> bool:
    """Whether a resize of `image` to `size` may run in bands (see the module's doc)."""
    tall = image.height > image.width * 100  # a band shrinks in height and Pillow goes vertical first
    return image.mode in CUT_MODES and resample in SMOOTH_FILTERS and size[1] != image.height and not tall


def exact_cuts(out_rows: int, in_rows: int, parts: int) -> list[int]:
    """Output rows, 0 and out_rows included, that cut a resize from `in_rows` to
    `out_rows` rows into about `parts` equal bands whose source boxes start and end
    on whole rows: multiples of out_rows / gcd(out_rows, in_rows)."""
    step = out_rows // math.gcd(out_rows, in_rows)
    cuts = [0]
    for k in range(1, parts):
        row = round(out_rows * k / parts / step) * step
        if cuts[-1] < row < out_rows:
            cuts.append(row)
    return [*cuts, out_rows]


def resize(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling, *, threads: int | None = None
) -> Image.Image:
    """image.resize(size, resample): in row bands on `threads` threads (None: as many
    as the process's thread budget has free, rmbg.threads) when the source or the
    output has BANDED_MIN_PIXELS or more and it can be cut, else in one call; the
    same pixels either way (see the module's doc)."""
    width, height = size
    large = max(width * height, image.width * image.height) >= BANDED_MIN_PIXELS
    most = height // MIN_BAND_ROWS if large and can_cut(image, size, resample) else 1
    if threads is not None or most < 2:
        return _resize(image, size, resample, min(threads or 1, most))
    with BUDGET.take(min(BUDGET.total, most)) as granted:  # the request's own thread waits while they run
        return _resize(image, size, resample, granted)


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling, parts: int) -> Image.Image:
    width, height = size
    cuts = exact_cuts(height, image.height, max(parts, 1))
    if len(cuts) <= 2:
        return image.resize(size, resample)
    image.load()
    rows_in = image.height

    def band(top: int, bottom: int) -> Image.Image:
        box = (0, top * rows_in // height, image.width, bottom * rows_in // height)  # whole rows: see exact_cuts
        return image.resize((width, bottom - top), resample, box=box)

    out = Image.new(image.mode, size)
    with ThreadPoolExecutor(max_workers=len(cuts) - 1, thread_name_prefix="rmbg-cpu") as pool:
        for top, part in zip(cuts, pool.map(band, cuts[:-1], cuts[1:])):
            out.paste(part, (0, top))
    return out
