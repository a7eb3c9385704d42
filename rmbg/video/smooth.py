"""Temporal smoothing of mattes: a motion-compensated mean over a centred window
of frames, so a matte does not flicker where the subject does not change and
does not lag where it moves.

For frame t, each neighbour t+j of the window (j = -past..ahead, j != 0) is
moved onto frame t along the optical flow, and the smoothed matte is the
weighted mean, in the logit domain, of the model's matte of frame t and those
moved neighbours:

    s_t = sigmoid( (L_t + sum_j w_j * warp_j(L_{t+j})) / (1 + sum_j w_j) ),
    L = logit((alpha + 0.5) / 256),    w_j = exp(-d_j / motion)

where d_j is how much the picture still differs after the move: the absolute
difference of the grey levels (0-255) of frame t and the moved frame t+j,
box-averaged over `blur` pixels (and rounded to a whole grey level: w is
then a table look-up). Where the scene is still, or moved as the flow says,
w_j is near 1 and the model's frame-to-frame jitter is averaged out along
the motion; where the flow is wrong (occlusions, new content), w_j falls
towards 0 and the matte is the model's own. Because the window is centred
(frames after t count as much as frames before it), an edge that moves is not
pulled back towards where it was, as a causal filter (past frames only) pulls
it; the price is a delay of `ahead` frames: frame t comes out once frame
t+ahead has come in (or the clip has ended: `smooth_flush`).

Why the logit domain: its mean is the geometric mean of the odds, a soft
majority vote. A steady value, soft or not, is kept exactly (hair at 0.3 in
every frame stays 0.3: no edge is sharpened or thresholded), while one
neighbour that the flow misplaced at an edge pulls a confident 0 or 1 much
less than in a plain mean of alphas, so moving edges are not blurred by the
averaging. The parameters were picked from benchmarks/video.py's measurements
on the DAVIS 2016 clips (docs/video.md has the numbers and the alternatives
that were measured).

Flow: OpenCV's DIS optical flow (`DISOpticalFlow`, ULTRAFAST preset), computed once
per pair of consecutive frames in each direction as the frames come in; flow
to a frame two or more steps away is the composition of those steps. Without
OpenCV (or with `flow=False`) nothing is moved: the weights still drop where
the picture changes. The cost is two flows a frame, one move of each of the
four neighbours' matte and grey levels together (OpenCV's remap of a
4-channel uint8 image, its fastest kind; logits taken after the move), and a
composition of two steps for the two neighbours two frames away: about 31 ms
of CPU a frame at 854x480, each flow 6 ms of it (benchmarks/video_stages.py).
It is numpy and OpenCV on the CPU whether the model runs on a GPU or not (a
GPU flow would slot in at `flow_between`).

The state (the frames of the window: grey frame, the matte, the
flows to their neighbours, and the caller's tag for each frame not yet given
back) is a value (`SmoothState`) passed from call to call, so a clip cut into
chunks, or handed between workers, smooths exactly as one stream; memory is
bounded by the window (past + ahead + 1 frames), not the clip's length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from ..image.arrays import opencv


@dataclass(frozen=True)
class SmoothParams:
    """past / ahead: the frames before and after each frame that are averaged with it
    (0 and 0 = no smoothing; ahead is also the delay, in frames, before a frame comes out);
    motion: the grey-level difference (after the flow's move) at which a neighbour's weight has fallen to 1/e;
    blur: the box (pixels) over which that difference is averaged;
    flow: follow the motion with optical flow when OpenCV is installed."""

    past: int = 2
    ahead: int = 2
    motion: float = 20.0
    blur: int = 9
    flow: bool = True

    def __post_init__(self) -> None:
        if self.past < 0 or self.ahead < 0:
            raise ValueError(f"past and ahead must be >= 0, got {self.past} and {self.ahead}")
        if self.motion <= 0 or self.blur < 1:
            raise ValueError("motion must be > 0 and blur >= 1")

    @property
    def off(self) -> bool:
        return self.past == 0 and self.ahead == 0

    @property
    def reach(self) -> tuple[int, int]:
        """The frames before and after a frame that its smoothed matte depends on (their mattes, grey
        levels and the flows between consecutive ones; nothing older or later, `_smoothed`): a run of
        frames decoded with that many more on each side (fewer at the clip's ends) smooths exactly as
        in the whole stream (rmbg.video.chunks)."""
        return (0, 0) if self.off else (self.past, self.ahead)


@dataclass(frozen=True)
class WindowFrame:
    """One frame in the window: the caller's tag, its grey levels and the model's matte (uint8),
    the two again as one 4-channel image (matte, grey, matte, grey: what a neighbour moves in one
    remap, OpenCV's fastest kind; None when nothing is moved: without flow or OpenCV), and the
    flows as positions (H x W x 2 float32, where each pixel of this frame is in the other) to the
    previous and the next frame, once those are known (None without flow, and once no frame kept
    needs them)."""

    tag: Any
    grey: np.ndarray
    alpha: np.ndarray
    planes: np.ndarray | None = None
    back: np.ndarray | None = None
    fwd: np.ndarray | None = None


@dataclass(frozen=True)
class SmoothState:
    """What the filter carries from one call to the next: the last frames (at most
    past + ahead + 1), of which the last `pending` have not been given back yet."""

    window: tuple[WindowFrame, ...] = ()
    pending: int = 0


Ready = list[tuple[Any, np.ndarray]]  # (tag, smoothed alpha uint8), in the order the frames came in

_LEVELS = (np.arange(256, dtype=np.float64) + 0.5) / 256
LOGIT = np.log(_LEVELS / (1 - _LEVELS)).astype(np.float32)  # alpha 0..255 -> logit; sigmoid * 256 - 0.5 inverts it


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
    the pixel's own position plus the flow), or None without flow."""
    dis = optical_flow() if use_flow else None
    if dis is None:
        return None
    flow = np.asarray(dis.calc(a, b, None), dtype=np.float32)
    flow += _grid(flow.shape[0], flow.shape[1])
    return flow


def moved(planes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A planes_of image sampled at `positions` (H x W x 2 float32; bilinear, edges repeated,
    rounded): its matte and grey levels, each contiguous."""
    import cv2

    both = cv2.remap(planes, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
    return np.asarray(cv2.extractChannel(both, 0)), np.asarray(cv2.extractChannel(both, 1))


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
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


def neighbour_weight(grey: np.ndarray, other: np.ndarray, params: SmoothParams) -> np.ndarray:
    """w (float32, the frame's size) from frame t's grey levels and the neighbour's, moved onto
    frame t (both uint8): the absolute difference, box-averaged and rounded to a whole grey level,
    through `weight_table` (a grey level's rounding moves w by at most 2.5 % at motion 20)."""
    table = weight_table(params.motion)
    side = 2 * (params.blur // 2) + 1
    cv2 = opencv()
    if cv2 is None:
        diff = np.abs(grey.astype(np.int16) - other).astype(np.float32)
        change = np.rint(box_mean(diff, side // 2)).astype(np.uint8)
        return table[change]
    change = cv2.blur(cv2.absdiff(grey, other), (side, side), borderType=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.LUT(change, table))


def accumulate(num: np.ndarray, den: np.ndarray, w: np.ndarray, logits: np.ndarray) -> None:
    """num += w * logits and den += w, in place (float32; OpenCV: one pass each, no temporary)."""
    cv2 = opencv()
    if cv2 is None:
        num += w * logits
        den += w
    else:
        cv2.accumulateProduct(w, logits, num)
        cv2.accumulate(w, den)


def _smoothed(window: tuple[WindowFrame, ...], centre: int, params: SmoothParams) -> np.ndarray:
    """The smoothed alpha (uint8) of window[centre], from the frames around it (module doc)."""
    me = window[centre]
    num = logits_of(me.alpha)
    den = np.ones_like(num)
    for step, reach in ((-1, params.past), (1, params.ahead)):
        positions: np.ndarray | None = None
        for j in range(1, reach + 1):
            index = centre + step * j
            if not 0 <= index < len(window):
                break
            hop = window[index - step].back if step < 0 else window[index - step].fwd
            other = window[index]
            if hop is None or other.planes is None or (j > 1 and positions is None):  # taken where it is
                positions = None
                alpha, grey = other.alpha, other.grey
            else:
                positions = hop if positions is None else compose(positions, hop)
                alpha, grey = moved(other.planes, positions)
            w = neighbour_weight(me.grey, grey, params)
            accumulate(num, den, w, logits_of(alpha))
    np.divide(num, den, out=num)
    np.negative(num, out=num)
    np.exp(num, out=num)
    num += 1.0
    np.divide(256.0, num, out=num)
    num -= 0.5
    np.rint(num, out=num)
    return np.clip(num, 0, 255).astype(np.uint8)


def _emit(state: SmoothState, params: SmoothParams, until: int) -> tuple[Ready, SmoothState]:
    """Give back pending frames while more than `until` are pending; drop frames no longer needed."""
    window, pending, ready = state.window, state.pending, []
    while pending > until:
        centre = len(window) - pending
        ready.append((window[centre].tag, _smoothed(window, centre, params)))
        pending -= 1
    first_pending, oldest = len(window) - pending, max(0, len(window) - pending - params.past)
    # what frames given out are still needed for: being past neighbours of the frames still pending,
    # reached through each one's flow back (the oldest's leads to no frame kept); not their tag nor flow ahead
    keep = tuple(
        f if i >= first_pending else replace(f, tag=None, fwd=None, back=None if i == oldest else f.back)
        for i, f in enumerate(window[oldest:], oldest)
    )
    return ready, SmoothState(keep, pending)


def smooth_push(
    state: SmoothState, rgb: np.ndarray, alpha: np.ndarray, params: SmoothParams = SmoothParams(), tag: Any = None
) -> tuple[Ready, SmoothState]:
    """Frame rgb (H x W x 3 uint8) with its matte alpha (H x W uint8) in; out: the frames now ready,
    as (tag, smoothed alpha uint8) in the order they came in (the frame `ahead` frames back, once
    there are that many; nothing before), and the next state. `smooth_flush` gives back the rest."""
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha {alpha.shape[::-1]} and frame {rgb.shape[1::-1]} differ in size")
    if params.off:
        return [(tag, alpha)], state
    ready: Ready = []
    if state.window and state.window[-1].grey.shape != alpha.shape:  # a new size: a new stream
        ready, state = smooth_flush(state, params)
    grey = grey_of(rgb)
    frame = WindowFrame(tag, grey, alpha, planes_of(alpha, grey) if params.flow else None)
    window = state.window
    if window:
        last = window[-1]
        frame = replace(frame, back=flow_between(grey, last.grey, params.flow))
        window = (*window[:-1], replace(last, fwd=flow_between(last.grey, grey, params.flow)))
    more, state = _emit(SmoothState((*window, frame), state.pending + 1), params, params.ahead)
    return ready + more, state


def smooth_flush(state: SmoothState, params: SmoothParams = SmoothParams()) -> tuple[Ready, SmoothState]:
    """The frames still pending (the clip has ended: each is smoothed with the frames there are), and an empty state."""
    ready, _ = _emit(state, params, 0)
    return ready, SmoothState()


class TemporalSmoother:
    """smooth_push / smooth_flush with the state kept: `push(rgb, alpha, tag)` returns the frames
    now ready as (tag, alpha), `flush()` the rest at the end of the clip.

    `state` can be read and given back (e.g. to carry the filter across chunks)."""

    def __init__(self, params: SmoothParams = SmoothParams(), state: SmoothState = SmoothState()):
        self.params = params
        self.state = state

    def push(self, rgb: np.ndarray, alpha: np.ndarray, tag: Any = None) -> Ready:
        ready, self.state = smooth_push(self.state, rgb, alpha, self.params, tag)
        return ready

    def flush(self) -> Ready:
        ready, self.state = smooth_flush(self.state, self.params)
        return ready

    def run(self, rgbs: Any, alphas: Any) -> list[np.ndarray]:
        """Every frame's smoothed alpha, in order, for a whole clip given as two sequences."""
        out = [a for rgb, alpha in zip(rgbs, alphas, strict=True) for _, a in self.push(rgb, alpha)]
        return out + [a for _, a in self.flush()]
