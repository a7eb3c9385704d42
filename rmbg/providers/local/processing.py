"""Pre- and post-processing shared by every local backend (torch, ONNX, OpenVINO).

Pure numpy + PIL, driven only by a ModelSpec, so the ONNX path needs no
torch. Shapes: the network input is float32 [1, 3, h, w]; the network's mask
is float32 [h, w] (probabilities after `finish()`); the result is a mode "L"
PIL image at the original size.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from ...image.arrays import opencv
from ...image.bands import resize
from ...types import Matte, ModelSpec

_PIL_FILTERS = {
    "bilinear_antialias": Image.Resampling.BILINEAR,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a 1-D linear resize, align_corners=False.

    Matches torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False, antialias=False): src = (dst + 0.5) * n_in / n_out - 0.5,
    clamped at 0, neighbours clamped at the edge.
    """
    scale = np.float32(n_in / n_out)
    src = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    return lo, hi, frac


def resize_bilinear(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an [H, W] or [H, W, C] array to size=(h, w), float32 out.

    Separable: rows first, then columns; only the h x w source pixels that
    are needed are ever converted to float.

    A 2-D map that grows along both axes (a 1024x1024 mask going back to a
    12 MP photo) is handed to PIL's mode-"F" bilinear instead, about twice as
    fast: when upscaling, PIL's triangle filter has support 1 and clips its
    window at the borders, which is exactly align_corners=False with edge
    clamping (agrees with torch to ~1e-6).
    """
    h_out, w_out = size
    h_in, w_in = arr.shape[:2]
    if (h_in, w_in) == (h_out, w_out):  # src == dst exactly: the identity
        return arr.astype(np.float32)
    fast = _opencv_bilinear(arr, size)
    if fast is not None:
        return fast
    if arr.ndim == 2 and h_out >= h_in and w_out >= w_in:
        grey = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), "F")
        return np.asarray(grey.resize((w_out, h_out), Image.Resampling.BILINEAR))
    lo_r, hi_r, frac = _axis_weights(h_in, h_out)
    frac_r = frac.reshape((-1,) + (1,) * (arr.ndim - 1))
    lo_c, hi_c, frac = _axis_weights(w_in, w_out)
    frac_c = frac.reshape((1, -1) + (1,) * (arr.ndim - 2))
    # Gather the needed rows and columns in the input dtype (uint8 for a
    # photo) before any float work; the arithmetic is the same rows-then-
    # columns formula, element by element, so the result is bit-identical.
    top, bottom = arr[lo_r], arr[hi_r]

    def rows_at(cols: np.ndarray) -> np.ndarray:
        upper = top[:, cols].astype(np.float32)
        return upper + (bottom[:, cols].astype(np.float32) - upper) * frac_r

    left = rows_at(lo_c)
    return left + (rows_at(hi_c) - left) * frac_c


def _opencv_bilinear(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """OpenCV's INTER_LINEAR on float32 where OpenCV is installed (the app's install and the video
    extra have it), else None. Same formula (half-pixel centres, edges clamped, two taps whatever
    the scale), many times faster than the numpy gathers, within 1e-4 of the range of torch's
    (OpenCV rounds the source positions its own way). An input over OPENCV_MAX_GROWTH times the
    output's pixels (a 12 MP photo going to 1024x1024) is not copied whole to floats: it goes by
    bands of output rows (`_by_bands`); such a 2-D map keeps the numpy path."""
    h_out, w_out = size
    h_in, w_in = arr.shape[:2]
    cv2 = opencv()
    if cv2 is None or (arr.ndim == 3 and arr.shape[2] > 4):
        return None
    if h_in * w_in > OPENCV_MAX_GROWTH * h_out * w_out:
        # a matte shrunk to a small photo is cheap in numpy, and numpy's is torch's to ~1e-6 (the
        # min-max stretch after it magnifies any difference); a photo shrunk to the network's input is not
        return _by_bands(cv2, arr, size) if arr.ndim == 3 else None
    out = cv2.resize(np.asarray(arr, dtype=np.float32), (w_out, h_out), interpolation=cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.float32).reshape((h_out, w_out, *arr.shape[2:]))


def _by_bands(cv2: ModuleType, arr: np.ndarray, size: tuple[int, int], band: int = 128) -> np.ndarray:
    """The same resize, `band` output rows at a time: the input rows they read, as floats, resized
    along the width only by OpenCV (their count unchanged: an exact copy down that axis), then
    blended down the height as the numpy path does. At most a band's rows are floats at once."""
    h_out, w_out = size
    lo, hi, frac = _axis_weights(arr.shape[0], h_out)
    out = np.empty((h_out, w_out, *arr.shape[2:]), dtype=np.float32)
    for r0 in range(0, h_out, band):
        r1 = min(h_out, r0 + band)
        first, last = int(lo[r0]), int(hi[r1 - 1]) + 1
        rows = cv2.resize(arr[first:last].astype(np.float32), (w_out, last - first), interpolation=cv2.INTER_LINEAR)
        rows = rows.reshape((last - first, w_out, *arr.shape[2:]))
        top, bottom = rows[lo[r0:r1] - first], rows[hi[r0:r1] - first]
        out[r0:r1] = top + (bottom - top) * frac[r0:r1].reshape((-1,) + (1,) * (arr.ndim - 1))
    return out


OPENCV_MAX_GROWTH = 4  # input pixels per output pixel up to which OpenCV resizes (see _opencv_bilinear)


def preprocess(image: Image.Image, spec: ModelSpec) -> np.ndarray:
    """RGB PIL image -> normalised float32 [1, 3, h, w] network input."""
    h, w = spec.input_size
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if spec.resize_in == "bilinear":
        x = resize_bilinear(np.asarray(rgb), (h, w))
    else:
        x = np.asarray(resize(rgb, (w, h), _PIL_FILTERS[spec.resize_in]), dtype=np.float32)
    if spec.input_scale == "max":
        peak = float(x.max())
        divisor = peak if peak > 0 else 1.0
    else:
        divisor = 255.0
    # (x / divisor - mean) / std, fused into one multiply-subtract per channel
    # that also writes the CHW layout (equal up to float32 rounding).
    out = np.empty((1, 3, h, w), dtype=np.float32)
    for c in range(3):
        np.multiply(x[..., c], np.float32(1.0 / (divisor * spec.std[c])), out=out[0, c])
        out[0, c] -= np.float32(spec.mean[c] / spec.std[c])
    return out


def select_output(raw: Any, spec: ModelSpec) -> Any:
    """Follow spec.output_path through nested lists/tuples; then take [0, 0]
    of the [B, 1, h, w] tensor/array, giving [h, w]."""
    out = raw
    for index in spec.output_path:
        out = out[index]
    return out[0, 0]


def finish(pred: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Apply the output activation: float32 [h, w] probabilities."""
    pred = np.asarray(pred, dtype=np.float32)
    if spec.activation == "sigmoid":
        pred = 1.0 / (1.0 + np.exp(-pred))
    return pred


def postprocess(prob: np.ndarray, spec: ModelSpec, size: tuple[int, int]) -> Image.Image:
    """Probabilities [h, w] -> mode "L" matte at size=(width, height)."""
    width, height = size
    if spec.quantize_first:
        small = Image.fromarray(_stretched_uint8(np.array(prob, dtype=np.float32), spec.minmax), "L")  # a copy
        if small.size == (width, height):
            return small
        return resize(small, (width, height), _PIL_FILTERS[spec.resize_out])
    return Image.fromarray(_stretched_uint8(resize_bilinear(prob, (height, width)), spec.minmax), "L")


def _stretched_uint8(x: np.ndarray, minmax: bool) -> np.ndarray:
    """A float32 map as uint8: with `minmax` stretched to [0, 1] first ((x - min) / (max - min);
    a constant map is all background), then x 255, clipped to 0-255 and truncated (as torch's
    .byte() and numpy's astype do). Done in place in x where it is writeable (else in one new
    buffer): a 12 MP matte holds one float32 map (48 MB) at a time instead of up to three."""
    out = x if x.flags.writeable else np.empty_like(x)
    if minmax:
        lo, hi = float(x.min()), float(x.max())
        if hi <= lo:  # a constant map has no foreground to stretch: all background
            return np.zeros(x.shape, np.uint8)
        np.subtract(x, np.float32(lo), out=out)
        np.divide(out, np.float32(hi - lo), out=out)
        x = out
    np.multiply(x, np.float32(255.0), out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def run_stages(stages: Any, image: Image.Image, meta: Mapping[str, str], threads: int = 0) -> Matte:
    """The shared local inference path, for any backend (torch, ONNX, OpenVINO):
    stages.preprocess -> stages.forward (under the pool's device lock) ->
    stages.postprocess, timed. On the CPU (a forward on `threads` from the thread
    budget) the matte takes the device and its threads once, before its
    preprocess, and keeps them to the end of its postprocess: its banded resizes
    run on the threads it holds instead of queueing again, between its stages,
    behind other requests' PNG bands and edge estimates (issue #46). On a GPU only
    the forward holds the device. The time spent waiting for the device (another
    model's forward) or for the threads is not counted: the seconds, and the
    compute estimate made from them on stages.device, are this model's own."""
    from ...money.pricing import compute_cost
    from .pool import POOL

    with POOL.forward(threads) if threads > 0 else nullcontext():
        start = time.perf_counter()
        x = stages.preprocess(image)
        asked = time.perf_counter()
        with POOL.forward(threads):  # a GPU's device; on the CPU already held, so no wait
            waited = time.perf_counter() - asked
            pred = stages.forward(x)
        alpha = stages.postprocess(pred, image.size)
        seconds = time.perf_counter() - start - waited
    device = stages.device
    return Matte(alpha=alpha, cost=compute_cost(seconds, device), seconds=seconds, meta={**meta, "device": device})
