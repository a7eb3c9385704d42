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

The photometric weight alone does not keep what the model found: a 1-2 px line that the flow put
a few pixels off (a kite's lines, a strand of hair: the flow follows what surrounds it) changes
the box-averaged grey levels by little, so the neighbours, which all say "no line" there, keep
most of their weight and the mean erases it. So:

- Thin structures (`thin`, 5 px by default): each neighbour's weight is multiplied by
  1 - thinness / 255, where thinness is how much of the frame's own alpha a `thin` x `thin`
  opening (a line) or closing (a gap) removes (`thinness`): what the model drew narrower than
  that stays as it drew it, and nothing else is touched (an edge or a blob wider than `thin` has
  thinness 0).
- Per frame (`guard`, off by default): the smoothed matte, cut at 0.5, may differ from the frame's
  own by at most `guard` of their union (Jaccard distance). Since that distance is a metric, a
  frame's IoU against any truth then falls by at most `guard` through the filter, whatever the
  flow did; a frame the filter would change more is moved towards the smoothed matte only as far
  as that allows (`guarded`). Measured on the clips the settings were chosen on, it cost most of
  the flicker cut (docs/video.md), so it is an option, not the default.

Why the logit domain: its mean is the geometric mean of the odds, a soft
majority vote. A steady value, soft or not, is kept exactly (hair at 0.3 in
every frame stays 0.3: no edge is sharpened or thresholded), while one
neighbour that the flow misplaced at an edge pulls a confident 0 or 1 much
less than in a plain mean of alphas, so moving edges are not blurred by the
averaging. The parameters were picked from benchmarks/video.py's and archived benchmarks/video_sweep.py's measurements
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
of CPU a frame at 854x480, each flow 6 ms of it (archived benchmarks/video_stages.py).
It is numpy and OpenCV on the CPU whether the model runs on a GPU or not (a
GPU flow would slot in at `flow_between`).

The state (the frames of the window: grey frame, the matte, the
flows to their neighbours, and the caller's tag for each frame not yet given
back) is a value (`SmoothState`) passed from call to call, so a clip cut into
chunks, or handed between workers, smooths exactly as one stream; memory is
bounded by the window (past + ahead + 1 frames), not the clip's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..image.arrays import opencv
from .smooth_ops import (  # noqa: F401  (the filter's steps, also read from here by benchmarks)
    KEPT,
    LOGIT,
    accumulate,
    box_mean,
    compose,
    flow_between,
    grey_of,
    grid,
    guarded,
    logits_of,
    moved,
    optical_flow,
    planes_of,
    thinness,
    weight_table,
)


@dataclass(frozen=True)
class SmoothParams:
    """past / ahead: the frames before and after each frame that are averaged with it
    (0 and 0 = no smoothing; ahead is also the delay, in frames, before a frame comes out);
    motion: the grey-level difference (after the flow's move) at which a neighbour's weight has fallen to 1/e;
    blur: the box (pixels) over which that difference is averaged;
    flow: follow the motion with optical flow when OpenCV is installed;
    thin: structures of the frame's own matte narrower than this (pixels: a square opening or
    closing of this side removes them) keep the frame's own values (0: no such protection);
    guard: the most the smoothed matte, cut at 0.5, may differ from the frame's own as a share of
    their union (Jaccard distance); a frame the filter would change more is changed less, by the
    largest share of the change that stays within it (0: no guard)."""

    past: int = 2
    ahead: int = 2
    motion: float = 20.0
    blur: int = 9
    flow: bool = True
    thin: int = 5
    guard: float = 0.0

    def __post_init__(self) -> None:
        if self.past < 0 or self.ahead < 0:
            raise ValueError(f"past and ahead must be >= 0, got {self.past} and {self.ahead}")
        if self.motion <= 0 or self.blur < 1:
            raise ValueError("motion must be > 0 and blur >= 1")
        if self.thin < 0 or self.thin % 2 == 0 and self.thin or not 0 <= self.guard <= 1:
            raise ValueError(f"thin must be 0 or odd and guard within [0, 1], got {self.thin} and {self.guard}")

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


def _smoothed(window: tuple[WindowFrame, ...], centre: int, params: SmoothParams) -> np.ndarray:
    """The smoothed alpha (uint8) of window[centre], from the frames around it (module doc)."""
    me = window[centre]
    num = logits_of(me.alpha)
    den = np.ones_like(num)
    kept = KEPT[thinness(me.alpha, params.thin)] if params.thin else None
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
            if kept is not None:
                w *= kept
            accumulate(num, den, w, logits_of(alpha))
    np.divide(num, den, out=num)
    np.negative(num, out=num)
    np.exp(num, out=num)
    num += 1.0
    np.divide(256.0, num, out=num)
    num -= 0.5
    np.rint(num, out=num)
    out = np.clip(num, 0, 255).astype(np.uint8)
    return guarded(me.alpha, out, params.guard) if params.guard else out


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

    def each(self, frames: Iterable[tuple[Any, np.ndarray, np.ndarray]]) -> Iterator[tuple[Any, np.ndarray]]:
        """(tag, smoothed alpha) in order for a stream of (tag, rgb, alpha): each once the frames after it
        are in, then the rest at its end."""
        for tag, rgb, alpha in frames:
            yield from self.push(rgb, alpha, tag)
        yield from self.flush()

    def run(self, rgbs: Any, alphas: Any) -> list[np.ndarray]:
        """Every frame's smoothed alpha, in order, for a whole clip given as two sequences."""
        return [a for _, a in self.each((None, rgb, alpha) for rgb, alpha in zip(rgbs, alphas, strict=True))]
