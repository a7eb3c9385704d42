"""What the fake hosted video services do to a clip: decode it, cut every frame
out with the fakes' deterministic matte (common.simple_matte), and encode the
result as the vendors do (WebM/VP9 with an alpha layer, MOV/ProRes 4444, or an
MP4 without alpha), real files that FFmpeg reads.

Also the bytes of the faults a result can have: no alpha, half the frames,
not a video, a file far over any limit.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from .common import simple_matte

# container, codec, pixel format (None: not transparent) of each output the fakes write
OUTPUTS = {
    "webm": ("webm", "libvpx-vp9", "yuva420p"),
    "mkv": ("matroska", "libvpx-vp9", "yuva420p"),  # fal's mkv_vp9: VP9 with its alpha, in Matroska
    "mov": ("mov", "prores_ks", "yuva444p10le"),
    "mp4": ("mp4", "libx264", None),
}
MIME = {"webm": "video/webm", "mkv": "video/x-matroska", "mov": "video/quicktime", "mp4": "video/mp4"}


@dataclass
class Clip:
    """A decoded clip: RGB frames (H x W x 3 uint8), their times (s), its rate and its file's tracks."""

    frames: list[np.ndarray]
    times: list[float]
    rate: Fraction
    tracks: tuple[str, ...] = ("video",)  # the kinds of the file's tracks, in order ("video", "audio", ...)

    @property
    def seconds(self) -> float:
        """First frame to the end of the last, as the vendors measure a clip."""
        return self.times[-1] + float(1 / self.rate) if self.times else 0.0

    @property
    def billed_seconds(self) -> int:
        """The fakes bill whole seconds, rounded up (the vendors' pages say "per second")."""
        return max(1, math.ceil(self.seconds - 0.001))


def read_clip(data: bytes) -> Clip | None:
    """The frames of an encoded clip, or None when the bytes are not a video."""
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or Fraction(24)
            frames, times = [], []
            first = None
            for frame in container.decode(stream):
                pts = frame.pts or 0
                first = pts if first is None else first
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float((pts - first) * stream.time_base))
            tracks = tuple(s.type for s in container.streams)
    except (av.error.FFmpegError, IndexError, ValueError, OSError):
        return None
    return Clip(frames, times, Fraction(rate), tracks) if frames else None


def cut_out(clip: Clip, fmt: str, *, alpha: bool = True, keep: float = 1.0) -> bytes:
    """The clip cut out, encoded as `fmt` (webm, mov, mp4); `alpha=False` writes the
    same codec without its alpha layer; `keep` < 1 drops the clip's last frames."""
    container_format, codec, pix_fmt = OUTPUTS[fmt]
    if not alpha:
        pix_fmt = None
    count = max(1, int(len(clip.frames) * keep))
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        options = {"deadline": "realtime", "cpu-used": "8"} if codec == "libvpx-vp9" else {}
        stream = container.add_stream(codec, rate=clip.rate, options=options)
        height, width = clip.frames[0].shape[:2]
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuv420p" if codec != "prores_ks" else "yuv422p10le")
        for i, rgb in enumerate(clip.frames[:count]):
            matte = np.asarray(simple_matte(Image.fromarray(rgb)))
            if pix_fmt is None:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            else:
                frame = av.VideoFrame.from_ndarray(np.dstack([rgb, matte]), format="rgba")
            frame.pts = i
            frame.time_base = Fraction(1, 1) / clip.rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def expected_mattes(clip: Clip) -> list[np.ndarray]:
    """The matte the fakes compute for each frame (before any encoding loss)."""
    return [np.asarray(simple_matte(Image.fromarray(rgb))) for rgb in clip.frames]


NOT_A_VIDEO = b"\x1a\x45\xdf\xa3 this is not a video, only its first four bytes are"
