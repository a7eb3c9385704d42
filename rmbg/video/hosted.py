"""A clip through a hosted video service: one paid call, priced per second.

    probe (rmbg's limits, done by the caller)      nothing sent yet
    -> the clip's seconds from its packets' timestamps (rmbg.video.packets),
       never from the duration its header declares: a 59 s clip whose header
       says 1 s, or nothing, is priced, held and checked as 59 s
    -> rmbg's limit and the service's own (its longest clip, its largest upload)
    -> the estimate: billed seconds (the clip's length rounded up) x price
    -> rmbg.money.paying: the hold is reserved against every account (the session,
       the day, a batch's --max-cost) before anything is sent; a cap refuses
       here, with nothing sent
    -> the service (upload, the paid request, wait, download behind the URL
       guard with a byte cap), under the charge meter: a request that may have
       reached the vendor is never sent again
    -> the returned alpha, frame by frame on our own frames -> the writers and
       the matte store, as a local model's mattes would go
    -> settled by the charge rules every image call follows: its cost (the one
       its vendor reports, where it does, else the price of the longer of the
       measured and the decoded length) once it succeeded; on a failure, released if nothing was
       billed, else counted at the estimate.

One clip through one service is one paid call: the answer is kept (rmbg.video.answers, by the
clip's content), so the same clip asked for again, or while its call runs, is written from it at
no new charge.

Money and files follow the same rule: the whole of it (the paid request, the
download, reading the alpha, writing the outputs) is the paid call, so a
failure at any step after the vendor took the job says that it may be billed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cache import payer_scope
from ..errors import RmbgError, UnknownProviderError
from ..money.charging import current
from ..money.payer import Payer  # rmbg.video.hosted.Payer(policy, accounts), as docs/video.md names it
from ..money.paying import Payment
from ..providers.hosted.video_job import HostedVideo, Output, VideoJob, VideoRemover, billed_seconds, price_text
from ..types import Cost
from .alpha import paired, returned_alpha
from .answers import Answer, Turn, VideoAnswers, clip_digest
from .decode import CUT, ClipInfo, Frame, frames, opened, picture
from .limits import InvalidVideoError, PaidAnswer, VideoLimits, VideoStopped, VideoWriteError, falls_short
from .packets import copied_alone, packet_seconds, picture_alone
from .pipeline import ProgressFn, StopFlag, VideoFrame
from .providers import hosted_video_info
from .smooth import SmoothParams, TemporalSmoother

RESULT_CAP = 4 * 2**30  # the most any result file may be, whatever the clip (a minute of 1080p ProRes 4444 fits)
RESULT_FLOOR = 16 * 2**20  # and what even a tiny clip may come back as (containers, headers)
BYTES_PER_PIXEL = 5  # an uncompressed 10-bit 4:4:4:4 frame: no encoding of a frame is larger


@dataclass
class _Tally:
    frames: int = 0
    duration: float = 0.0
    service_seconds: float = 0.0


@dataclass(frozen=True)
class HostedRun:
    """What a hosted clip gave: frames written, the clip's end (s), what it cost, the service's time, provenance."""

    frames: int
    duration: float
    cost: Cost
    service_seconds: float
    meta: dict[str, str]


def clip_seconds(info: ClipInfo) -> float:
    """The clip's length as a vendor may bill it: from its packets' timestamps (rmbg.video.packets),
    whatever its header declares; its picture's where the picture is sent alone (`job_for`)."""
    return packet_seconds(info.path, picture_only=copied_alone(info))


def content_type(info: ClipInfo) -> str:
    """The clip's MIME type from what FFmpeg found (a spooled copy's name says nothing)."""
    if info.container == "gif":
        return "image/gif"
    if info.container.startswith("matroska"):
        return "video/webm" if info.codec in ("vp8", "vp9", "av1") else "video/x-matroska"
    return "video/quicktime" if _quicktime(info) else "video/mp4"


def _quicktime(info: ClipInfo) -> bool:
    """Whether an MP4-family clip is a QuickTime file: by its name, or where the name says nothing (an upload
    spooled as input.video) by the brand its header declares ("qt  "). Said as MP4, a QuickTime upload was
    mislabelled to the vendor, and its picture could not be copied alone where the MP4 muxer refuses its
    codec (ProRes): it went whole, and its sound's length was billed."""
    suffix = info.path.suffix.lower()
    if suffix in (".mov", ".qt", ".mp4", ".m4v"):
        return suffix in (".mov", ".qt")
    try:
        with contextlib.closing(opened(info.path, info.path.name)) as container:
            return str(container.metadata.get("major_brand", "")).strip() == "qt"
    except InvalidVideoError:  # read before, so not expected; the name's default stands
        return False


def result_cap(info: ClipInfo, seconds: float) -> int:
    """The most a result may be: the clip's frames uncompressed at the vendor's size (plus headers), capped."""
    width, height = info.coded_size
    count = max(info.total_frames or 0, round(seconds * max(info.fps, 1.0)))  # a header may understate it
    return min(RESULT_CAP, RESULT_FLOOR + (count + 1) * width * height * BYTES_PER_PIXEL)


def job_for(info: ClipInfo, output: Output, folder: Path | None = None) -> VideoJob:
    """The clip's job for a service: with a `folder`, the file that is sent (its picture alone, copied there:
    rmbg.video.packets) and its seconds measured on that file, what the vendor can bill; without, the
    estimate of the same (nothing copied: what the checks, the page's and the CLI's estimates use)."""
    mime = content_type(info)
    if folder is None:
        sent, seconds = info.path, clip_seconds(info)
    else:
        sent = picture_alone(info, mime, folder)
        seconds = packet_seconds(sent, info.path.name)
    return VideoJob(sent, mime, seconds, billed_seconds(seconds), output, result_cap(info, seconds))


def payment_for(remover: VideoRemover, job: VideoJob, payer: Payer) -> Payment:
    """The Payment of one clip on `payer`'s accounts: its estimate, in seconds of video, paid by its vendor's
    key (one unconfirmed call at a time per vendor, image and video alike: rmbg.money.price_watch.Confirming)."""
    price = price_text(remover.usd_per_second)
    unit = f"for this clip ({job.billed_seconds} s at ${price}/s)"
    try:
        vendor = hosted_video_info(remover.id).key_env or remover.id
    except UnknownProviderError:  # a service not declared in rmbg.video.providers: a test's, say
        vendor = remover.id
    return payer.payment(remover.id, remover.estimate(job.billed_seconds).usd, unit=unit, vendor=vendor)


def answer_key(info: ClipInfo, remover: VideoRemover, output: Output) -> tuple[str, str, str, str]:
    """What a service's answer is kept under (rmbg.video.answers): the clip's content, the service and
    whose key pays it (its host within), the format: one key's answer is not handed to another key."""
    return (clip_digest(info.path), remover.id, payer_scope(remover), output)


def run_hosted(
    info: ClipInfo,
    remover: VideoRemover,
    *,
    folder: Path,
    limits: VideoLimits,
    output: Output,
    smooth: SmoothParams | None,
    write: Callable[[Iterable[VideoFrame]], float],
    payer: Payer,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    source: Iterable[Frame] | None = None,
    answers: VideoAnswers | None = None,
) -> HostedRun:
    """One clip through `remover`, paid through `payer` (module doc); `write` takes the
    frames with their mattes and returns the clip's end in seconds. `stop` is honoured
    before the clip is sent; once it is, the call and the writing of its result finish. `source`: our
    frames, decoded as the returned alpha is paired with them (rmbg.video.decode.frames, the default).
    `answers`: the kept answers (None: the clip is sent whatever was sent before)."""
    job = job_for(info, output)  # the estimate: a kept answer needs no copy of the picture (_paid makes it)
    limits.check_seconds(job.seconds)  # the length the clip has, not the one its header says
    remover.check(job)  # the vendor's own limits: refused before anything is reserved or sent
    if stop is not None and stop.is_set():
        raise VideoStopped(0)
    if progress is not None:
        progress(0, info.total_frames)
    writing = _Writing(info, limits, remover.id, smooth, write, progress, source)
    if answers is None:
        return _paid(writing, remover, job, folder, payer, stop, None)
    with answers.once(answer_key(info, remover, job.output), folder) as turn:
        if turn.found is not None:
            return _kept(writing, remover, turn.found)
        return _paid(writing, remover, job, folder, payer, stop, turn)


@dataclass(frozen=True)
class _Writing:
    """How a returned clip becomes ours: its alpha paired with our frames (decoded here unless `source`
    gives them), smoothed when asked, handed to `write`, which returns the clip's end in seconds."""

    info: ClipInfo
    limits: VideoLimits
    provider_id: str
    smooth: SmoothParams | None
    write: Callable[[Iterable[VideoFrame]], float]
    progress: ProgressFn | None
    source: Iterable[Frame] | None

    def written(self, returned: HostedVideo, tally: _Tally) -> None:
        """Our frames written with the returned alpha; the frames and the clip's end counted in `tally`."""
        ours = frames(self.info, self.limits) if self.source is None else iter(self.source)
        tally.duration = self.write(self._frames(ours, returned, tally))

    def _frames(self, ours: Iterator[Frame], returned: HostedVideo, tally: _Tally) -> Iterator[VideoFrame]:
        """Our frames, each with the returned alpha nearest its time (smoothed when asked). No stop
        here: the clip is paid for, and writing its result is local work of seconds."""
        info, smooth, progress = self.info, self.smooth, self.progress
        alphas = returned_alpha(returned.path, info, self.limits, self.provider_id)
        pairs = paired(ours, alphas, 1 / max(info.fps, 1.0), self.provider_id)
        ready = TemporalSmoother(smooth).each((f, f.rgb, a) for f, a in pairs) if smooth is not None else pairs
        with contextlib.closing(alphas):
            for count, (frame, alpha) in enumerate(ready, 1):
                tally.frames = count
                yield VideoFrame.of(frame, alpha)
                if progress is not None:
                    progress(count, info.total_frames)


def _kept(writing: _Writing, remover: VideoRemover, answer: Answer) -> HostedRun:
    """The clip written from `remover`'s kept answer: nothing sent, nothing charged."""
    cost = Cost.free(f"{remover.label}'s answer for this clip was kept from an earlier call: no new charge")
    tally = _Tally()
    writing.written(HostedVideo(answer.path, answer.content_type, cost, dict(answer.meta)), tally)
    return HostedRun(tally.frames, tally.duration, cost, 0.0, dict(answer.meta))


def _paid(
    writing: _Writing,
    remover: VideoRemover,
    job: VideoJob,
    folder: Path,
    payer: Payer,
    stop: StopFlag | None,
    turn: Turn | None,
) -> HostedRun:
    """The clip sent to `remover` in one paid call (module doc); its answer kept through `turn`."""
    check_pictures(writing.info)
    if stop is not None and stop.is_set():  # set while this call waited for another's, or was checked
        raise VideoStopped(0)
    job = job_for(writing.info, job.output, folder)  # the file sent, measured again: a clip FFmpeg could not
    writing.limits.check_seconds(job.seconds)  # copy goes whole, held to every limit at its longest track
    remover.check(job)
    tally = _Tally()
    unwritten: list[VideoWriteError] = []

    def call() -> HostedVideo:
        started = time.perf_counter()
        returned = remover.remove(job, folder)
        tally.service_seconds = time.perf_counter() - started
        try:
            writing.written(returned, tally)
        except VideoWriteError as exc:  # our output, not the answer: bought, so settled at what it cost, and kept
            exc.paid = PaidAnswer(returned.path.read_bytes(), returned.content_type, dict(returned.meta), returned.cost)
            unwritten.append(exc)
        except RmbgError as exc:  # after the vendor took the job: the message says it may be billed
            current().annotate(exc)
            raise
        if turn is not None:  # read and written from (or our output failed): kept; a bad answer is not
            turn.keep(returned.path, returned.content_type, returned.meta)
        decoded = billed_seconds(tally.duration)
        if returned.cost.source != "reported" and decoded > job.billed_seconds and not unwritten:  # priced by what
            returned.cost = remover.estimate(decoded)  # was decoded
        return returned

    returned = payer.pay(payment_for(remover, job, payer), call, lambda got: got.cost.usd)
    if unwritten:
        raise unwritten[0]
    return HostedRun(tally.frames, tally.duration, returned.cost, tally.service_seconds, dict(returned.meta))


NOT_SENT = "Nothing was sent to the service and nothing was charged."


def check_pictures(info: ClipInfo) -> None:
    """Every picture of the clip decoded (not converted: about 1.5 s for 20 s of 1080p H.264 on two cores) before
    it is paid for. A clip damaged mid-way keeps whole packets, so its length, its hold and the vendor's
    acceptance all pass, and it was found only when our frames were decoded to pair with the paid answer:
    charged, nothing written. Refused here in words, nothing sent."""
    import av

    name = info.path.name
    container = opened(info.path, name)
    count, reached = 0, None
    try:
        stream = picture(container)
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            count += 1
            if frame.pts is not None:
                reached = frame.pts if reached is None else max(reached, frame.pts)
    except (av.error.FFmpegError, ValueError):
        raise InvalidVideoError(f"{name} is damaged: decoding failed after {count} frame(s). {NOT_SENT}") from None
    finally:
        container.close()
    seconds = float((reached - info.start_pts) * info.time_base) if reached is not None else 0.0
    if count == 0 or falls_short(seconds, info.last_frame):
        raise InvalidVideoError(f"{name} stops at {seconds:.1f} s of {info.last_frame or 0:.1f} s: {CUT} {NOT_SENT}")
