"""A clip's mattes, streamed: decode -> provider -> smoothing, one frame at a time.

`stream_mattes` is the mattes stage of every local video path (rmbg.video.api's
remove_video, a Ray chunk in rmbg.video.chunks, rmbg.eval.clips): it takes
a probed clip and a provider and yields `VideoFrame`s (frame, timestamp,
alpha) in order, calling `progress(done, total)` after each and raising
VideoStopped as soon as `stop.is_set()`. Whoever pulls the frames writes them
(rmbg.video.result.write_clip): nothing here calls back.

With smoothing on, a frame comes out once the filter has seen the frames
after it that it averages with (SmoothParams.ahead, 2 by default), and the
last ones when the clip ends: frames still come out in order, one for each
frame in, and the delay is a fixed few frames.

Decoding runs in its own thread, ahead of the model by at most `ahead`
frames; the writer's side (encoding, storing mattes) runs in another thread
behind a queue of the same small size (rmbg.video.result.Sink). So decoding, the
model and encoding overlap, and at most a few frames are alive at once:
memory does not grow with the clip's length.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import ProviderResponseError
from ..image.arrays import alpha_product
from ..providers.base import Provider
from ..types import Cost
from .decode import ClipInfo, Frame, frames
from .limits import VideoLimits, VideoStopped
from .smooth import SmoothParams, SmoothState, TemporalSmoother

DEFAULT_SMOOTHING = SmoothParams()
AHEAD = 4  # frames decoded ahead of the model, and frames waiting for the encoder

ProgressFn = Callable[[int, "int | None"], None]


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class VideoFrame:
    """One processed frame: index, pts (in the clip's time_base), time (s from the start),
    rgb (H x W x 3 uint8), its alpha (H x W uint8, smoothed when asked) and how long it is shown
    (s, as the clip says; 0: until the next frame)."""

    index: int
    pts: int
    time: float
    rgb: np.ndarray
    alpha: np.ndarray
    shown: float = 0.0

    @classmethod
    def of(cls, frame: Frame, matte: np.ndarray) -> VideoFrame:
        """`frame` with its matte, times the clip's own alpha where it has one (as an image's is): what
        was transparent in the clip stays so, whatever the model saw in its colours there."""
        if frame.alpha is not None:
            matte = alpha_product(matte, frame.alpha)
        return cls(frame.index, frame.pts, frame.time, frame.rgb, matte, frame.shown)


@dataclass
class StreamStats:
    """What a stream has done so far: frames given out, the provider's seconds, the money it cost,
    the smoothing filter's state (to carry it across chunks: with `flush=False` it holds the
    last frames, not given out yet) and the provider's provenance."""

    frames: int = 0
    model_seconds: float = 0.0
    usd: Decimal = Decimal(0)
    cost_source: str = "free"
    state: SmoothState = field(default_factory=SmoothState)
    meta: dict[str, str] = field(default_factory=dict)

    def cost(self) -> Cost:
        if self.cost_source == "free" or self.frames == 0:
            return Cost.free("no frame was charged")
        source: Any = self.cost_source
        return Cost(self.usd, source, f"{self.frames} frames")


_END = object()


def _decode_ahead(source: Iterator[Frame], out: queue.Queue[Any], halt: threading.Event) -> None:
    try:
        for frame in source:
            if halt.is_set():
                break
            out.put(frame)
    except BaseException as exc:  # handed to the consumer, who raises it
        out.put(exc)
    finally:
        out.put(_END)


def stream_mattes(
    info: ClipInfo,
    provider: Provider,
    *,
    limits: VideoLimits | None = None,
    smooth: SmoothParams | None = DEFAULT_SMOOTHING,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    stats: StreamStats | None = None,
    ahead: int = AHEAD,
    flush: bool = True,
    source: Iterable[Frame] | None = None,
) -> Iterator[VideoFrame]:
    """Each frame of the clip with its matte, in order (module doc). `stats`, when
    given, is updated as frames go by (and its `state` seeds the smoothing: frames a
    previous chunk left pending come out first). flush=False: the clip goes on in
    another chunk, so the last frames stay pending in stats.state instead of coming out.
    source: the frames to run (rmbg.video.chunks.frames_at for a chunk); default: the whole clip's."""
    limits = limits or VideoLimits.from_settings()
    stats = stats if stats is not None else StreamStats()
    total = info.total_frames
    waiting: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    halt = threading.Event()
    reader = threading.Thread(
        target=_decode_ahead,
        args=(frames(info, limits) if source is None else iter(source), waiting, halt),
        name="rmbg-video-decode",
        daemon=True,
    )
    reader.start()
    smoother = TemporalSmoother(smooth, stats.state) if smooth is not None else None

    def given_out(ready: list[tuple[Frame, np.ndarray]]) -> Iterator[VideoFrame]:
        if smoother is not None:
            stats.state = smoother.state
        for frame, alpha in ready:
            stats.frames += 1
            yield VideoFrame.of(frame, alpha)
            if progress is not None:
                progress(stats.frames, total)

    per_call = max(1, int(getattr(provider, "frames_per_call", 1)))
    ended = False
    try:
        while not ended:
            group: list[Frame] = []
            while len(group) < per_call:
                item = waiting.get()
                if item is _END:
                    ended = True
                    break
                if isinstance(item, BaseException):
                    raise item
                group.append(item)
            if not group:
                break
            if stop is not None and stop.is_set():
                raise VideoStopped(stats.frames)
            for item, alpha in zip(group, _mattes(provider, group, stats), strict=True):
                yield from given_out(smoother.push(item.rgb, alpha, item) if smoother else [(item, alpha)])
        if smoother is not None and flush:
            yield from given_out(smoother.flush())
    finally:
        halt.set()
        # let the reader finish its put and see the halt; not while the interpreter ends, when a
        # daemon thread no longer runs and this would wait forever
        while not ended and not sys.is_finalizing():
            ended = waiting.get() is _END
        if ended:
            reader.join()


def _mattes(provider: Provider, group: list[Frame], stats: StreamStats) -> list[np.ndarray]:
    """The model's mattes of a group of frames: one `provider.matte` call each, or one
    `provider.mattes` call for all of them where the provider asks for frames in groups
    (`frames_per_call`: the app's local models on ZeroGPU, one GPU allocation a group)."""
    images = [Image.fromarray(frame.rgb, "RGB") for frame in group]
    started = time.perf_counter()
    if len(images) == 1:
        made = [provider.matte(images[0])]
    else:
        made = list(provider.mattes(images))  # type: ignore[attr-defined]  # frames_per_call > 1
    elapsed = (time.perf_counter() - started) / len(images)
    return [_checked(provider, image, matte, elapsed, stats) for image, matte in zip(images, made, strict=True)]


def _checked(provider: Provider, image: Image.Image, matte: Any, elapsed: float, stats: StreamStats) -> np.ndarray:
    stats.model_seconds += matte.seconds if matte.seconds > 0 else elapsed
    if matte.alpha.mode != "L" or matte.alpha.size != image.size:
        raise ProviderResponseError(
            provider.id,
            f"returned a {matte.alpha.mode} matte of {matte.alpha.size[0]}x{matte.alpha.size[1]} "
            f"for a {image.size[0]}x{image.size[1]} frame",
        )
    if matte.cost.source != "free":
        stats.usd += matte.cost.usd
        stats.cost_source = matte.cost.source
    if not stats.meta:
        stats.meta = dict(matte.meta)
    return np.asarray(matte.alpha, dtype=np.uint8)
