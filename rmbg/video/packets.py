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


def packet_seconds(path: Path, name: str = "") -> float:
    """The clip's length in seconds from its packets (module docstring); InvalidVideoError when unreadable."""
    import av

    name = name or path.name
    try:
        container = open_input(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise InvalidVideoError(f"{name} cannot be read as a video.") from None
    try:
        streams = [*container.streams.video, *container.streams.audio]
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
