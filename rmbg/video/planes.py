"""A decoded frame's own alpha: the decoder that keeps it, and the plane it is read from.

FFmpeg's own VP8 and VP9 decoders drop a WebM's alpha layer (it travels beside each frame, as
Matroska's BlockAdditional); libvpx's decoders keep it, so a clip or an answer with alpha in VP8/VP9 is
decoded through them (`decoded`). Every other codec with alpha (ProRes 4444, GIF, PNG, QuickTime
Animation) keeps it in FFmpeg's decoder. The alpha is then read from the frame's own plane
(`alpha_of`), never through swscale.

SCALE_THREADS: every conversion of a frame's pixels (PyAV's reformat and to_ndarray) runs swscale on
one thread. From PyAV 17 it cuts a frame into slices on as many threads as there are cores, and those
slices do not always meet: on a loaded machine 8 pixels at a slice's first row (rows 160 and 320 of an
854x480 frame) came out with other values (up to 511 of 1023) in every plane, 11 to 34 conversions in
60 to ProRes's yuva444p10le, some to yuva444p16le; yuva420p -> rgba even on a quiet one. On one thread
every conversion gave the same pixels, and no slower here (docs/video.md, Formats).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

ALPHA_FORMATS = ("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya8", "ya16")
SCALE_THREADS = 1
LIBVPX = {"vp8": "libvpx", "vp9": "libvpx-vp9"}  # the decoders that keep a WebM's alpha layer


def has_alpha(pix_fmt: str) -> bool:
    return pix_fmt.startswith(ALPHA_FORMATS)


def tagged_alpha(stream: Any) -> bool:
    """A VP8/VP9 stream whose container says it carries an alpha layer (WebM's ALPHA_MODE 1)."""
    said = {str(k).lower(): str(v) for k, v in (stream.metadata or {}).items()}
    return stream.codec_context.name in LIBVPX and said.get("alpha_mode") == "1"


def decoded(container: Any, stream: Any, *, keep_alpha: bool) -> Iterator[Any]:
    """The stream's frames in order; keep_alpha: VP8/VP9 through libvpx, which keeps the alpha layer."""
    import av

    decoder = LIBVPX.get(stream.codec_context.name) if keep_alpha else None
    if decoder is None:
        yield from container.decode(stream)
        return
    ctx: Any = av.CodecContext.create(decoder, "r")
    for packet in container.demux(stream):
        yield from ctx.decode(packet if packet.size else None)


PACKED_ALPHA = {"rgba": 3, "bgra": 3, "argb": 0, "abgr": 0}  # 8-bit packed formats: the alpha's channel


def alpha_of(frame: Any) -> np.ndarray:
    """The frame's alpha, 8 bits (H x W uint8), read from its own alpha plane (or channel), not converted
    through swscale: its yuva420p -> rgba conversion gives the same frame back with other alpha in a few
    places from one call to the next (runs of 8 pixels read 0 where the file holds 200, at sizes such as
    854x480 and 1080x1920; PyAV 19.0: tests/test_video_alpha_read.py), and rounds 10- to 16-bit alpha one
    level off where this is exact. Other formats with alpha go through it still."""
    name = frame.format.name
    components = frame.format.components
    index = next((i for i, c in enumerate(components) if c.is_alpha), None)
    planes = frame.planes
    if index is not None and len(planes) == len(components) == 4:  # planar: yuva*, gbrap*
        plane, bits = planes[index], components[index].bits
        dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2" if name.endswith("be") else "<u2")
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        values = rows[:, : plane.width]
        if bits <= 8:
            return np.array(values, dtype=np.uint8)
        top = (1 << bits) - 1
        return ((values.astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)
    if name in PACKED_ALPHA:
        return np.array(frame.to_ndarray()[..., PACKED_ALPHA[name]], dtype=np.uint8)  # its own layout: no conversion
    return np.array(frame.to_ndarray(format="rgba", threads=SCALE_THREADS)[..., 3], dtype=np.uint8)
