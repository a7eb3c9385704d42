"""remove_video(): a clip through a provider, to a VideoResult (and files).

    result = rmbg.remove_video("clip.mp4", provider="u2netp", output="clip.webm")
    result.save("clip.mov")                       # ProRes 4444, no model run
    result.save("clip.mp4", background="#00ff00")  # on green
    rmbg.remove_video("clip.mp4", provider=hosted_id, output="clip.webm")  # one of HOSTED_VIDEO: paid, per second

`remove_video` is the one place a clip's path is laid out; it calls each stage in
order, and each returns to it (none calls back up, none calls a sibling stage):

    1. in       rmbg.video.decode.open_clip: the input spooled (a URL or bytes) and probed,
                the limits on its header and its packets, before anything runs or is sent
    2. out      a rmbg.video.encode.VideoWriter for each output (its sound carried by the
                writer itself, rmbg.video.audio) and the mattes' store (rmbg.video.result)
    3. frames   rmbg.video.decode.frames: the clip's frames, upright, decoded as step 4
                pulls them (the limits checked again on what decodes)
    4. mattes   a local model on each frame (rmbg.video.pipeline.stream_mattes: decoding
                ahead on its own thread, the model, the temporal filter), or the same over
                Ray workers (rmbg.video.ray_video), or a hosted video service that takes the
                whole clip in one paid call (rmbg.video.hosted: priced per second, paid
                through rmbg.money.paying), its alpha matched to the frames
    5. written  rmbg.video.result.write_clip: each frame with its matte, as step 4 yields it,
                to every writer and the store on the encoding thread, then the files closed
                and moved into place
    6. the VideoResult

Steps 3 to 5 stream, each pulling one frame at a time from the one before, so a few
frames are alive at once whatever the clip's length: they are the stages entered once
per frame rather than once per clip. A hosted clip is written inside its paid call (a
failure after the vendor took the job says it may be billed), so run_hosted is handed
steps 3 and 5. A hosted image provider is refused before anything is sent: on video it
would be one paid call per frame.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cache import DEFAULT
from ..errors import InvalidRequestError, RmbgError, UnknownProviderError
from ..provider_table import nearest
from ..providers.base import Provider
from ..providers.hosted.video_job import OUTPUTS, Output, VideoRemover
from ..types import Seconds, one_or_many
from .answers import AnswersArg, resolve_answers
from .decode import VideoInput, frames, open_clip
from .encode import VideoWriter
from .hosted import Payer, run_hosted
from .limits import InvalidVideoError, VideoLimits
from .pipeline import ProgressFn, StopFlag, StreamStats, stream_mattes
from .providers import HOSTED_VIDEO, get_video_provider, is_hosted_video, list_video_providers
from .ray_video import RayVideo, ray_mattes
from .result import MatteStore, VideoResult, new_folder, write_clip
from .smooth import SmoothParams


def local_provider(provider: str | Provider | None) -> Provider:
    """The model to run on every frame: a registered id, an object, or the default; local only."""
    from ..api import resolve_provider

    chosen, _ = resolve_provider(provider)
    if chosen.kind != "local":
        raise InvalidRequestError(
            f"{chosen.id} is a hosted image provider: on video it would be one paid call per frame. Pick a local "
            f"model (e.g. provider='u2netp' or 'rmbg-1.4') or a hosted video service ({', '.join(HOSTED_VIDEO)}), "
            "paid per second of video."
        )
    return chosen


def video_provider(provider: str | Provider | VideoRemover | None) -> Provider | VideoRemover:
    """What a clip goes through: a hosted video service (by id or object), else a local model."""
    if is_hosted_video(provider):
        return get_video_provider(provider) if isinstance(provider, str) else provider  # type: ignore[return-value]
    if isinstance(provider, str):
        known_video_id(provider)
    return local_provider(provider)  # type: ignore[arg-type]


def known_video_id(provider_id: str) -> None:
    """UnknownProviderError, listing every video provider, for an id that is none of them."""
    from ..registry import HF_PREFIX, list_providers

    # refused=True: a model the licence switch refuses is known, and get_provider says why it is refused
    if provider_id.startswith(HF_PREFIX) or provider_id in list_providers(refused=True) or provider_id in HOSTED_VIDEO:
        return
    known = [row.id for row in list_video_providers()]
    raise UnknownProviderError(
        provider_id,
        known,
        f"Unknown video provider {provider_id!r}. Video providers: {', '.join(known)}.",
        near=nearest(provider_id, known),
    )


def remove_video(
    video: VideoInput,
    provider: str | Provider | VideoRemover | None = None,
    *,
    output: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    format: str | None = None,
    background: Any = None,
    smooth: bool | SmoothParams | None = None,
    audio: bool = True,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    limits: VideoLimits | None = None,
    hosted_format: Output = "webm",
    payer: Payer | None = None,
    engine: str | RayVideo = "local",
    cache: AnswersArg = DEFAULT,
) -> VideoResult:
    """Cut the background out of a clip.

    video: a path, the clip's bytes, or an http(s) URL (fetched behind the
        same guard as image URLs). MP4, MOV, WebM, MKV or animated GIF.
    provider: a local provider id or object (run on every frame), a hosted
        video service id (rmbg.video.providers.HOSTED_VIDEO lists them;
        one paid call per clip, priced per second), or None (the default local
        model).
    output: a path (or several) to write while the frames go by; the format
        comes from `format` or each path's extension (webm, mov, mp4, gif,
        webp; format="matte" for the alpha as an MP4). More can be written
        later with result.save(...), without running the model or paying again.
    background: for mp4: a colour or a PIL image (white by default).
    smooth: the temporal filter (rmbg.video.smooth): True (the measured
        defaults), False, SmoothParams, or None: on for local models, off for
        hosted video services (their mattes are made for the whole clip).
    audio: keep the clip's sound in webm/mov/mp4 outputs (taken from the clip itself).
    progress: called as progress(frames_done, frames_total_or_None).
    stop: anything with is_set() (a threading.Event): set, the run stops at the
        next frame with VideoStopped and no output is left behind. A hosted clip
        stops only before it is sent: once paid for, its result is written.
    limits: VideoLimits instead of the video settings (RMBG_VIDEO_MAX_SECONDS, ...).
    hosted_format: what a hosted service is asked to send back: "webm" (VP9
        with alpha, small) or "mov" (ProRes 4444, large); either way the
        outputs are written from its alpha.
    payer: who pays for a hosted clip (rmbg.money.payer.Payer, also rmbg.video.hosted.Payer: the rule and
        the accounts); default: the operator's own, with the day's cap
        (RMBG_DAILY_CAP_USD) where it is set. The hold is reserved before
        anything is sent.
    engine: "local" (this process), or "ray" / RayVideo(...) (rmbg.video.ray_video: the
        frames in chunks across Ray workers, joined into the same output frame for frame;
        local models only: a hosted video service takes the whole clip in one paid call).
    cache: a hosted service's answers kept by the clip's content (rmbg.video.answers): "default" (the
        process's, RMBG_VIDEO_CACHE_MB), None (every run sends the clip) or a VideoAnswers. The same
        clip through the same service again, or while its call runs, is written from the kept answer,
        at no new charge.
    """
    started = time.perf_counter()
    limits = limits or VideoLimits.from_settings()
    if hosted_format not in OUTPUTS:
        raise InvalidRequestError(f"hosted_format must be one of {', '.join(OUTPUTS)}, not {hosted_format!r}.")
    paths = [] if output is None else one_or_many(output)  # one path, or several
    if isinstance(video, (str, os.PathLike)) and any(Path(p).resolve() == Path(video).resolve() for p in paths):
        raise InvalidRequestError(f"output names the clip itself ({Path(video).name}): it would be written over.")
    chosen = video_provider(provider)
    hosted = is_hosted_video(chosen)
    spread = ray_engine(engine, chosen.id, hosted)
    if not (smooth is None or isinstance(smooth, (bool, SmoothParams))):
        raise InvalidRequestError(f"smooth must be True, False, None or a SmoothParams, not {smooth!r:.40}.")
    answers = resolve_answers(cache)
    params = SmoothParams() if smooth is True or (smooth is None and not hosted) else (smooth or None)
    folder = new_folder()
    try:
        info = open_clip(video, Path(folder.name), limits)  # 1. in
        writers = [VideoWriter(p, info, format, background=background, audio=audio) for p in paths]  # 2. out
        store = MatteStore(Path(folder.name), (info.height, info.width))
        decoded = frames(info, limits)  # 3. the frames, decoded as the next stage pulls them
        if hosted:  # 4. and 5., inside the paid call
            remover: Any = chosen
            run = run_hosted(
                info, remover, folder=Path(folder.name), limits=limits, output=hosted_format, smooth=params,
                source=decoded, write=functools.partial(write_clip, info=info, writers=writers, store=store),
                payer=payer or Payer.operator("video"), progress=progress, stop=stop, answers=answers,
            )  # fmt: skip
            count, last_time, cost, meta = run.frames, run.duration, run.cost, run.meta
            model_seconds = run.service_seconds
        else:
            model: Any = chosen
            stats = StreamStats()
            if spread is None:  # 4.
                mattes = stream_mattes(
                    info, model, limits=limits, smooth=params, progress=progress, stop=stop, stats=stats, source=decoded
                )
            else:
                mattes = ray_mattes(
                    info, model, spread, limits=limits, smooth=params, progress=progress, stop=stop, stats=stats,
                    source=decoded,
                )  # fmt: skip
            last_time = write_clip(mattes, info, writers, store)  # 5.
            count, cost, meta, model_seconds = stats.frames, stats.cost(), stats.meta, stats.model_seconds
    except BaseException as exc:
        folder.cleanup()
        if type(exc).__module__.startswith("av.") and not isinstance(exc, RmbgError):  # said in words, as all else
            raise InvalidVideoError(f"FFmpeg could not process the clip: {exc}.") from exc
        raise
    return VideoResult(
        info=info,
        provider=chosen.id,
        frames=count,
        duration=last_time,
        seconds=Seconds(model=model_seconds, total=time.perf_counter() - started),
        cost=cost,
        smooth=params is not None,
        store=store,
        limits=limits,
        saved=[w.path for w in writers],
        note=info.note,
        meta=meta,
        _folder=folder,
    )


def ray_engine(engine: str | RayVideo, provider_id: str, hosted: bool) -> RayVideo | None:
    """The Ray settings for engine="ray" or a RayVideo; None for the local engine. Refused for a hosted video
    service before anything is sent: its one paid call takes the whole clip (nothing to split)."""
    if engine == "local":
        return None
    if not isinstance(engine, RayVideo) and engine != "ray":
        raise InvalidRequestError(f"engine must be 'local', 'ray' or a RayVideo, not {engine!r}.")
    if hosted:
        raise InvalidRequestError(
            f"{provider_id} takes the whole clip in one paid call: there is nothing to split across Ray workers, "
            "and a paid clip is never split into several calls. Run it without the Ray engine."
        )
    return engine if isinstance(engine, RayVideo) else RayVideo()
