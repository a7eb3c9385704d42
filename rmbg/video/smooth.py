"""Temporal smoothing of mattes: a motion-compensated, motion-aware exponential
blend, so a matte does not flicker where the picture does not change.

Per pixel, the smoothed alpha is

    s_t = w * warp(s_{t-1}) + (1 - w) * a_t,    w = keep * exp(-d / motion)

where a_t is the model's alpha for frame t, warp() moves the previous
smoothed alpha along the optical flow from frame t back to frame t-1 (DIS
flow, OpenCV's `DISOpticalFlow`, when `cv2` imports; without it there is no
warp), and d is how much the picture still differs there after that move:
the absolute difference of the grey levels (0-255) of frame t and the warped
frame t-1, box-blurred over `blur` pixels. Where the scene is still, or moved
as the flow says, w is near `keep` and the model's frame-to-frame jitter is
averaged out along the motion; where the flow is wrong (occlusions, new
content), w falls towards 0 and the matte follows the model at once.

Pure numpy plus OpenCV's flow (optional). The state (the previous grey frame
and smoothed alpha) is a value passed from frame to frame (`SmoothState`), so
a clip cut into chunks, or handed between workers, smooths exactly as one
stream. The parameters were picked from benchmarks/video.py's measurements
on the DAVIS 2016 clips (docs/video.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SmoothParams:
    """keep: the previous matte's weight where the picture matches (0 = no smoothing);
    motion: the grey-level difference at which that weight has fallen to keep/e;
    blur: the box (pixels) over which the difference is averaged;
    flow: follow the motion with optical flow when OpenCV is installed."""

    keep: float = 0.9
    motion: float = 20.0
    blur: int = 9
    flow: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep < 1.0:
            raise ValueError(f"keep must be in [0, 1), got {self.keep}")
        if self.motion <= 0 or self.blur < 1:
            raise ValueError("motion must be > 0 and blur >= 1")


@dataclass(frozen=True)
class SmoothState:
    """What the filter carries from one frame to the next (None before the first frame)."""

    grey: np.ndarray | None = None
    alpha: np.ndarray | None = None


_local = threading.local()


def optical_flow() -> Any:
    """OpenCV's DIS optical flow (one per thread), or None without OpenCV."""
    if not hasattr(_local, "dis"):
        try:
            import cv2
        except ImportError:
            _local.dis = None
        else:
            _local.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
    return _local.dis


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))


def _warp(grey: np.ndarray, state: SmoothState, use_flow: bool) -> tuple[np.ndarray, np.ndarray]:
    """(previous alpha, previous grey as float32), moved onto the current frame when flow is at hand."""
    assert state.grey is not None and state.alpha is not None
    dis = optical_flow() if use_flow else None
    if dis is None:
        return state.alpha, state.grey.astype(np.float32)
    import cv2

    flow = dis.calc(grey, state.grey, None)  # where each pixel of this frame was in the previous one
    h, w = grey.shape
    flow[..., 0] += np.arange(w, dtype=np.float32)[None, :]
    flow[..., 1] += np.arange(h, dtype=np.float32)[:, None]
    alpha = cv2.remap(state.alpha, flow[..., 0], flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    prev = cv2.remap(
        state.grey.astype(np.float32), flow[..., 0], flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return alpha, prev


def blend_weight(grey: np.ndarray, previous: np.ndarray, params: SmoothParams) -> np.ndarray:
    """w (float32, the frame's size) from the grey frame and the (warped) previous one."""
    change = box_mean(np.abs(grey.astype(np.float32) - previous), params.blur // 2)
    return (params.keep * np.exp(-change / params.motion)).astype(np.float32)


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


def smooth_step(
    state: SmoothState, rgb: np.ndarray, alpha: np.ndarray, params: SmoothParams = SmoothParams()
) -> tuple[np.ndarray, SmoothState]:
    """(smoothed alpha as uint8, the next state) for one frame: rgb H x W x 3 uint8, alpha H x W uint8."""
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha {alpha.shape[::-1]} and frame {rgb.shape[1::-1]} differ in size")
    if params.keep == 0:
        return alpha, state
    grey = grey_of(rgb)
    current = alpha.astype(np.float32)
    if state.grey is None or state.alpha is None or state.grey.shape != grey.shape:
        return alpha, SmoothState(grey, current)
    previous_alpha, previous_grey = _warp(grey, state, params.flow)
    w = blend_weight(grey, previous_grey, params)
    out = current + w * (previous_alpha - current)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), SmoothState(grey, out)


class TemporalSmoother:
    """smooth_step with its state kept: `smoother(rgb, alpha) -> alpha` frame after frame.

    `state` can be read and given back (e.g. to carry the filter across chunks)."""

    def __init__(self, params: SmoothParams = SmoothParams(), state: SmoothState = SmoothState()):
        self.params = params
        self.state = state

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        out, self.state = smooth_step(self.state, rgb, alpha, self.params)
        return out
