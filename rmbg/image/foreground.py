"""Foreground colour estimation ("clean edge colours").

A semi-transparent pixel of the input still carries the old background's
colour. estimate_foreground() recovers the foreground colour by blur-fusion
(Forte & Pitie, "Approximate Fast Foreground Colour Estimation", ICIP 2021):
two passes of box-filtered foreground/background means, wide then narrow.
Pure numpy; box filters are O(pixels) whatever the radius.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

import numpy as np
from PIL import Image

from ..threads import BUDGET
from .arrays import opencv, rgba

FOREGROUND_RADII = (90, 6)  # blur-fusion passes: box radius in pixels, wide then narrow
_EPS = np.float32(1e-5)


def check_alpha(image: Image.Image, alpha: Image.Image) -> None:
    if alpha.mode != "L" or alpha.size != image.size:
        raise ValueError(f"alpha must be mode L of size {image.size}, got {alpha.mode} {alpha.size}")


def _window_weights(n: int, r: int) -> np.ndarray:
    """1 / (number of positions in the clamped window j-r..j+r), for j < n."""
    idx = np.arange(n)
    counts = np.minimum(idx + r + 1, n) - np.maximum(idx - r, 0)
    weights: np.ndarray = (1.0 / counts).astype(np.float32)
    return weights


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
    out / tmp: optional buffers of x's shape (the result; scratch).

    With OpenCV: its box sum with zeros outside (summed in float64, on the calling thread,
    the GIL released), divided by each window's count of pixels inside, about 4x faster
    than the cumulative sums below and about 1e-5 from them (their float32 rounding grows with
    the row: 2.4e-5 on 1500-pixel rows; tests/test_cutout_estimated.py)."""
    cv2 = opencv()
    if cv2 is not None:
        out = np.empty_like(x) if out is None else out
        cv2.boxFilter(x, cv2.CV_32F, (2 * r + 1, 2 * r + 1), dst=out, normalize=False, borderType=cv2.BORDER_CONSTANT)
        out *= _window_weights(x.shape[0], r)[:, None]
        out *= _window_weights(x.shape[1], r)
        return out
    rows = _box_rows(x, r, np.empty_like(x) if tmp is None else tmp)
    return _box_columns(rows, r, np.empty_like(x) if out is None else out)


def _box_all(planes: list[np.ndarray], r: int, outs: list[np.ndarray], pool: ThreadPoolExecutor) -> list[np.ndarray]:
    """_box2d of every plane into `outs`, planes in parallel threads, with one
    scratch buffer per thread (fresh 12 MP buffers cost page faults)."""
    scratch: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
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
    f: np.ndarray = i - a * fb
    f -= (1 - a) * bb
    f *= a
    f += fb
    np.clip(f, 0, 1, out=f)
    return f


def _blur_fusion(
    image: np.ndarray,
    alpha: np.ndarray,
    pool: ThreadPoolExecutor,
    *,
    means: bool = False,
    radii: tuple[int, int] = FOREGROUND_RADII,
) -> np.ndarray:
    """Foreground colours (HxWx3 uint8, rounded) from uint8 image (HxWx3) and alpha (HxW);
    with `means`, the second pass's foreground and background means instead (HxWx6 uint8:
    Fb's RGB then Bb's, rounded), the smooth fields _fuse turns into colours.

    Pass 1 (r = 90) starts from F = B = I, so box(B (1-a)) = box(I) - box(I a)
    and box(1-a) = 1 - box(a); pass 2 (r = 6) refines with F and Bb of pass 1.
    Planes (HxW float32) are filtered in parallel threads, and the per-pixel
    formulas run over row strips in parallel (numpy releases the GIL).
    """
    wide, narrow = radii
    height, width = alpha.shape
    i = [np.multiply(image[..., c], np.float32(1 / 255), dtype=np.float32) for c in range(3)]
    a = np.multiply(alpha, np.float32(1 / 255), dtype=np.float32)
    strips = _strips(height, width)
    planes = [np.empty_like(a) for _ in range(6)]
    out = np.empty((height, width, 6 if means else 3), np.uint8)

    def each_strip(work: Callable[[slice], object]) -> None:
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
            fb, bb = sums[c][s] * to_f, sums[3 + c][s] * to_b
            if means:
                out[s, :, c], out[s, :, 3 + c] = (np.rint(np.clip(m, 0, 1) * 255) for m in (fb, bb))
                continue
            f = _fuse(i[c][s], a[s], fb, bb)
            np.rint(f * 255, out=f)
            out[s, :, c] = f

    each_strip(second)
    return out


# Pixels (rows x width, margins included) blur-fusion works on at once: about 19
# float32 planes of this size are live, so a tile costs ~230 MB whatever the photo;
# a 12 MP photo is done in tiles of ~560 rows plus 96-row margins (about 1.3x the work).
TILE_PIXELS = 3_000_000


# Above this many pixels in the soft region's box, blur-fusion's means (smooth fields:
# box means of radius 90 and 6) are taken on the box reduced k-fold (k the smallest whole
# factor that brings it under this size, the radii divided by k) and read back at each
# soft pixel from its k x k block; only the last, per-pixel step (_fuse) runs at full
# size. A 12 MP cut-out's estimate then takes about 0.3 s instead of 0.85 s, within
# 0.3 grey levels of the full-size one on average (archived benchmarks/cutout_colour.py).
WORK_PIXELS = 1_500_000
FUSE_RUN = 32_768  # soft pixels per run of _fuse_reduced's per-pixel step: its temporaries stay in cache
THREADED_PIXELS = 300_000


def _threads_for(pixels: int) -> AbstractContextManager[int]:
    """The threads for work on `pixels`: two from the budget on a region from about a 854x480
    frame up (each plane's box sums run with the GIL released in OpenCV); below it the GIL
    between numpy's many small calls costs more than a second core gives, and one worker
    stands in for the caller's own thread (which waits on the pool), taking nothing."""
    return BUDGET.take(2) if pixels > THREADED_PIXELS else nullcontext(1)


def _fuse_reduced(
    photo: Image.Image,
    alpha: Image.Image,
    box: tuple[int, int, int, int],
    out: np.ndarray,
    rgb: np.ndarray,
    a8: np.ndarray,
    soft: np.ndarray,
    pool: ThreadPoolExecutor,
) -> None:
    """Write into `out` (HxWxC, C >= 3, contiguous; colour in the first three) the foreground
    colours of the `soft` pixels, all inside `box` (x0, y0, x1, y1): the means of _blur_fusion
    on the box reduced k-fold, then _fuse at full size, over runs of soft pixels in the pool's
    threads (photo: the RGB image; rgb, a8: the photo's and the matte's pixels)."""
    x0, y0, x1, y1 = box
    k = math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / WORK_PIXELS))
    small, matte = pool.map(lambda im: np.asarray(im.reduce(k, box)), (photo, alpha))  # in Pillow, no crop copied
    radii = (max(round(FOREGROUND_RADII[0] / k), 1), max(round(FOREGROUND_RADII[1] / k), 1))
    fields = _blur_fusion(small, matte, pool, means=True, radii=radii).reshape(-1, 6)
    fields_width = -(-(x1 - x0) // k)
    flat, flat_rgb, flat_a, width = out.reshape(-1, out.shape[2]), rgb.reshape(-1, 3), a8.reshape(-1), soft.shape[1]
    scale = np.float32(1 / 255)

    def fuse(run: np.ndarray) -> None:
        """One run of soft pixels (flat indices, row-major): each one's k x k block of means."""
        ys, xs = np.divmod(run, width)
        means = fields[((ys - y0) // k) * fields_width + (xs - x0) // k] * scale
        f = _fuse(flat_rgb[run] * scale, flat_a[run, None] * scale, means[:, :3], means[:, 3:])
        flat[run, :3] = np.rint(f * 255)

    idx = np.flatnonzero(soft)  # the soft pixels of the whole photo (all inside the box)
    list(pool.map(fuse, np.array_split(idx, max(1, idx.size // FUSE_RUN))))


def estimate_foreground(image: Image.Image, alpha: Image.Image, *, tile_pixels: int = TILE_PIXELS) -> Image.Image:
    """The foreground colour of every pixel (RGB, uint8, rounded) from an image and its matte (L).

    Where alpha is 255 the result is the image exactly; where it is 0 the
    image is kept too (the colour there is never seen). Only the bounding box
    of the soft pixels, widened by the blur radii, is computed; the result
    there is the same as over the whole image. The box is done in row tiles
    of about `tile_pixels`, each with sum(FOREGROUND_RADII) rows of margin
    (all a result row depends on), so memory is bounded and the result is the
    same as in one piece. A box over WORK_PIXELS takes the means at that size
    (_fuse_reduced).
    """
    check_alpha(image, alpha)
    photo = image if image.mode == "RGB" else image.convert("RGB")
    rgb = np.asarray(photo)
    out = rgb.copy()
    _estimate_into(out, photo, alpha, rgb, np.asarray(alpha), tile_pixels)
    return Image.fromarray(out, "RGB")


def cutout_estimated(image: Image.Image, alpha: Image.Image, *, tile_pixels: int = TILE_PIXELS) -> Image.Image:
    """The transparent cut-out with estimated edge colours, RGBA: the same pixels as
    rmbg.image.compose.cutout(estimate_foreground(image, alpha), alpha), made in one array
    (the photo's pixels read once, no RGB copy, no second pass over Pillow's planes)."""
    check_alpha(image, alpha)
    photo = image if image.mode == "RGB" else image.convert("RGB")
    photo.load()  # a lazily opened file is read here: Pillow's first load is not safe from several threads
    width, height = image.size
    a8 = np.asarray(alpha)
    rgb, out = np.empty((height, width, 3), np.uint8), np.empty((height, width, 4), np.uint8)

    def band(rows: slice) -> None:
        """The photo's rows as an array (Pillow's copy out), and the cut-out's."""
        part = np.asarray(photo.crop((0, rows.start, width, rows.stop)))
        rgb[rows] = part
        rgba(part, a8[rows], out[rows])

    with _threads_for(width * height) as granted:
        with ThreadPoolExecutor(granted, thread_name_prefix="rmbg-cpu") as pool:
            step = -(-height // (4 * granted))
            list(pool.map(band, [slice(top, min(top + step, height)) for top in range(0, height, step)]))
        _estimate_into(out, photo, alpha, rgb, a8, tile_pixels)
    return Image.frombuffer("RGBA", image.size, out, "raw", "RGBA", 0, 1)


def _estimate_into(
    out: np.ndarray, photo: Image.Image, alpha: Image.Image, rgb: np.ndarray, a8: np.ndarray, tile_pixels: int
) -> None:
    """Write the soft pixels' foreground colours into `out` (HxWxC, C >= 3, contiguous; colour
    in the first three), nothing else (photo: the RGB image; rgb, a8: its and the matte's pixels)."""
    soft = (a8 - np.uint8(1)) < 254  # 0 < alpha < 255: 0 wraps round to 255
    rows, cols = np.flatnonzero(soft.any(axis=1)), np.flatnonzero(soft.any(axis=0))
    if not rows.size:
        return
    margin = sum(FOREGROUND_RADII)
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, a8.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, a8.shape[1])
    step = max(tile_pixels // max(x1 - x0, 1) - 2 * margin, 32)
    with (
        _threads_for((x1 - x0) * (y1 - y0)) as granted,
        ThreadPoolExecutor(granted, thread_name_prefix="rmbg-cpu") as pool,
    ):
        if (x1 - x0) * (y1 - y0) > WORK_PIXELS:
            _fuse_reduced(photo, alpha, (x0, y0, x1, y1), out, rgb, a8, soft, pool)
            return
        for top in range(y0, y1, step):
            bottom = min(top + step, y1)
            t0, t1 = max(top - margin, y0), min(bottom + margin, y1)
            f8 = _blur_fusion(rgb[t0:t1, x0:x1], a8[t0:t1, x0:x1], pool)[top - t0 : bottom - t0]
            np.copyto(out[top:bottom, x0:x1, :3], f8, where=soft[top:bottom, x0:x1, None])
