"""Video in: open a clip (path, bytes or URL), read its header, decode its frames upright.

PyAV (FFmpeg, bundled in its wheel) does the decoding; it is imported inside
the functions, so `import rmbg` stays light. What is taken: MP4, MOV, WebM,
MKV and animated GIF. Every failure of FFmpeg (not a video, damaged, cut off,
empty) becomes an InvalidVideoError in a person's words.

Each frame keeps its own presentation timestamp (`Frame.pts` in the stream's
`time_base`), so variable-frame-rate clips keep their timing; the display
matrix (a phone's rotate tag) and the pixel aspect are applied, so frames come
out as they are shown; frames over the size limit are scaled down (limits).
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..image.fetch import shown
from ..image.formats import URL
from .colour import shown_rgb
from .lengths import shown_for
from .limits import InvalidVideoError, VideoLimits, falls_short
from .planes import alpha_of, decoded, has_alpha, tagged_alpha

VideoInput = Union[str, "os.PathLike[str]", bytes]

# FFmpeg demuxer names we accept: MP4/MOV (one demuxer), Matroska/WebM, GIF.
ACCEPTED = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "gif")
CUT = "the file is cut off or damaged."
DAMAGED = "is not a video we can read: it may be damaged, cut off, or not a video file"


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's header says, checked against the limits.

    width, height: the frames as shown (rotation and pixel aspect applied) and as processed
    (scaled to the size limit); coded_size: as stored. fps: the average frame
    rate (the nominal one for variable-rate clips); seconds and frames: as
    declared (None when the header does not say). time_base: the video
    stream's; start_pts: its first timestamp. note: set when frames are scaled.
    packets, span and last_frame: what the clip plays, whatever its header says: its video packets (one a
    frame; those an edit list hides, as a trimmed phone clip keeps them, left out), the seconds from the
    first one's timestamp to the end of the last, and to the last one's start (a GIF may hold its last
    frame for seconds); None where the packets carry no timestamps. total_frames: the count progress is
    told against: the packets', else the header's, else one estimated from the duration. alpha: its
    frames carry their own alpha (a transparent WebM, ProRes 4444, a GIF), which `frames` gives with
    each (rmbg.video.planes).
    """

    path: Path
    container: str
    codec: str
    width: int
    height: int
    coded_size: tuple[int, int]
    rotation: int
    fps: float
    time_base: Fraction
    start_pts: int
    seconds: float | None
    frames: int | None
    audio_codec: str | None
    size_bytes: int
    note: str = ""
    packets: int | None = None
    span: float | None = None
    total_frames: int | None = None
    alpha: bool = False
    last_frame: float | None = None


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position, its timestamp (pts in the clip's
    time_base; `time` in seconds from the clip's start), its pixels (H x W x 3 uint8),
    the clip's own alpha for it (H x W uint8; None where the clip has none) and how long it is
    shown (s; 0 where the clip does not say: until the next frame)."""

    index: int
    pts: int
    time: float
    rgb: np.ndarray
    alpha: np.ndarray | None = None
    shown: float = 0.0


def open_clip(source: VideoInput, folder: Path, limits: VideoLimits) -> ClipInfo:
    """A clip's way in: spooled (`spool`) and probed (`probe`), named for its messages as the person gave it."""
    path = spool(source, folder, limits)
    return probe(path, limits, "The video" if isinstance(source, bytes) else path.name)


def spool(source: VideoInput, folder: Path, limits: VideoLimits) -> Path:
    """A path for `source`: a path as given (checked), bytes or a URL's body written into `folder`."""
    if isinstance(source, bytes):
        limits.check_bytes(len(source))
        path = folder / "input.video"
        path.write_bytes(source)
        return path
    text = os.fspath(source)
    if isinstance(text, str) and URL.match(text.strip()):
        from ..image.fetch import fetch_bytes

        data, _, _ = fetch_bytes(text.strip(), max_bytes=limits.max_bytes)
        limits.check_bytes(len(data), shown(text))
        path = folder / ("input" + (Path(text.split("?")[0]).suffix[:6] or ".video"))
        path.write_bytes(data)
        return path
    path = Path(text)
    if not path.is_file():
        raise InvalidVideoError(f"{path} is not a file.")
    limits.check_bytes(path.stat().st_size, str(path.name))
    return path


def open_input(path: str | os.PathLike[str]) -> Any:
    """av.open(path) for reading, whatever bytes its metadata holds. PyAV up to 18 decodes a container's
    metadata as UTF-8 when it opens it, failing on other bytes unless told to ignore them; from 19 it
    decodes them with surrogateescape, which never fails, and takes no such argument."""
    import av

    before_19: dict[str, Any] = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
    return av.open(str(path), **before_19)


def picture(container: Any) -> Any:
    """The clip's picture track: FFmpeg's pick among its video tracks (the one with the most frames, not a
    cover image or a thumbnail track before it, which was taken for the clip and found "cut off")."""
    best = container.streams.best("video")
    return best if best is not None else container.streams.video[0]


def opened(path: Path, name: str) -> Any:
    """open_input(path), its failure an InvalidVideoError that names the clip."""
    import av

    try:
        return open_input(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise InvalidVideoError(f"{name} {DAMAGED}.") from None


def probe(path: Path, limits: VideoLimits, name: str = "") -> ClipInfo:
    """Read the header (and the first frame, for its rotation) and check every
    limit it declares; nothing else is decoded."""
    import av

    name = name or path.name
    limits.check_bytes(path.stat().st_size, name)
    container = opened(path, name)
    try:
        fmt = container.format.name
        if fmt not in ACCEPTED:
            kind = "a still image" if fmt.endswith("_pipe") or fmt.startswith("image2") else _named(container)
            raise InvalidVideoError(
                f"{name} is {kind}, not a video we take: give an MP4, MOV, WebM, MKV or animated GIF."
            )
        if not container.streams.video:
            raise InvalidVideoError(f"{name} has no video track.")
        stream = picture(container)
        tb = stream.time_base or Fraction(1, 1000)
        own = float(stream.duration * tb) if stream.duration else None  # the video track's own length
        whole = container.duration / 1_000_000 if container.duration else None  # the longest track's
        seconds = own if own is not None else whole
        if own is not None:  # the file's length may be a sound or subtitle track's: the packets are read below
            limits.check_seconds(own)
        frames = stream.frames or None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 24.0
        # the frames the track shows by its length; its count of frames also counts those an edit list hides
        said = int(own * fps) if own is not None else frames
        if said is not None:  # the packets are counted below, as they are read
            limits.check_frames(said)
        coded = (stream.codec_context.width, stream.codec_context.height)
        limits.fit(*coded)  # the hard pixel limit, before a frame is decoded
        try:
            first = next(container.decode(stream))
        except StopIteration:
            raise InvalidVideoError(f"{name} has no frame that can be decoded.") from None
        rotation = _quarter_turns(first) * 90
        wide = max(2, round(first.width * _pixel_shape(stream)))  # square pixels, as a player shows them
        shown_size = (first.height, wide) if rotation % 180 else (wide, first.height)
        width, height, note = limits.fit(*shown_size)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        packets, span, last_frame, end = _contents(path, name, limits)
        for said, found in ((own, span), (whole, end)):  # what the header says against what the file holds
            if said and found is not None and falls_short(found, said):
                raise InvalidVideoError(f"{name} stops at {found:.1f} s although its header says {said:.1f} s: {CUT}")
        return ClipInfo(
            path=path,
            container=fmt,
            codec=stream.codec_context.name,
            width=width,
            height=height,
            coded_size=coded,
            rotation=rotation,
            fps=fps,
            time_base=Fraction(tb),
            start_pts=first.pts if first.pts is not None else 0,
            seconds=seconds,
            frames=frames,
            audio_codec=audio,
            size_bytes=path.stat().st_size,
            note=note,
            packets=packets,
            span=span,
            last_frame=last_frame,
            total_frames=packets or frames or (round(seconds * fps) if seconds else None),
            alpha=tagged_alpha(stream) or has_alpha(first.format.name),
        )
    except InvalidVideoError:
        raise
    except (av.error.FFmpegError, ValueError, ZeroDivisionError):
        raise InvalidVideoError(f"{name} {DAMAGED}.") from None
    finally:
        container.close()


def _contents(path: Path, name: str, limits: VideoLimits) -> tuple[int, float | None, float | None, float | None]:
    """(video packets, seconds they span, seconds to the last one's start, seconds from the first packet of
    any track to the end of the last) of the clip, the packets an edit list hides left out (FFmpeg marks
    them discarded: the decoder reads them and shows none), read from the container's packets (nothing
    is decoded: a few milliseconds for a thousand frames) and held to the frame and duration limits as
    they are read, so a clip whose header says nothing, or lies, is refused before the model runs on any
    frame (a header-less clip of 50,000 frames ran the model on 3,600 before it was refused). The last
    figure is the file's length as its header counts it, sound and subtitles included: a file cut off
    mid-way falls short of it on every track (from 0 or an earlier first packet: one starting at 1 s is whole)."""
    import av

    container = opened(path, name)
    try:
        stream = picture(container)
        tb = stream.time_base or Fraction(1, 1000)
        count, first, last, last_duration = 0, None, None, 0
        low, high = math.inf, -math.inf  # every track's first start and last end, in seconds
        for packet in container.demux():
            if not packet.size or packet.is_discard or (packet.pts is None and packet.stream is not stream):
                continue
            if packet.pts is not None and packet.stream.time_base:
                start = float(packet.pts * packet.stream.time_base)
                low, high = min(low, start), max(high, start + float((packet.duration or 0) * packet.stream.time_base))
            if packet.stream is not stream:
                continue
            count += 1
            if count > limits.max_frames:
                limits.check_frames(count)
            if packet.pts is None:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            if last is None or packet.pts >= last:
                last, last_duration = packet.pts, packet.duration or 0
                limits.check_seconds(float((last - first) * tb), decoded=True)
    except InvalidVideoError:
        raise
    except (av.error.FFmpegError, ValueError):
        raise InvalidVideoError(f"{name} {DAMAGED}.") from None
    finally:
        container.close()
    whole = high - min(low, 0.0) if high > low else None  # from 0: a Matroska header's length is its end's time
    if first is None or last is None:
        return count, None, None, whole
    return count, float((last + last_duration - first) * tb), float((last - first) * tb), whole


def _named(container: Any) -> str:
    """What a person calls a container we do not take: 'an animated WebP', 'an AVI (Audio Video Interleaved) file'."""
    said = str(container.format.long_name or container.format.name)
    if said.lower().startswith("animated "):  # FFmpeg's "Animated WebP", "Animated Portable Network Graphics"
        return f"an animated {said[9:].replace('Portable Network Graphics', 'PNG')}"
    return f"{'an' if said[:1].upper() in 'AEIOU' else 'a'} {said} file"


def _pixel_shape(stream: Any) -> Fraction:
    """The pixel aspect the stream says, within 1/4..4, else 1 (HDV's 1440x1080 at 4:3 shows 1920x1080)."""
    said = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(said) if said and Fraction(1, 4) <= said <= 4 else Fraction(1)


def _quarter_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns that show the frame upright (its display matrix)."""
    try:
        degrees = frame.rotation or 0
    except (AttributeError, ValueError):
        degrees = 0
    return round(degrees / 90) % 4


def frames(info: ClipInfo, limits: VideoLimits, name: str = "") -> Generator[Frame, None, None]:
    """Every frame of the clip, upright and at the processing size, in order.

    The limits are checked again on what is decoded (count and timestamps);
    a file that ends well before its header says, or fails mid-way, raises
    InvalidVideoError (the last frame decoded well before the last one the packets hold).
    """
    import av

    name = name or info.path.name
    container = opened(info.path, name)
    index, seconds = 0, 0.0
    try:
        stream = picture(container)
        stream.thread_type = "AUTO"
        step = max(1, round(1 / (info.fps * float(info.time_base)))) if info.fps else 1
        last_pts = info.start_pts - step
        for frame in decoded(container, stream, keep_alpha=info.alpha):
            if index >= limits.max_frames:
                limits.check_frames(index + 1)
            pts = frame.pts if frame.pts is not None else last_pts + step
            if pts <= last_pts:  # a repeated or missing timestamp: keep the order strictly increasing
                pts = last_pts + 1
            last_pts = pts
            seconds = float((pts - info.start_pts) * info.time_base)
            limits.check_seconds(seconds, decoded=True)
            yield Frame(index, pts, seconds, *upright(frame, info, info.alpha), shown_for(frame, info.time_base))
            index += 1
    except (av.error.FFmpegError, ValueError) as exc:
        if isinstance(exc, InvalidVideoError):
            raise
        raise InvalidVideoError(f"{name} is damaged: decoding failed after {index} frame(s).") from None
    finally:
        container.close()
    if index == 0:
        raise InvalidVideoError(f"{name} has no frame that can be decoded.")
    last = info.last_frame  # where the last frame starts: however long it is held, it is decoded there
    if falls_short(seconds, last):  # the decoder gave up early
        raise InvalidVideoError(f"{name} stops at {seconds:.1f} s although its frames run to {last:.1f} s: {CUT}")


def upright(frame: Any, info: ClipInfo, alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame's RGB, and its own alpha where asked, upright at the processing size."""
    turns = info.rotation // 90
    w, h = (info.height, info.width) if turns % 2 else (info.width, info.height)
    rgb = shown_rgb(frame, w, h, info.codec)  # in the colours a browser shows (untagged, HDR: rmbg.video.colour)
    own = alpha_of(frame) if alpha else None
    if own is not None and own.shape != (h, w):
        own = np.asarray(Image.fromarray(own, "L").resize((w, h), Image.Resampling.BILINEAR))
    # contiguous: PyAV's rows are padded (854 px: 2592 bytes, not 2562), and a strided array costs
    # every later step a copy (PIL's fromarray about 5x slower: archived benchmarks/video_stages.py)
    rgb = np.ascontiguousarray(np.rot90(rgb, turns) if turns else rgb)
    return rgb, (np.ascontiguousarray(np.rot90(own, turns) if turns else own) if own is not None else None)
