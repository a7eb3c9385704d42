"""SAM 2 prompts drawn on the photo, clicks on that drawing, and the page's
prompt fields read (prompts_of) and written (add_point, add_corner).

The page shows the photo with its keep points (green), drop points (red) and
box (blue) as markers, on a copy no longer than PREVIEW_SIDE (a 12 MP photo
redrawn at full size after every click would take seconds). A click on the
copy is mapped back to the photo's own pixels, the unit the prompts are
written in; a click on a marker removes it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from ...errors import InvalidImageError, RmbgError
from ...wording import number_text

PREVIEW_SIDE = 1024
KEEP, DROP, BOX = (22, 163, 74), (220, 38, 38), (37, 99, 235)


def prompts_of(points_text: str | None, box_text: str | None) -> tuple[list[tuple[float, float, bool]], tuple | None]:
    """SAM 2 prompts from the page's fields: points as "x, y, keep" entries
    separated by ";" or new lines (keep: keep/drop, 1/0; default keep), the
    box as "x0, y0, x1, y1". Readable errors for anything else."""
    points = []
    for entry in re.split(r"[;\n]+", points_text or ""):
        parts = [p.strip() for p in entry.split(",") if p.strip()]
        if not parts:
            continue
        typed = number_text("Point", entry.strip(), InvalidImageError)
        try:
            if len(parts) not in (2, 3) or not typed:
                raise ValueError
            keep = parts[2].lower() not in ("0", "drop", "false", "no") if len(parts) == 3 else True
            points.append((float(parts[0]), float(parts[1]), keep))
        except ValueError:
            raise InvalidImageError(
                f"Point {entry.strip()!r}: write x, y, keep (or drop), e.g. 120, 80, keep."
            ) from None
    box = None
    if box_text and box_text.strip():
        typed = number_text("Box", box_text.strip(), InvalidImageError)
        try:
            values = tuple(float(v) for v in typed.split(","))
        except ValueError:
            values = ()
        if len(values) == 2:
            raise InvalidImageError("The box has one corner: click its opposite corner too.")
        if len(values) != 4:
            raise InvalidImageError(f"Box {box_text.strip()!r}: write x0, y0, x1, y1 in image pixels.")
        box = values
    return points, box


def add_point(points_text: str | None, x: float, y: float, keep: bool) -> str:
    """The points field with one more click appended."""
    entry = f"{round(x)}, {round(y)}, {'keep' if keep else 'drop'}"
    return f"{points_text.strip()}; {entry}" if points_text and points_text.strip() else entry


def add_corner(box_text: str | None, x: float, y: float) -> str:
    """The box field after a click in box mode: a first corner "x, y", then the
    box "x0, y0, x1, y1" (the two corners in any order); a third click starts over, as does a click
    on a field holding anything else (a half-typed or unreadable box is replaced, never an error)."""
    first = _first_corner(box_text)
    if first is None:
        return f"{round(x)}, {round(y)}"
    (x0, y0), (x1, y1) = first, (round(x), round(y))
    return f"{round(min(x0, x1))}, {round(min(y0, y1))}, {round(max(x0, x1))}, {round(max(y0, y1))}"


def photo_size(path: str | None) -> tuple[int, int] | None:
    """The photo's upright size (EXIF orientation applied, as the models see
    it), from its header; None without a readable photo."""
    if not path:
        return None
    try:
        with Image.open(path) as img:
            w, h = img.size
            return (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def scale_of(size: tuple[int, int]) -> float:
    """Photo pixels per preview pixel."""
    return max(1.0, max(size) / PREVIEW_SIDE)


def draw(path: str | None, points_text: str | None, box_text: str | None) -> Image.Image | None:
    """The photo (at most PREVIEW_SIDE) with the prompts drawn on it; None
    without a photo. Fields that do not parse are drawn as far as they do."""
    size = photo_size(path)
    if size is None or path is None:
        return None
    with Image.open(path) as opened:
        opened.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG: decode at a fraction of the size
        img = ImageOps.exif_transpose(opened).convert("RGB")
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    scale = size[0] / img.width
    pen = ImageDraw.Draw(img)
    r = max(5, round(max(img.size) / 60))
    points, box = _parsed(points_text, box_text)
    if box is not None:
        x0, y0, x1, y1 = (v / scale for v in box)
        pen.rectangle((x0, y0, x1, y1), outline=BOX, width=max(3, r // 2))
    corner = _first_corner(box_text)
    if corner is not None:
        cx, cy = corner[0] / scale, corner[1] / scale
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), outline=BOX, width=max(2, r // 3))
    for x, y, keep in points:
        cx, cy = x / scale, y / scale
        pen.ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=KEEP if keep else DROP, outline=(255, 255, 255), width=max(1, r // 4)
        )
    return img


def click(
    points_text: str | None, box_text: str | None, x: float, y: float, mode: str, reach: float
) -> tuple[str, str]:
    """The fields after a click at photo pixel (x, y): a click within `reach`
    photo pixels of a point removes that point; otherwise it adds a keep or
    drop point, or (mode "box corner") a corner of the box."""
    points, _ = _parsed(points_text, None)
    near = [i for i, (px, py, _keep) in enumerate(points) if (px - x) ** 2 + (py - y) ** 2 <= reach**2]
    if near:
        kept = [p for i, p in enumerate(points) if i != near[-1]]
        return "; ".join(f"{round(px)}, {round(py)}, {'keep' if k else 'drop'}" for px, py, k in kept), box_text or ""
    if mode == "box corner":
        return points_text or "", add_corner(box_text, x, y)
    return add_point(points_text, x, y, mode != "drop"), box_text or ""


def undo(points_text: str | None) -> str:
    """The points field without its last point."""
    entries = [e.strip() for e in (points_text or "").replace("\n", ";").split(";") if e.strip()]
    return "; ".join(entries[:-1])


def reach_of(size: tuple[int, int]) -> float:
    """How near (photo pixels) a click must be to a point to remove it: the marker's radius, a little more."""
    return 1.5 * max(5, round(max(size) / scale_of(size) / 60)) * scale_of(size)


def _parsed(points_text: str | None, box_text: str | None) -> tuple[list[tuple[float, float, bool]], tuple | None]:
    try:
        return prompts_of(points_text, box_text if box_text and box_text.count(",") == 3 else None)
    except RmbgError:  # half-typed fields: draw nothing rather than complain on every key
        return [], None


def _first_corner(box_text: str | None) -> tuple[float, float] | None:
    try:  # a half-typed field draws nothing (InvalidImageError is a ValueError)
        parts = [p.strip() for p in number_text("Box", box_text or "", InvalidImageError).split(",") if p.strip()]
        corner = (float(parts[0]), float(parts[1])) if len(parts) == 2 else None
    except ValueError:
        return None
    return corner if corner is not None and all(math.isfinite(v) for v in corner) else None


def drawn_file(path: str | None, points_text: str | None, box_text: str | None, *, folder: str) -> str | None:
    """draw() as a JPEG file for the page, named by its content and written once (to a temporary
    name, then renamed), never rewritten: gradio writes a returned picture to a path named by its
    content and rewrites it when the same picture comes again, so a browser still reading that
    path got a cut-off file (a broken picture that never loads) when a redraw equalled the last.
    `folder`: where (the page gives gradio's upload folder, whose room rmbg.webapp.upload_room bounds)."""
    img = draw(path, points_text, box_text)
    if img is None:
        return None
    data = io.BytesIO()
    img.save(data, "JPEG", quality=90)
    where = Path(folder) / "rmbg-marks"
    where.mkdir(parents=True, exist_ok=True)
    target = where / f"{hashlib.sha256(data.getvalue()).hexdigest()[:32]}.jpeg"
    if not target.exists():
        with tempfile.NamedTemporaryFile(dir=where, suffix=".part", delete=False) as part:
            part.write(data.getvalue())
        os.replace(part.name, target)
    return str(target)
