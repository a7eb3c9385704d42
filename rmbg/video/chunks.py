"""A clip cut into chunks of consecutive frames, each run on its own (by a Ray worker:
rmbg.video.ray_video) and joined into the same mattes as one run over the whole clip.

The temporal filter makes a frame's matte depend on its neighbours: `SmoothParams.reach`
says how many before and after (2 and 2 by default). So a chunk giving the mattes of
frames [start, stop) decodes and runs the model on `reach` more frames on each side
(fewer at the clip's ends), smooths them as one stream, and keeps only its own frames:
every frame it keeps saw the same neighbours, through the same flows, as in the whole
stream, so the mattes are the same, bit for bit where the model is deterministic. The
frames at the clip's end are smoothed with the frames there are (the filter's flush),
by whichever chunk decodes the last frame, as a local run does.

The cost of the overlap: each chunk runs the model on up to past + ahead frames it does
not keep (4 by default: 8 % more model runs with chunks of 48 frames). The other choice,
chunks without overlap and the driver smoothing the joined stream, puts the filter (about
a seventh of U2-Net-p's CPU time a frame, docs/video.md) on the one driver for every
frame, a serial stage that caps the whole run however many workers there are; with the
overlap, the driver only decodes and encodes, as it does for a local run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import RmbgError
from ..providers.base import Provider
from .decode import ClipInfo, Frame, opened, picture, upright
from .lengths import shown_for
from .limits import InvalidVideoError, VideoLimits
from .pipeline import StreamStats, stream_mattes
from .smooth import SmoothParams


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of a clip, to decode from `first` (the filter's reach before `start`)
    with these timestamps (`pts`, the overlap after `stop` included); `ends_clip`: its last decoded
    frame is the clip's, so the filter flushes there."""

    start: int
    stop: int
    first: int
    pts: tuple[int, ...]
    ends_clip: bool

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ChunkMattes:
    """What a chunk sends back: the mattes of its frames (frames x H x W uint8, smoothed when
    asked), their timestamps, the model's seconds and the provider's provenance."""

    start: int
    pts: tuple[int, ...]
    alphas: np.ndarray
    model_seconds: float
    meta: dict[str, str] = field(default_factory=dict)


def chunk_length(fps: float, seconds: float | None = None, frames: int | None = None) -> int:
    """Frames per chunk: `frames`, or `seconds` of the clip's frame rate (at least one frame)."""
    if frames is not None:
        if frames < 1:
            raise RmbgError(f"A chunk needs at least 1 frame, not {frames}.")
        return frames
    seconds = 2.0 if seconds is None else seconds
    if not math.isfinite(seconds) or seconds <= 0:  # NaN compares False with everything: asked first
        raise RmbgError(f"A chunk needs a number of seconds above 0, not {seconds:g}.")
    return max(1, round(seconds * fps))


def plan_chunks(pts: Sequence[int], size: int, smooth: SmoothParams | None) -> list[Chunk]:
    """The clip's frames (their timestamps, in order) in chunks of `size`, each with the overlap its filter needs."""
    before, after = smooth.reach if smooth is not None else (0, 0)
    total, chunks = len(pts), []
    for start in range(0, total, size):
        stop = min(start + size, total)
        first, end = max(0, start - before), min(total, stop + after)
        chunks.append(Chunk(start, stop, first, tuple(pts[first:end]), end == total))
    return chunks


def chunk_mattes(
    info: ClipInfo, provider: Provider, chunk: Chunk, smooth: SmoothParams | None, limits: VideoLimits
) -> ChunkMattes:
    """Run one chunk: decode its frames and overlap, the model on each, the filter over them as one
    stream (flushed only where the clip ends), and keep the mattes of frames [start, stop)."""
    stats = StreamStats()
    alphas = np.empty((chunk.frames, info.height, info.width), np.uint8)
    kept: list[int] = []
    source = frames_at(info, list(chunk.pts), chunk.first)
    for frame in stream_mattes(
        info, provider, limits=limits, smooth=smooth, stats=stats, flush=chunk.ends_clip, source=source
    ):
        if chunk.start <= frame.index < chunk.stop:
            alphas[frame.index - chunk.start] = frame.alpha
            kept.append(frame.pts)
    if len(kept) != chunk.frames:  # a decoder that gave fewer frames than its packets
        raise RmbgError(f"Frames {chunk.start}-{chunk.stop - 1} gave {len(kept)} mattes instead of {chunk.frames}.")
    return ChunkMattes(chunk.start, tuple(kept), alphas, stats.model_seconds, stats.meta)


def frames_at(info: ClipInfo, pts: list[int], first: int, name: str = "") -> Iterator[Frame]:
    """The frames with these timestamps (consecutive ones, from rmbg.video.packets.frame_pts), numbered from `first`:
    decoded from the last keyframe at or before the first of them (a seek), or from the clip's start
    when the container cannot seek there. The pixels are those `frames` gives for the same frames."""
    import av

    name = name or info.path.name
    container = opened(info.path, name)
    try:
        stream = picture(container)
        stream.thread_type = "AUTO"
        if pts[0] > info.start_pts:
            container.seek(pts[0], backward=True, any_frame=False, stream=stream)
        decoded = container.decode(stream)
        first_frame = next(decoded, None)
        if first_frame is None or first_frame.pts is None or first_frame.pts > pts[0]:  # the seek overshot
            container.seek(info.start_pts, backward=True, any_frame=False, stream=stream)
            decoded = container.decode(stream)
            first_frame = next(decoded, None)
        wanted = iter(enumerate(pts, first))
        index, want = next(wanted)
        for frame in itertools.chain([first_frame] if first_frame is not None else [], decoded):
            if frame.pts is None or frame.pts < want:
                continue
            if frame.pts != want:
                break
            at = float((want - info.start_pts) * info.time_base)
            yield Frame(index, want, at, upright(frame, info, False)[0], shown=shown_for(frame, info.time_base))
            step = next(wanted, None)
            if step is None:
                return
            index, want = step
    except (av.error.FFmpegError, ValueError):
        raise InvalidVideoError(f"{name} is damaged: decoding failed at frame {first}.") from None
    finally:
        container.close()
    raise InvalidVideoError(
        f"{name}: the frame at timestamp {want} does not decode where its packet says, so the clip cannot be cut "
        "into chunks frame-exactly: run it with the local engine."
    )
