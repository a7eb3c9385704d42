"""How a chosen subject (a SAM 2 mask) combines with a provider's matte.

The rule (`keep_selected`): keep the provider's matte inside the chosen
object's mask grown by `grow` pixels, zero elsewhere. The growth lets hair and
soft edges that the provider got right, and SAM's coarser mask cut off, stay;
everything outside (other people, objects the provider kept) goes.

grow default = max(3, round(max(W, H) / 200)) pixels: 0.5 % of the longer
side (5 px on a 1000 px photo), square structuring element.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .morph import dilate

Point = tuple[float, float, bool]  # (x, y, keep): pixel coordinates in the input image
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1): pixel coordinates, top-left and bottom-right


def grow_radius(width: int, height: int) -> int:
    return int(max(3, round(max(width, height) / 200)))


def keep_selected(matte, selection, grow: int | None = None):
    """The provider's matte (mode L) kept only where the selection (mode L, >= 128
    = chosen) grown by `grow` pixels is set; 0 elsewhere. Pure; same size out."""
    from PIL import Image

    if matte.size != selection.size:
        raise ValueError(f"matte {matte.size} and selection {selection.size} differ in size")
    alpha = np.asarray(matte.convert("L"))
    chosen = np.asarray(selection.convert("L")) >= 128
    radius = grow_radius(*matte.size) if grow is None else int(grow)
    region = dilate(chosen, radius)
    return Image.fromarray(np.where(region, alpha, 0).astype(np.uint8))


def normalise_prompt(
    points: Iterable[Sequence] | None, box: Sequence[float] | None, size: tuple[int, int]
) -> tuple[tuple[Point, ...], Box | None]:
    """Validated prompts: points as (x, y, keep) tuples, box as (x0, y0, x1, y1)
    with x0 < x1 and y0 < y1, everything inside the image (width, height)."""
    w, h = size
    pts: list[Point] = []
    for p in points or ():
        if len(p) not in (2, 3):
            raise ValueError(f"a point is (x, y) or (x, y, keep), got {p!r}")
        x, y = float(p[0]), float(p[1])
        keep = bool(p[2]) if len(p) == 3 else True
        if not (0 <= x <= w and 0 <= y <= h):
            raise ValueError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
        pts.append((x, y, keep))
    out_box: Box | None = None
    if box is not None:
        if len(box) != 4:
            raise ValueError(f"box is (x0, y0, x1, y1), got {box!r}")
        x0, y0, x1, y1 = (float(v) for v in box)
        x0, x1 = sorted((min(max(x0, 0.0), w), min(max(x1, 0.0), w)))
        y0, y1 = sorted((min(max(y0, 0.0), h), min(max(y1, 0.0), h)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise ValueError(f"box {tuple(box)!r} is empty inside the {w}x{h} image")
        out_box = (x0, y0, x1, y1)
    return tuple(pts), out_box


def centre_point(size: tuple[int, int]) -> tuple[Point, ...]:
    """The default prompt when none is given: one 'keep' point at the image centre."""
    return ((size[0] / 2.0, size[1] / 2.0, True),)
