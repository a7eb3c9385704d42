"""Product-photo framing: crop to the subject, or place it on a canvas.

Works on (rgb, alpha) before compositing, so every background (transparent,
a colour, an image) and the mask view follow the same frame; it never calls
a provider, so a new frame costs nothing.

Rules (see rmbg.types.Framing):
- the subject is the bounding box of alpha >= SUBJECT_THRESHOLD (16 of 255:
  faint haze and JPEG noise in the matte do not stretch the box); with no
  such pixel the whole frame is the subject;
- crop: the box plus the margin on each side (margin as a fraction of the
  box's longer side, or pixels); space beyond the photo's edge is
  transparent (or the chosen background);
- aspect "W:H": that crop, widened or heightened to the ratio; the subject
  centred, or with "bottom" kept on the bottom margin;
- canvas "WxH": exactly that size; the subject scaled (Lanczos, on
  premultiplied colours) to fit inside the margins (a fraction of the
  canvas's shorter side, or pixels), centred or standing on the bottom margin.

Budget: a frame can be far larger than its photo (an 80x60 upload with a
7000 px margin is a 198 MP image), so its size is bounded before any work.
check_budget() takes the input size read from the file's header and the
framing, and refuses the largest frame the request could produce (the
subject as large as the whole photo) when it is over output_budget(): at
most OUTPUT_GROWTH times the input's pixels or OUTPUT_FLOOR_PIXELS, whichever
is larger, and never over the input pixel limit (RMBG_MAX_PIXELS). The
actual subject is never larger than the photo, so a request that passes is
never refused later, after a model ran or a provider was paid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidImageError, with_remedy
from ..settings import current
from ..types import Framing
from ..wording import number_text

SUBJECT_THRESHOLD = 16
MAX_CANVAS_SIDE = 10_000
# A frame may hold this many times the input's pixels (a margin of half the
# photo on every side), or this floor (a 2048x2048 canvas for a small photo):
# rendering costs up to ~55 bytes a pixel, so the floor keeps what a tiny
# upload can cost under ~250 MB (docs/limits.md; tests/test_limits.py).
OUTPUT_GROWTH = 4
OUTPUT_FLOOR_PIXELS = 2048 * 2048
ALIGNS = ("center", "bottom")
# at most 9 digits before and 6 after a point: a number no parser chokes on. ASCII digits only (re.ASCII: \d
# and int() read "１００" too); a margin's sign is read so that "-0" is 0, as the number -0 is, and "-5" is refused
# as negative, not as "no size"
_SIZE = re.compile(r"^\s*(\d{1,9})\s*[x×*]\s*(\d{1,9})\s*$", re.I | re.ASCII)
_ASPECT = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*:\s*(\d{1,9}(?:\.\d{1,6})?)\s*$", re.ASCII)
_MARGIN = re.compile(r"^\s*([+-]?\d{1,9}(?:\.\d{1,6})?)\s*(%|px)?\s*$", re.I | re.ASCII)


def framing_of(
    crop: bool = False,
    canvas: str | Sequence[int] | None = None,
    margin: str | int | float | None = None,
    align: str | None = None,
) -> Framing | None:
    """Framing from user values, checked: None when neither `crop` nor a canvas is asked.

    canvas: "2000x2000" (a size), "1:1" / "4:5" (an aspect) or (w, h) for a size.
    margin: "10%", "40px", "40" (pixels), an int (pixels) or a float < 1
        (a fraction); default 0.
    align: "center" (default) or "bottom".
    """
    if not isinstance(crop, (bool, np.bool_)) and crop is not None:
        raise InvalidImageError(f"crop must be true or false, got {crop!r}.")
    if align is not None and not isinstance(align, str):
        raise InvalidImageError(f"Unknown alignment {align!r}: use center or bottom.")
    size, aspect = _canvas(canvas)
    if not crop and size is None:
        # asked for by what it means: a margin of "0", "0%" or "0px" and "Center" ask for nothing (the MCP
        # tool's defaults are "0" and "center"), and a margin that is no size is refused as one
        margined, aligned = _margin(margin) != 0, (align or "center").strip().lower() != "center"
        if margined or aligned:
            field = "margin" if margined else "align"
            raise with_remedy(
                InvalidImageError("A margin or alignment needs crop=True or a canvas (canvas=...)."),
                "framing",
                "A margin or alignment needs crop or a canvas.",
                field,
            )
        return None
    chosen = (align or "center").strip().lower()
    if chosen not in ALIGNS:
        raise InvalidImageError(f"Unknown alignment {align!r}: use center or bottom.")
    return Framing(canvas=size, aspect=aspect, margin=_margin(margin), align=chosen)  # type: ignore[arg-type]


def framing_asked(values: Mapping[str, object]) -> dict[str, object]:
    """A form's framing fields (rmbg.options' framing options, by name) as framing_of takes them: a
    canvas "none" or empty is none, and without crop or a canvas the other framing fields are not
    asked for (a page's fields keep their values while unused), so they are left out."""
    canvas = values.get("canvas")
    values = {**values, "canvas": None if (canvas or "none") == "none" else canvas}
    if not values.get("crop") and values["canvas"] is None:
        return {name: False if name == "crop" else None for name in values}
    return values


def _canvas(value: str | Sequence[int] | None) -> tuple[tuple[int, int] | None, bool]:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None, False
    if isinstance(value, str):
        if match := _SIZE.match(value):
            return _size(int(match.group(1)), int(match.group(2)), value), False
        if match := _ASPECT.match(value):
            w, h = float(match.group(1)), float(match.group(2))
            if w <= 0 or h <= 0 or max(w / h, h / w) > 20:
                raise InvalidImageError(f"Aspect {value!r} is out of range: both sides above 0, at most 20:1.")
            # kept as a ratio of integers (in thousandths) so the frame is reproducible
            return (round(w * 1000), round(h * 1000)), True
        number_text("Canvas", value, InvalidImageError)
        raise InvalidImageError(f"Canvas {value!r} is neither a size such as '2000x2000' nor an aspect such as '1:1'.")
    parts = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(parts) != 2 or not all(isinstance(p, (int, np.integer)) for p in parts):
        raise InvalidImageError(f"Canvas {value!r} must be (width, height) in whole pixels.")
    return _size(int(parts[0]), int(parts[1]), value), False


def _size(width: int, height: int, shown: object) -> tuple[int, int]:
    if not (1 <= width <= MAX_CANVAS_SIDE and 1 <= height <= MAX_CANVAS_SIDE):
        raise InvalidImageError(f"Canvas {shown!r} is out of range: each side 1 to {MAX_CANVAS_SIDE} pixels.")
    limit = max_output_pixels()
    if width * height > limit:
        raise InvalidImageError(
            f"Canvas {shown!r} is {width * height / 1e6:.1f} MP, over the limit of {limit / 1e6:.0f} MP for an output."
        )
    return width, height


def max_output_pixels() -> int:
    """The most pixels any output may have: the input pixel limit (RMBG_MAX_PIXELS)."""
    from .io import max_pixels_default

    return max_pixels_default()


def output_budget(input_size: tuple[int, int]) -> int:
    """The most pixels a framed output of an input this size may have."""
    width, height = input_size
    floor = current().integer("RMBG_OUTPUT_FLOOR_PIXELS", OUTPUT_FLOOR_PIXELS)
    return min(max_output_pixels(), max(OUTPUT_GROWTH * width * height, floor))


def check_budget(input_size: tuple[int, int], framing: Framing | None, fmt: str = "png") -> None:
    """Refuse a framing whose largest possible output (the subject filling the
    photo) is over output_budget(input_size), or one the format `fmt` cannot
    hold (check_sides); nothing is decoded or run yet."""
    if framing is None:
        check_sides(input_size, fmt)
        return
    (width, height), _, _ = layout((0, 0, *input_size), framing)
    budget = output_budget(input_size)
    if width * height > budget:
        raise InvalidImageError(
            f"This framing could make a {width}x{height} image ({width * height / 1e6:.1f} MP) from a "
            f"{input_size[0]}x{input_size[1]} photo; an output may have at most {budget / 1e6:.1f} MP here "
            "(4 times the photo's pixels, or 4.2 MP for a small photo). Use a smaller margin or canvas."
        )
    check_sides((width, height), fmt)


# The longest side each output format can hold (libwebp's and libjpeg's limits; PNG's is 2^31 - 1): a
# 20000x600 panorama, within the pixel limit, cannot be a WebP, and its encoder said so only after the
# model ran (or the provider was paid), as a ValueError or an OSError.
MAX_SIDES = {"webp": ("WebP", 16383), "jpeg": ("JPEG", 65500), "jpg": ("JPEG", 65500)}


def check_sides(size: tuple[int, int], fmt: str) -> None:
    """Refuse an output of `size` that the format `fmt` ("png", "webp", "jpeg") cannot hold."""
    name, most = MAX_SIDES.get(str(fmt).lower().lstrip("."), ("", 0))
    if most and max(size) > most:
        raise InvalidImageError(
            f"A {name} image can be at most {most} pixels on a side, and this output would be "
            f"{size[0]}x{size[1]}: choose PNG, or a smaller photo or frame."
        )


def _margin(value: str | int | float | None) -> int | float:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.integer)):
        raise InvalidImageError(f"Margin {value!r} is not a size: use '10%', '40px' or a number of pixels.")
    if isinstance(value, (int, np.integer)):
        pixels = int(value)
    elif isinstance(value, float):
        if not 0 <= value < 0.5:  # NaN fails this too
            raise InvalidImageError(f"Margin {value!r} as a fraction must be at least 0 and under 0.5 (50 %).")
        return abs(value)  # -0.0 is 0
    else:
        match = _MARGIN.match(str(value))
        if not match:
            number_text("Margin", str(value), InvalidImageError)
            raise InvalidImageError(f"Margin {value!r} is not a size: use '10%', '40px' or a number of pixels.")
        number, unit = float(match.group(1)), (match.group(2) or "px").lower()
        if number < 0:
            raise InvalidImageError(f"Margin {value!r} is negative: use 0 or more, such as '10%' or '40px'.")
        number = abs(number)  # "-0" is 0
        if unit == "%":
            if number >= 50:
                raise InvalidImageError(f"Margin {value!r} must be under 50 %.")
            return number / 100
        if number != int(number):
            raise InvalidImageError(f"Margin {value!r} must be a whole number of pixels.")
        pixels = int(number)
    if not 0 <= pixels <= MAX_CANVAS_SIDE:
        raise InvalidImageError(f"Margin {value!r} is out of range: 0 to {MAX_CANVAS_SIDE} pixels.")
    return pixels


def margin_text(number: int | float) -> str:
    """A margin given as a number (JSON's, Python's: a whole one is pixels, one under 1 a fraction), as
    the text that means the same here ("40px", "10%"), for a door whose margin is text (the MCP tool's);
    refused as framing_of refuses it."""
    margin = _margin(number)
    return f"{margin}px" if isinstance(margin, int) else f"{round(margin * 100, 6):.15g}%"


def subject_box(alpha: Image.Image, threshold: int = SUBJECT_THRESHOLD) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of alpha >= threshold, right/bottom exclusive; None when empty."""
    mask = np.asarray(alpha) >= threshold
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _pixels(margin: int | float, reference: int) -> int:
    return round(margin * reference) if isinstance(margin, float) else margin


def layout(
    box: tuple[int, int, int, int], framing: Framing
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(output size, subject size in the output, subject's top-left in the output) for a subject box."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    if framing.canvas is not None and not framing.aspect:
        width, height = framing.canvas
        m = _pixels(framing.margin, min(width, height))
        if width - 2 * m < 1 or height - 2 * m < 1:
            raise InvalidImageError(f"A margin of {m} px leaves no room on a {width}x{height} canvas.")
        scale = min((width - 2 * m) / bw, (height - 2 * m) / bh)
        sw, sh = max(1, round(bw * scale)), max(1, round(bh * scale))
        top = height - m - sh if framing.align == "bottom" else (height - sh) // 2
        return (width, height), (sw, sh), ((width - sw) // 2, top)
    m = _pixels(framing.margin, max(bw, bh))
    width, height, left, top = bw + 2 * m, bh + 2 * m, m, m
    if framing.canvas is not None:  # an aspect ratio: grow the short side
        ratio = framing.canvas[0] / framing.canvas[1]
        if width / height < ratio:
            wider = round(height * ratio)
            left += (wider - width) // 2
            width = wider
        else:
            taller = round(width / ratio)
            top += taller - height if framing.align == "bottom" else (taller - height) // 2
            height = taller
    if max(width, height) > MAX_CANVAS_SIDE * 2:
        raise InvalidImageError(f"The framed image would be {width}x{height} pixels: use a smaller margin.")
    return (width, height), (bw, bh), (left, top)


def frame(rgb: Image.Image, alpha: Image.Image, framing: Framing) -> tuple[Image.Image, Image.Image]:
    """(rgb, alpha) framed as `framing` says; outside the subject, alpha 0 and RGB 0.
    Refused before any allocation when over the budget for this input size."""
    check_budget(alpha.size, framing)
    box = subject_box(alpha) or (0, 0, alpha.size[0], alpha.size[1])
    size, subject_size, at = layout(box, framing)
    piece = Image.merge("RGBA", (*rgb.convert("RGB").split(), alpha)).crop(box)
    if piece.size != subject_size:
        piece = piece.resize(subject_size, Image.Resampling.LANCZOS)  # Pillow resizes RGBA premultiplied
    out = Image.new("RGBA", size, (0, 0, 0, 0))
    out.paste(piece, at)
    return out.convert("RGB"), out.getchannel("A")


def frame_source(rgb: Image.Image, alpha: Image.Image, framing: Framing, fill: tuple[int, int, int]) -> Image.Image:
    """The photo itself (no matte applied) in the geometry frame() gives its cut-out: the subject's box
    cropped, scaled and placed alike, the rest of the canvas `fill`. What a before/after view shows
    as "before", so the two halves line up after a crop or a canvas."""
    check_budget(alpha.size, framing)
    box = subject_box(alpha) or (0, 0, alpha.size[0], alpha.size[1])
    size, subject_size, at = layout(box, framing)
    piece = rgb.convert("RGB").crop(box)
    if piece.size != subject_size:
        piece = piece.resize(subject_size, Image.Resampling.LANCZOS)
    out = Image.new("RGB", size, fill)
    out.paste(piece, at)
    return out
