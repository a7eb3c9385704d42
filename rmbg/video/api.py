"""remove_video(): a clip through a provider, frame by frame, to a VideoResult (and files).

    result = rmbg.remove_video("clip.mp4", provider="u2netp", output="clip.webm")
    result.save("clip.mov")                       # ProRes 4444, no model run
    result.save("clip.mp4", background="#00ff00")  # on green

The path: spool the input (URL or bytes) -> probe (limits on the header) ->
rmbg.video.pipeline.stream_mattes (decode ahead, model, smoothing; limits
again on what decodes) -> a Sink thread that encodes each requested output
and stores the matte (rmbg.video.result.MatteStore). Only local providers run
on video for now: a hosted one is refused before anything is sent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError
from ..providers.base import Provider
from ..types import Seconds
from .decode import VideoInput, probe, spool
from .encode import VideoWriter
from .limits import VideoLimits
from .pipeline import ProgressFn, Sink, StopFlag, StreamStats, VideoFrame, stream_mattes
from .result import MatteStore, VideoResult, new_folder
from .smooth import SmoothParams


def local_provider(provider: str | Provider | None) -> Provider:
    """The provider to run on every frame: a registered id, an object, or the default; local only (for now)."""
    from ..api import resolve_provider

    chosen, _ = resolve_provider(provider)
    if chosen.kind != "local":
        raise InvalidRequestError(
            f"{chosen.id} is a hosted provider: video runs on local models only for now (a clip is hundreds "
            "of paid calls). Pick a local one, e.g. provider='u2netp' or 'rmbg-1.4'."
        )
    return chosen


def remove_video(
    video: VideoInput,
    provider: str | Provider | None = None,
    *,
    output: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    format: str | None = None,
    background: Any = None,
    smooth: bool | SmoothParams = True,
    audio: bool = True,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    limits: VideoLimits | None = None,
) -> VideoResult:
    """Cut the background out of every frame of a clip.

    video: a path, the clip's bytes, or an http(s) URL (fetched behind the
        same guard as image URLs). MP4, MOV, WebM, MKV or animated GIF.
    provider: a local provider id or object; None = the default.
    output: a path (or several) to write while the frames go by; the format
        comes from `format` or each path's extension (webm, mov, mp4, gif,
        webp; format="matte" for the alpha as an MP4). More can be written
        later with result.save(...), without running the model again.
    background: for mp4: a colour or a PIL image (white by default).
    smooth: the temporal filter (rmbg.video.smooth): True (the measured
        defaults), False, or SmoothParams.
    audio: keep the clip's sound in webm/mov/mp4 outputs.
    progress: called as progress(frames_done, frames_total_or_None).
    stop: anything with is_set() (a threading.Event): set, the run stops at the
        next frame with VideoStopped and no output is left behind.
    limits: VideoLimits instead of the video settings (RMBG_VIDEO_MAX_SECONDS, ...).
    """
    started = time.perf_counter()
    limits = limits or VideoLimits.from_settings()
    params = SmoothParams() if smooth is True else (smooth or None)
    paths = [] if output is None else [output] if isinstance(output, (str, os.PathLike)) else list(output)
    chosen = local_provider(provider)
    folder = new_folder()
    try:
        source = spool(video, Path(folder.name), limits)
        name = "The video" if isinstance(video, bytes) else source.name
        info = probe(source, limits, name)
        writers = [VideoWriter(p, info, format, background=background, audio=audio) for p in paths]
        store = MatteStore(Path(folder.name), (info.height, info.width))
        stats = StreamStats()
        last_time = _run(info, chosen, limits, params, progress, stop, stats, writers, store)
    except BaseException:
        folder.cleanup()
        raise
    return VideoResult(
        info=info,
        provider=chosen.id,
        frames=stats.frames,
        duration=last_time,
        seconds=Seconds(model=stats.model_seconds, total=time.perf_counter() - started),
        cost=stats.cost(),
        smooth=params is not None,
        store=store,
        limits=limits,
        saved=[w.path for w in writers],
        note=info.note,
        meta=stats.meta,
        _folder=folder,
    )


def _run(
    info: Any,
    provider: Provider,
    limits: VideoLimits,
    params: SmoothParams | None,
    progress: ProgressFn | None,
    stop: StopFlag | None,
    stats: StreamStats,
    writers: list[VideoWriter],
    store: MatteStore,
) -> float:
    """Stream the clip into the writers and the store; returns the clip's duration."""
    seen = {"last": None, "step": 1 / max(info.fps, 1.0)}

    def consume(frame: VideoFrame) -> None:
        for writer in writers:
            writer.write(frame)
        store.append(frame.alpha)
        if seen["last"] is not None:
            seen["step"] = frame.time - seen["last"]
        seen["last"] = frame.time

    sink = Sink(consume)
    try:
        for frame in stream_mattes(
            info, provider, limits=limits, smooth=params, progress=progress, stop=stop, stats=stats
        ):
            sink.put(frame)
        sink.close()
        store.finish()
        for writer in writers:
            writer.close()
    except BaseException:
        try:
            sink.close()
        except BaseException:  # the first error is the one to report
            pass
        for writer in writers:
            writer.abort()
        store.finish()
        raise
    return (seen["last"] or 0.0) + (seen["step"] or 0.0)
