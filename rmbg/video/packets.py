"""How long a clip is, from what it contains: its packets' timestamps, never
the duration its header declares (which whoever made the file writes: a
Matroska Duration of 1.0 s on 59 s of frames, or none at all, as the WebMs a
browser records have).

Each video and audio stream is demuxed (nothing is decoded: milliseconds for
a minute of video); a stream's length is its last packet's end (its
timestamp plus its duration) less its first timestamp, in the stream's time
base. A packet an edit list hides (a trimmed clip's) is counted: a vendor's
reader may not honour the edit list, so the hold covers every frame the file
holds. A packet without a presentation timestamp takes its decoding timestamp;
one without either follows the previous one by the stream's usual step. A
packet without a duration lasts until the next one does (the median gap
between timestamps, so a variable frame rate is read as it is). The clip's
length is its longest stream's: what a vendor that bills by the clip's length
can bill.

A hosted service is sent the picture alone (`picture_alone`: its packets copied into a file of the same
kind, nothing decoded): it returns an alpha we pair with our own frames and our own sound, so a sound
track sent with it was bytes uploaded for nothing and, where it ran past the picture (a phone's AAC
does by a few hundredths of a second), a second billed for nothing. The seconds held and billed are
then the picture's (`packet_seconds(..., picture_only=True)`).

Used by rmbg.video.hosted to price, hold and check a clip before anything is sent. `frame_pts` reads
the timestamps of the frames shown (not those an edit list hides), for cutting a clip into chunks
(rmbg.video.ray_video).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from statistics import median

from .decode import DAMAGED, ClipInfo, open_input, opened, picture
from .limits import InvalidVideoError, VideoLimits

# The containers whose picture is copied alone, by the MIME type the clip is sent as (FFmpeg's muxers).
MUXERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": {"video/mp4": "mp4", "video/quicktime": "mov"},
    "matroska,webm": {"video/webm": "webm", "video/x-matroska": "matroska"},
}


def copied_alone(info: ClipInfo) -> bool:
    """Whether the clip is sent as its picture alone (module docstring): its container can be written again."""
    return info.container in MUXERS


def packet_seconds(path: Path, name: str = "", *, picture_only: bool = False) -> float:
    """The clip's length in seconds from its packets (module docstring), its picture's alone where asked;
    InvalidVideoError when unreadable."""
    import av

    name = name or path.name
    try:
        container = open_input(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise InvalidVideoError(f"{name} cannot be read as a video.") from None
    try:
        alone = picture_only and container.streams.video
        streams = [picture(container)] if alone else [*container.streams.video, *container.streams.audio]
        found: dict[int, list[tuple[int | None, int]]] = {s.index: [] for s in streams}
        for packet in container.demux(streams):
            if packet.size and packet.stream.index in found:  # hidden ones too: a vendor may read them
                pts = packet.pts if packet.pts is not None else packet.dts
                found[packet.stream.index].append((pts, int(packet.duration or 0)))
        bases = {s.index: Fraction(s.time_base or Fraction(1, 1000)) for s in streams}
        rates = {s.index: s.average_rate or s.guessed_rate or s.base_rate for s in container.streams.video}
    except (av.error.FFmpegError, ValueError):
        raise InvalidVideoError(f"{name} is damaged: its packets cannot be read.") from None
    finally:
        container.close()
    spans = [_span(found[i], bases[i], rates.get(i)) for i in found if found[i]]
    return max(spans, default=0.0)


def _span(packets: list[tuple[int | None, int]], base: Fraction, rate: Fraction | None) -> float:
    """One stream's length in seconds: its last packet's end less its first timestamp."""
    known = sorted(pts for pts, _ in packets if pts is not None)
    gaps = [b - a for a, b in zip(known, known[1:]) if b > a]
    if gaps:
        step = int(median(gaps))
    elif rate:
        step = max(1, round(1 / (float(rate) * float(base))))
    else:
        step = max(1, round(1 / (24 * float(base))))
    stamps, last = [], None
    for pts, duration in packets:
        if pts is None:
            pts = (last if last is not None else 0) + step
        last = pts
        stamps.append((pts, pts + (duration if duration > 0 else step)))
    first = min(start for start, _ in stamps)
    end = max(stop for _, stop in stamps)
    return float((end - first) * base)


def frame_pts(info: ClipInfo, limits: VideoLimits, name: str = "") -> list[int]:
    """Every frame's timestamp, in the order shown, read from the container's packets (nothing is
    decoded: milliseconds for a long clip), for cutting the clip into chunks (rmbg.video.chunks)."""
    import av

    name = name or info.path.name
    container = opened(info.path, name)
    try:
        stream = picture(container)
        found = [packet.pts for packet in container.demux(stream) if packet.size and not packet.is_discard]
    except (av.error.FFmpegError, ValueError):
        raise InvalidVideoError(f"{name} {DAMAGED}.") from None
    finally:
        container.close()
    limits.check_frames(len(found))
    if not found or any(pts is None for pts in found) or len(set(found)) != len(found):
        raise InvalidVideoError(
            f"{name} does not give every frame its own timestamp, so it cannot be cut into chunks: "
            "run it with the local engine."
        )
    return sorted(found)


def picture_alone(info: ClipInfo, content_type: str, folder: Path) -> Path:
    """The clip's picture track alone, its packets copied as they are (those an edit list hides too) into a
    file of the kind `content_type` names, in `folder` (module docstring). The clip itself where it holds
    nothing else, where its container is not one we write again, or where FFmpeg cannot write the copy:
    then it is sent whole, and held and billed at its longest track."""
    import av

    kind = MUXERS.get(info.container, {}).get(content_type)
    if kind is None:
        return info.path
    source = opened(info.path, info.path.name)
    target = folder / f"picture.{'mkv' if kind == 'matroska' else kind}"
    try:
        if len(source.streams) == 1:
            return info.path
        stream = picture(source)
        with av.open(str(target), "w", format=kind) as out:
            copy = out.add_stream_from_template(stream)
            for packet in source.demux(stream):
                if packet.dts is None and not packet.size:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                out.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError):
        target.unlink(missing_ok=True)
        return info.path
    finally:
        source.close()
    return target
