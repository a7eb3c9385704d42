"""The alpha of a video a hosted remover sent back, frame by frame, checked and bounded.

A hosted remover answers with the clip cut out: WebM/VP9 with an alpha layer,
or MOV/ProRes 4444. Its alpha becomes the matte of each of our own frames
(the cut-out is rendered from our copy of the clip, as for a local model), so:

- it must really carry alpha: VP9's alpha layer is only decoded by libvpx-vp9
  (FFmpeg's own VP9 decoder drops it), opened here by name; a result whose
  frames have no alpha plane is refused, never read as "all opaque";
- it is bounded like an input: frame size (the pixel limit), frame count and
  duration (RMBG_VIDEO_MAX_FRAMES, RMBG_VIDEO_MAX_SECONDS, with a second of
  slack), checked on the header and again while decoding;
- its frames are shown as the vendor's file says (its display matrix), and
  must have the clip's shape (its own rotation applied, or not, by the vendor);
  they are scaled to the frames we process (a clip over RMBG_VIDEO_MAX_SIZE is
  processed scaled down, the vendor sends it at full size);
- `paired` matches them to our frames by timestamp, so a vendor that drops or
  adds a frame cannot shift the matte along the clip, and a result that stops
  early is refused.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ProviderResponseError
from .decode import ClipInfo, Frame, open_input, picture
from .limits import VideoLimits
from .planes import alpha_of, decoded, has_alpha

SLACK_S = 1.0  # a result may run this much past the limits and the clip (rounding of its last frame)


@dataclass(frozen=True)
class AlphaFrame:
    """One frame of the returned video: its time (s from its first frame) and its alpha (H x W uint8)."""

    time: float
    alpha: np.ndarray


def returned_alpha(path: Path, info: ClipInfo, limits: VideoLimits, provider_id: str) -> Generator[AlphaFrame]:
    """Each frame's alpha at the processing size (info.width x info.height), in order."""
    import av

    def refuse(why: str) -> ProviderResponseError:
        return ProviderResponseError(provider_id, why)

    try:
        container = open_input(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise refuse("returned a file that is not a video we can read.") from None
    try:
        if not container.streams.video:
            raise refuse("returned a file with no video track.")
        stream = picture(container)
        _check_header(container, stream, limits, refuse)
        count = 0
        for time, frame in _decoded(container, stream):
            count += 1
            if count > limits.max_frames or time > limits.max_seconds + SLACK_S:
                raise refuse(
                    f"returned a video longer than the limits ({limits.max_frames} frames, "
                    f"{limits.max_seconds:g} s); refused."
                )
            yield AlphaFrame(time, _alpha(frame, info, refuse))
        if count == 0:
            raise refuse("returned a video with no frame that can be decoded.")
    except av.error.FFmpegError:
        raise refuse("returned a video that is damaged: decoding failed.") from None
    finally:
        container.close()


def _check_header(container: Any, stream: Any, limits: VideoLimits, refuse: Any) -> None:
    """The limits on what the header declares, before a frame is decoded."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        raise refuse(f"returned {width}x{height} frames, over the {limits.max_pixels / 1e6:.0f} MP limit; refused.")
    if stream.frames and stream.frames > limits.max_frames:
        raise refuse(f"returned {stream.frames} frames, over the {limits.max_frames} frame limit; refused.")
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    seconds = max(seconds, (container.duration or 0) / 1_000_000)
    if seconds > limits.max_seconds + SLACK_S:
        raise refuse(f"returned {seconds:.1f} s of video, over the {limits.max_seconds:g} s limit; refused.")


def _decoded(container: Any, stream: Any) -> Iterator[tuple[float, Any]]:
    """(seconds from the first frame, frame) in order; VP9 through libvpx-vp9, which keeps the alpha layer."""
    tb = stream.time_base
    first: int | None = None
    last = -1.0
    for frame in decoded(container, stream, keep_alpha=True):
        pts = frame.pts if frame.pts is not None else 0
        first = pts if first is None else first
        time = max(float((pts - first) * tb) if tb else 0.0, last + 1e-6)  # strictly increasing
        last = time
        yield time, frame


def _alpha(frame: Any, info: ClipInfo, refuse: Any) -> np.ndarray:
    name = frame.format.name
    if not has_alpha(name):
        raise refuse(
            f"returned a video without transparency (its frames are {name}); nothing to cut out with. "
            "Ask for the other transparent format (hosted_format='mov' or 'webm')."
        )
    alpha = alpha_of(frame)
    turns = _turns(frame)
    alpha = np.rot90(alpha, turns) if turns else alpha
    h, w = alpha.shape
    if not _same_shape((w, h), (info.width, info.height)):
        ours = info.rotation // 90
        stored = info.coded_size[::-1] if ours % 2 else info.coded_size  # upright, pixels not widened
        if ours % 2 and _same_shape((h, w), (info.width, info.height)):
            alpha = np.rot90(alpha, ours)  # the vendor dropped the clip's rotate tag: turn it as we did
            h, w = alpha.shape
        elif not _same_shape((w, h), stored):  # the stored shape (non-square pixels, their aspect in a
            # tag) passes: it is scaled to ours below, as a player shows it
            raise refuse(f"returned {w}x{h} frames for a {info.width}x{info.height} clip.")
    if (w, h) != (info.width, info.height):
        image = Image.fromarray(np.ascontiguousarray(alpha), "L")
        return np.asarray(image.resize((info.width, info.height), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(alpha)


def _turns(frame: Any) -> int:
    try:
        return round((frame.rotation or 0) / 90) % 4
    except (AttributeError, ValueError):
        return 0


def _same_shape(got: tuple[int, int], want: tuple[int, int]) -> bool:
    """The same aspect ratio, within a pixel of rounding on each side (scaled or not)."""
    (gw, gh), (w, h) = got, want
    return gw > 0 and gh > 0 and abs(gw - w * gh / h) <= 1 + gw / 500 and abs(gh - h * gw / w) <= 1 + gh / 500


def paired(frames: Iterator[Frame], alphas: Iterator[AlphaFrame], step: float, provider_id: str):
    """(our frame, the returned alpha nearest its time) for each of our frames, in order.
    A result that ends more than two frames (at least a quarter second) before
    the clip is refused: its last matte is never stretched over frames it lacks."""
    tolerance = max(2 * step, 0.25)
    held = next(alphas, None)
    if held is None:
        raise ProviderResponseError(provider_id, "returned a video with no frame.")
    coming = next(alphas, None)
    for frame in frames:
        while coming is not None and abs(coming.time - frame.time) <= abs(held.time - frame.time):
            held, coming = coming, next(alphas, None)
        if coming is None and frame.time - held.time > tolerance:
            raise ProviderResponseError(
                provider_id,
                f"returned {held.time + step:.2f} s of video for a clip that runs past {frame.time:.2f} s; refused.",
            )
        yield frame, held.alpha
