"""Alpha matte -> what a person sees.

Everything here is local and cheap: changing the background, toggling
mask-only or changing the format never touches a provider.

Compositing rule (exact, integer): out = (fg*a + bg*(255-a) + 127) // 255
for 8-bit fg, bg and a.

Edge colours: a semi-transparent pixel of the input still carries the old
background's colour. estimate_foreground() recovers the foreground colour
by blur-fusion (Forte & Pitie, "Approximate Fast Foreground Colour
Estimation", ICIP 2021); render(refine_foreground=True) composites that
instead of the input, which removes the halo on a new background.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
from PIL import Image, ImageColor, PngImagePlugin

from .errors import InvalidImageError

Colour = tuple[int, int, int]
Background = Union[None, str, Sequence[int], Image.Image]

FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG"}
MIME = {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg"}
WHITE: Colour = (255, 255, 255)
FOREGROUND_RADII = (90, 6)  # blur-fusion passes: box radius in pixels, wide then narrow
_EPS = np.float32(1e-5)


def parse_colour(value: str | Sequence[int]) -> Colour:
    """'#RRGGBB', '#RGB', a CSS name, 'rgb(r, g, b)' or an (r, g, b) tuple -> (r, g, b)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            rgb = ImageColor.getrgb(text)
        except ValueError:
            raise InvalidImageError(
                f"{value!r} is not a colour: use '#RRGGBB', a CSS name such as 'white', or an (r, g, b) tuple."
            ) from None
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    parts = tuple(value)
    if len(parts) not in (3, 4) or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in parts):
        raise InvalidImageError(f"{value!r} is not a colour: an RGB tuple needs three whole numbers 0-255.")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def fit_cover(background: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale `background` to cover `size` (keeping its aspect) and crop the centre."""
    width, height = size
    bw, bh = background.size
    scale = max(width / bw, height / bh)
    new = (max(width, round(bw * scale)), max(height, round(bh * scale)))
    resized = background.convert("RGB").resize(new, Image.Resampling.LANCZOS)
    left = (new[0] - width) // 2
    top = (new[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.uint32)[..., None]
    out = (fg.astype(np.uint32) * a + bg.astype(np.uint32) * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _check_alpha(image: Image.Image, alpha: Image.Image) -> None:
    if alpha.mode != "L" or alpha.size != image.size:
        raise ValueError(f"alpha must be mode L of size {image.size}, got {alpha.mode} {alpha.size}")


def _box_last(x: np.ndarray, r: int) -> np.ndarray:
    """Mean of x[..., j-r : j+r+1] along the last axis, the window clamped at
    the ends (a mean over the pixels inside); cumulative sums, O(n) for any r."""
    n = x.shape[-1]
    sums = np.empty(x.shape[:-1] + (n + 1,), np.float32)
    sums[..., 0] = 0
    np.cumsum(x, axis=-1, dtype=np.float32, out=sums[..., 1:])
    out = np.empty(x.shape, np.float32)
    whole = max(n - r - 1, 0)  # positions whose window ends before the last pixel
    out[..., :whole] = sums[..., r + 1 : r + 1 + whole]
    out[..., whole:] = sums[..., n : n + 1]
    if n - r > 1:
        out[..., r + 1 :] -= sums[..., 1 : n - r]
    idx = np.arange(n)
    out *= 1.0 / (np.minimum(idx + r + 1, n) - np.maximum(idx - r, 0)).astype(np.float32)
    return out


def _box2d(x: np.ndarray, r: int) -> np.ndarray:
    """(2r+1)x(2r+1) mean filter of a 2-D float32 array, clamped at the borders."""
    rows = _box_last(x, r)
    return np.ascontiguousarray(_box_last(np.ascontiguousarray(rows.T), r).T)


def _box(planes: list[np.ndarray], r: int, pool: ThreadPoolExecutor) -> list[np.ndarray]:
    """_box2d of every HxW plane (in parallel threads; numpy releases the GIL)."""
    return list(pool.map(lambda plane: _box2d(plane, r), planes))


def _fuse(i: np.ndarray, a: np.ndarray, fb: np.ndarray, bb: np.ndarray) -> np.ndarray:
    """F = clip(Fb + a (I - a Fb - (1 - a) Bb), 0, 1); i, fb, bb 3xHxW, a HxW."""
    f = i - a * fb
    f -= (1 - a) * bb
    f *= a
    f += fb
    return np.clip(f, 0, 1, out=f)


def _blur_fusion(image: np.ndarray, alpha: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """Foreground colours (3xHxW float32 in [0, 1]) from uint8 image (HxWx3) and alpha (HxW).

    Pass 1 (r = 90) starts from F = B = I, so box(B (1-a)) = box(I) - box(I a)
    and box(1-a) = 1 - box(a); pass 2 (r = 6) refines with F and Bb of pass 1.
    Planar (channel-first) arrays throughout: much faster than HxWx3 here.
    """
    wide, narrow = FOREGROUND_RADII
    i = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    i *= np.float32(1 / 255)
    a = alpha.astype(np.float32)
    a *= np.float32(1 / 255)
    ia = i * a
    sums = _box([*ia, *i, a], wide, pool)
    mean_fa, mean_i, mean_a = np.stack(sums[:3]), np.stack(sums[3:6]), sums[6]
    fb = mean_fa / (mean_a + _EPS)
    bb = (mean_i - mean_fa) / (1 - mean_a + _EPS)
    f = _fuse(i, a, fb, bb)
    sums = _box([*(f * a), *(bb * (1 - a)), a], narrow, pool)
    mean_a = sums[6]
    fb = np.stack(sums[:3]) / (mean_a + _EPS)
    bb = np.stack(sums[3:6]) / (1 - mean_a + _EPS)
    return _fuse(i, a, fb, bb)


def estimate_foreground(image: Image.Image, alpha: Image.Image) -> Image.Image:
    """The foreground colour of every pixel (RGB, uint8, rounded) from an image and its matte (L).

    Where alpha is 255 the result is the image exactly; where it is 0 the
    image is kept too (the colour there is never seen). Only the bounding box
    of the soft pixels, widened by the blur radii, is computed; the result
    there is the same as over the whole image.
    """
    _check_alpha(image, alpha)
    rgb = np.asarray(image.convert("RGB"))
    a8 = np.asarray(alpha)
    soft = (a8 > 0) & (a8 < 255)
    out = rgb.copy()
    rows, cols = np.flatnonzero(soft.any(axis=1)), np.flatnonzero(soft.any(axis=0))
    if rows.size:
        margin = sum(FOREGROUND_RADII)
        y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, a8.shape[0])
        x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, a8.shape[1])
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            f = _blur_fusion(rgb[y0:y1, x0:x1], a8[y0:y1, x0:x1], pool)
        f8 = np.rint(f.transpose(1, 2, 0) * 255).astype(np.uint8)
        np.copyto(out[y0:y1, x0:x1], f8, where=soft[y0:y1, x0:x1, None])
    return Image.fromarray(out, "RGB")


def render(
    image: Image.Image,
    alpha: Image.Image,
    *,
    background: Background = None,
    mask_only: bool = False,
    refine_foreground: bool = False,
) -> Image.Image:
    """Compose an output from an RGB image and its matte.

    background None -> RGBA cut-out (RGB kept, A = alpha); a colour -> RGB on
    that colour; an image -> RGB on that image fitted to cover.
    mask_only -> the matte itself (mode L), whatever the background.
    refine_foreground -> use estimate_foreground() instead of the image's
    colours (cut-out RGB and composite), so edges lose the old background's
    tint; ignored with mask_only.
    """
    _check_alpha(image, alpha)
    if mask_only:
        return alpha.copy()
    rgb = estimate_foreground(image, alpha) if refine_foreground else image.convert("RGB")
    if background is None:
        out = rgb.copy()
        out.putalpha(alpha)
        return out
    if isinstance(background, Image.Image):
        bg = np.asarray(fit_cover(background, rgb.size))
    else:
        colour = parse_colour(background)
        bg = np.broadcast_to(np.array(colour, dtype=np.uint8), (rgb.size[1], rgb.size[0], 3))
    return Image.fromarray(_blend(np.asarray(rgb), bg, np.asarray(alpha)), "RGB")


def format_from_path(path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidImageError(f"Cannot tell the output format from {Path(path).name!r}: use .png, .webp or .jpg.")
    return suffix


def normalise_format(fmt: str) -> str:
    try:
        return FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise InvalidImageError(f"Unknown output format {fmt!r}: use png, webp or jpg.") from None


def encode(
    image: Image.Image,
    fmt: str = "png",
    *,
    background: Background = None,
    quality: int = 95,
    meta: Mapping[str, str] | None = None,
) -> bytes:
    """Encode an output image.

    PNG and WebP keep alpha (WebP losslessly when there is alpha). JPEG has
    no alpha: an RGBA image is flattened onto `background` (white by default).
    `meta` goes into PNG text chunks (provenance).
    """
    pil_format = normalise_format(fmt)
    buf = io.BytesIO()
    if pil_format == "JPEG":
        if image.mode in ("RGBA", "LA"):
            bg = WHITE if background is None else background
            image = render(image.convert("RGB"), image.getchannel("A"), background=bg)
        elif image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buf, "JPEG", quality=quality, optimize=True)
    elif pil_format == "WEBP":
        lossless = image.mode in ("RGBA", "LA", "L")
        image.save(buf, "WEBP", lossless=lossless, quality=quality if not lossless else 90, method=4)
    else:
        info = None
        if meta:
            info = PngImagePlugin.PngInfo()
            for key, value in meta.items():
                info.add_text(key, value)
        image.save(buf, "PNG", pnginfo=info, compress_level=6)
    return buf.getvalue()


def checkerboard(size: tuple[int, int], square: int = 16) -> Image.Image:
    """A grey checkerboard, the usual 'transparent' preview backdrop."""
    width, height = size
    ys, xs = np.indices((height, width))
    board = (((xs // square) + (ys // square)) % 2).astype(np.uint8)
    arr = np.where(board[..., None] == 1, np.uint8(204), np.uint8(255))
    return Image.fromarray(np.repeat(arr, 3, axis=2), "RGB")


def preview(image: Image.Image) -> Image.Image:
    """An RGBA output shown over a checkerboard (RGB); other modes unchanged."""
    if image.mode != "RGBA":
        return image
    board = checkerboard(image.size)
    return render(image.convert("RGB"), image.getchannel("A"), background=board)
