"""ProRes 4444, the editing format: opaque pixels as they went in (no colour cast), every alpha
level back exactly, and the colour tags that say how to read them."""

from __future__ import annotations

import av
import numpy as np

from rmbg.video.decode import frames, probe
from rmbg.video.encode import VideoWriter
from rmbg.video.limits import VideoLimits
from rmbg.video.pipeline import VideoFrame
from tests.video_clips import davis, write_clip


def alpha_plane(frame) -> np.ndarray:
    """The decoded alpha at the decoder's own depth (ProRes gives 12 bits), read without FFmpeg's
    conversion to 8 bits (which reads levels 128-254 of a 10-bit alpha one level high)."""
    bits = {"yuva444p10le": 10, "yuva444p12le": 12, "yuva444p16le": 16}[frame.format.name]
    plane = frame.planes[3]
    rows = np.frombuffer(plane, np.dtype("<u2")).reshape(frame.height, -1)[:, : frame.width]
    return rows.astype(np.int64), bits


def test_prores_keeps_colour_and_every_alpha_level(tmp_path):
    clip = write_clip(tmp_path / "dog.mp4", davis("dog", 3, size=None))
    info = probe(clip, VideoLimits())
    ramp = np.tile(np.arange(256, dtype=np.uint8), (240, 854 // 256 + 1))[:, :854]  # every level, many times
    alpha = np.vstack([np.full((240, 854), 255, np.uint8), ramp])
    writer = VideoWriter(tmp_path / "out.mov", info)
    sent = []
    for frame in frames(info, VideoLimits()):
        writer.write(VideoFrame(frame.index, frame.pts, frame.time, frame.rgb, alpha))
        sent.append(frame.rgb)
    writer.close()
    with av.open(str(tmp_path / "out.mov")) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range) == (1, 1, 1, 1)  # BT.709, tv
        decoded = list(c.decode(video=0))
    assert len(decoded) == 3
    for frame, rgb in zip(decoded, sent, strict=True):
        levels, bits = alpha_plane(frame)
        assert np.array_equal(levels >> (bits - 8), alpha)  # narrowed by a shift
        assert np.array_equal(np.round(levels * 255 / (2**bits - 1)), alpha)  # or by rounding
        error = frame.to_ndarray(format="rgb24").astype(int)[:240] - rgb[:240]  # the opaque half
        assert np.abs(error).mean() < 0.25  # within a quarter level (bits_per_mb=1000 gave 0.5 here)
        assert np.abs(error.reshape(-1, 3).mean(axis=0)).max() < 0.05  # no cast in any channel
