"""The per-pixel steps of the temporal filter (rmbg.video.smooth): grey levels, optical flow as
sampling positions, moving a neighbour's matte and grey levels along it, logits, the weights' table,
the in-place weighted sums, and the two guards' steps (thin structures, the per-frame bound).
OpenCV where it is installed (rmbg.image.arrays.opencv), numpy and PIL otherwise."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..image.arrays import opencv

_LEVELS = (np.arange(256, dtype=np.float64) + 0.5) / 256
LOGIT = np.log(_LEVELS / (1 - _LEVELS)).astype(np.float32)  # alpha 0..255 -> logit; sigmoid * 256 - 0.5 inverts it
FLOW_MIN_SIDE = 12  # DIS refuses a frame with neither side this long (OpenCV's dis_flow.cpp)
FLOW_MIN_SHORT = 8  # and one whose shorter side is under this (5x300: "must have either width or height >= 12")


def optical_flow() -> Any:
    """A new OpenCV DIS optical flow (ULTRAFAST), or None without OpenCV. New for every flow, never
    kept: DIS lowers its own finest scale for good on a frame too small for it (up to about 80 px
    across: 0 instead of the preset's 2), so a kept one would move every later clip's frames by up
    to ~3 px differently after one small clip, and a matte would depend on what its process or
    thread smoothed before. Making one costs about 12 microseconds, against milliseconds for a flow."""
    cv2 = opencv()
    if cv2 is None:
        return None
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    cv2 = opencv()
    if cv2 is None:
        return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


def flow_between(a: np.ndarray, b: np.ndarray, use_flow: bool) -> np.ndarray | None:
    """Where each pixel of grey frame a is in grey frame b, as positions (H x W x 2 float32, x then y:
    the pixel's own position plus the flow), or None without flow (also for a frame too small for
    DIS on both sides: its neighbours are then taken where they are, as without OpenCV)."""
    fits = max(a.shape[:2]) >= FLOW_MIN_SIDE and min(a.shape[:2]) >= FLOW_MIN_SHORT
    dis = optical_flow() if use_flow and fits else None
    if dis is None:
        return None
    flow = np.asarray(dis.calc(a, b, None), dtype=np.float32)
    flow += grid(flow.shape[0], flow.shape[1])
    return flow


def moved(planes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A planes_of image sampled at `positions` (H x W x 2 float32; bilinear, edges repeated,
    rounded): its matte and grey levels, each contiguous."""
    import cv2

    both = cv2.remap(planes, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
    return np.asarray(cv2.extractChannel(both, 0)), np.asarray(cv2.extractChannel(both, 1))


@functools.lru_cache(maxsize=4)
def grid(h: int, w: int) -> np.ndarray:
    """Each pixel's own position (x, y), H x W x 2 float32."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Positions a -> c from a -> b (`first`) and b -> c (`then`): where a's pixel lands in b,
    looked up in `then` at the nearest pixel (a flow changes little within a pixel; half the
    time of a bilinear look-up)."""
    import cv2

    return np.asarray(cv2.remap(then, first, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE))  # type: ignore[call-overload]


def planes_of(alpha: np.ndarray, grey: np.ndarray) -> np.ndarray | None:
    """alpha and grey as one 4-channel uint8 image, or None without OpenCV (nothing is moved then)."""
    cv2 = opencv()
    if cv2 is None:
        return None
    return np.asarray(cv2.merge([alpha, grey, alpha, grey]))


def logits_of(alpha: np.ndarray) -> np.ndarray:
    """LOGIT[alpha], float32."""
    cv2 = opencv()
    if cv2 is None:
        return LOGIT[alpha]
    return np.asarray(cv2.LUT(alpha, LOGIT))


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """The mean over the (2 radius + 1)^2 box around each pixel (edges repeated), by running sums."""
    if radius <= 0:
        return x
    for axis in (0, 1):
        padded = np.pad(x, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        sums = np.cumsum(padded, axis=axis, dtype=np.float64)
        n = x.shape[axis]
        upper = np.take(sums, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
        lower = np.take(sums, np.arange(0, n), axis=axis)
        x = ((upper - lower) / (2 * radius + 1)).astype(np.float32)
    return x


@functools.lru_cache(maxsize=8)
def weight_table(motion: float) -> np.ndarray:
    """w for each whole grey-level difference 0..255: exp(-d / motion), float32."""
    return np.exp(-np.arange(256, dtype=np.float64) / motion).astype(np.float32)


def accumulate(num: np.ndarray, den: np.ndarray, w: np.ndarray, logits: np.ndarray) -> None:
    """num += w * logits and den += w, in place (float32; OpenCV: one pass each, no temporary)."""
    cv2 = opencv()
    if cv2 is None:
        num += w * logits
        den += w
    else:
        cv2.accumulateProduct(w, logits, num)
        cv2.accumulate(w, den)


def thinness(alpha: np.ndarray, size: int) -> np.ndarray:
    """How much of each pixel's alpha belongs to a structure narrower than `size` px (uint8): the
    larger of the white top-hat (what an opening by a size x size square takes away: a thin line,
    a strand) and the black top-hat (what a closing fills: a thin gap)."""
    cv2 = opencv()
    if cv2 is None:
        image = Image.fromarray(alpha, "L")
        opened = image.filter(ImageFilter.MinFilter(size)).filter(ImageFilter.MaxFilter(size))
        closed = image.filter(ImageFilter.MaxFilter(size)).filter(ImageFilter.MinFilter(size))
        a = alpha.astype(np.int16)
        return np.maximum(a - np.asarray(opened), np.asarray(closed) - a).astype(np.uint8)
    square = np.ones((size, size), np.uint8)
    top = cv2.morphologyEx(alpha, cv2.MORPH_TOPHAT, square, borderType=cv2.BORDER_REPLICATE)
    black = cv2.morphologyEx(alpha, cv2.MORPH_BLACKHAT, square, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.max(top, black))


KEPT = (1 - np.arange(256, dtype=np.float64) / 255).astype(np.float32)  # thinness -> what is left of w


def guarded(own: np.ndarray, smoothed: np.ndarray, limit: float) -> np.ndarray:
    """`smoothed`, or own + k (smoothed - own) with the largest k in [0, 1] (to 1/256) for which the
    two cut at 0.5 differ in at most `limit` of their union (SmoothParams.guard)."""

    def within(candidate: np.ndarray) -> bool:
        a, b = own >= 128, candidate >= 128
        union = max(int(np.count_nonzero(a | b)), 1)
        return int(np.count_nonzero(a != b)) <= limit * union

    if within(smoothed):
        return smoothed
    change = smoothed.astype(np.float32) - own
    lo, hi, best = 0.0, 1.0, own
    for _ in range(8):
        mid = (lo + hi) / 2
        candidate = np.clip(np.rint(own + mid * change), 0, 255).astype(np.uint8)
        if within(candidate):
            lo, best = mid, candidate
        else:
            hi = mid
    return best
