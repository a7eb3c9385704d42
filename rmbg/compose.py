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
import queue
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


def _window_weights(n: int, r: int) -> np.ndarray:
    """1 / (number of positions in the clamped window j-r..j+r), for j < n."""
    idx = np.arange(n)
    return (1.0 / (np.minimum(idx + r + 1, n) - np.maximum(idx - r, 0))).astype(np.float32)


def _box_rows(x: np.ndarray, r: int, out: np.ndarray, step: int = 32) -> np.ndarray:
    """Mean of x[y, j-r..j+r] along each row of a 2-D float32 array, the window
    clamped at the ends; from cumulative sums (O(n) for any r), `step` rows at
    a time so the buffer stays in cache."""
    n = x.shape[1]
    weights = _window_weights(n, r)
    whole = max(n - r - 1, 0)  # positions whose window ends before the last one
    buf = np.zeros((step, n + 1), np.float32)
    for start in range(0, x.shape[0], step):
        src, dst = x[start : start + step], out[start : start + step]
        sums = buf[: src.shape[0]]
        np.cumsum(src, axis=1, out=sums[:, 1:])
        dst[:, :whole] = sums[:, r + 1 : r + 1 + whole]
        dst[:, whole:] = sums[:, n : n + 1]
        if n - r > 1:
            dst[:, r + 1 :] -= sums[:, 1 : n - r]
        dst *= weights
    return out


def _box_columns(x: np.ndarray, r: int, out: np.ndarray) -> np.ndarray:
    """Mean of x[y-r..y+r, j] down each column, the window clamped at the ends:
    a running sum over whole rows (one add and one subtract per row)."""
    n = x.shape[0]
    weights = _window_weights(n, r)
    acc = x[: min(r, n)].sum(axis=0, dtype=np.float32)
    for y in range(n):
        if y + r < n:
            acc += x[y + r]
        if y > r:
            acc -= x[y - r - 1]
        np.multiply(acc, weights[y], out=out[y])
    return out


def _box2d(x: np.ndarray, r: int, out: np.ndarray | None = None, tmp: np.ndarray | None = None) -> np.ndarray:
    """(2r+1)x(2r+1) mean filter of a 2-D float32 array, clamped at the borders.
    out / tmp: optional buffers of x's shape (the result; scratch)."""
    rows = _box_rows(x, r, np.empty_like(x) if tmp is None else tmp)
    return _box_columns(rows, r, np.empty_like(x) if out is None else out)


def _box_all(planes: list[np.ndarray], r: int, outs: list[np.ndarray], pool: ThreadPoolExecutor) -> list[np.ndarray]:
    """_box2d of every plane into `outs`, planes in parallel threads, with one
    scratch buffer per thread (fresh 12 MP buffers cost page faults)."""
    scratch: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(2):
        scratch.put(np.empty_like(planes[0]))

    def one(k: int) -> np.ndarray:
        tmp = scratch.get()
        try:
            return _box2d(planes[k], r, outs[k], tmp)
        finally:
            scratch.put(tmp)

    return list(pool.map(one, range(len(planes))))


def _strips(height: int, width: int) -> list[slice]:
    """Row strips of about 64k pixels: elementwise work on them stays in cache."""
    step = max(1, 65536 // max(width, 1))
    return [slice(y, y + step) for y in range(0, height, step)]


def _fuse(i: np.ndarray, a: np.ndarray, fb: np.ndarray, bb: np.ndarray) -> np.ndarray:
    """F = clip(Fb + a (I - a Fb - (1 - a) Bb), 0, 1), elementwise."""
    f = i - a * fb
    f -= (1 - a) * bb
    f *= a
    f += fb
    return np.clip(f, 0, 1, out=f)


def _blur_fusion(image: np.ndarray, alpha: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """Foreground colours (HxWx3 uint8, rounded) from uint8 image (HxWx3) and alpha (HxW).

    Pass 1 (r = 90) starts from F = B = I, so box(B (1-a)) = box(I) - box(I a)
    and box(1-a) = 1 - box(a); pass 2 (r = 6) refines with F and Bb of pass 1.
    Planes (HxW float32) are filtered in parallel threads, and the per-pixel
    formulas run over row strips in parallel (numpy releases the GIL).
    """
    wide, narrow = FOREGROUND_RADII
    height, width = alpha.shape
    i = [np.multiply(image[..., c], np.float32(1 / 255), dtype=np.float32) for c in range(3)]
    a = np.multiply(alpha, np.float32(1 / 255), dtype=np.float32)
    strips = _strips(height, width)
    planes = [np.empty_like(a) for _ in range(6)]
    out = np.empty((height, width, 3), np.uint8)

    def each_strip(work) -> None:
        list(pool.map(lambda part: [work(s) for s in part], [strips[k::2] for k in range(2)]))

    each_strip(lambda s: [np.multiply(i[c][s], a[s], out=planes[c][s]) for c in range(3)])
    sums = _box_all([*planes[:3], *i, a], wide, [np.empty_like(a) for _ in range(7)], pool)

    def weights(s: slice) -> tuple[np.ndarray, np.ndarray]:
        mean_a = np.clip(sums[6][s], 0, 1)  # float32 sums may stray ~1e-5 past [0, 1]
        return 1 / (mean_a + _EPS), 1 / (1 - mean_a + _EPS)

    def first(s: slice) -> None:
        to_f, to_b = weights(s)
        for c in range(3):
            fb, bb = sums[c][s] * to_f, (sums[3 + c][s] - sums[c][s]) * to_b
            np.multiply(_fuse(i[c][s], a[s], fb, bb), a[s], out=planes[c][s])
            np.multiply(bb, 1 - a[s], out=planes[3 + c][s])

    each_strip(first)
    sums = _box_all([*planes, a], narrow, sums, pool)  # pass 1's sums are spent: reuse them

    def second(s: slice) -> None:
        to_f, to_b = weights(s)
        for c in range(3):
            f = _fuse(i[c][s], a[s], sums[c][s] * to_f, sums[3 + c][s] * to_b)
            np.rint(f * 255, out=f)
            out[s, :, c] = f

    each_strip(second)
    return out


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
        with ThreadPoolExecutor(max_workers=2) as pool:
            f8 = _blur_fusion(rgb[y0:y1, x0:x1], a8[y0:y1, x0:x1], pool)
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
