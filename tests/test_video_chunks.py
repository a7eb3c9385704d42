"""A clip cut into chunks (rmbg.video.chunks), each decoded from the keyframe before it with the
overlap the smoothing needs, joins into the mattes of one run over the whole clip (a cheap
threshold 'model'; the Ray engine's runs with U2-Net-p are in test_ray_video)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from rmbg.errors import RmbgError
from rmbg.video.chunks import chunk_length, chunk_mattes, frames_at, plan_chunks
from rmbg.video.decode import frames, probe
from rmbg.video.limits import VideoLimits
from rmbg.video.packets import frame_pts
from rmbg.video.pipeline import stream_mattes
from rmbg.video.smooth import SmoothParams
from tests.video_clips import Threshold, davis, write_clip

LIMITS = VideoLimits()


def small(n: int) -> list[np.ndarray]:
    """The first n of 12 DAVIS dog frames at 106x60: how chunks join is the same at any size."""
    return [f[::2, ::2][:, :106].copy() for f in davis("dog", 12)[:n]]


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    """12 frames with B-frames and a keyframe every 5: most chunks start after a seek."""
    return probe(write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", small(12), gop=5), LIMITS)


def test_chunks_take_the_overlap_the_filter_reaches():
    pts = list(range(0, 1000, 100))  # 10 frames
    chunks = plan_chunks(pts, 4, SmoothParams())
    assert [(c.start, c.stop, c.first, len(c.pts), c.ends_clip) for c in chunks] == [
        (0, 4, 0, 6, False),  # 2 after it
        (4, 8, 2, 8, True),  # 2 before and the clip's last 2 after: it flushes the filter
        (8, 10, 6, 4, True),
    ]
    assert chunks[1].pts == tuple(pts[2:10])
    assert SmoothParams(past=3, ahead=1).reach == (3, 1) and SmoothParams(past=0, ahead=0).reach == (0, 0)
    causal = plan_chunks(pts, 4, SmoothParams(past=3, ahead=0))
    assert [(c.first, len(c.pts)) for c in causal] == [(0, 4), (1, 7), (5, 5)]
    assert [(c.first, len(c.pts)) for c in plan_chunks(pts, 4, None)] == [(0, 4), (4, 4), (8, 2)]


def test_chunk_length_from_seconds_or_frames():
    assert chunk_length(24.0) == 48 and chunk_length(29.97, 0.5) == 15 and chunk_length(24.0, 0.01) == 1
    assert chunk_length(24.0, None, 7) == 7
    for bad in ({"frames": 0}, {"seconds": 0}, {"seconds": float("nan")}, {"seconds": float("inf")}):
        with pytest.raises(RmbgError, match="chunk needs"):  # NaN and infinity once failed in round()
            chunk_length(24.0, **bad)


def test_a_seek_gives_the_frames_a_whole_decode_gives(info):
    pts = frame_pts(info, LIMITS)
    whole = list(frames(info, LIMITS))
    assert pts == [f.pts for f in whole]
    for first in (0, 3, 5, 7, 11):
        got = list(frames_at(info, pts[first : first + 4], first))
        assert [(f.index, f.pts, f.time) for f in got] == [(f.index, f.pts, f.time) for f in whole[first : first + 4]]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, whole[first : first + 4], strict=True))


@pytest.mark.parametrize("smooth", [SmoothParams(), SmoothParams(past=3, ahead=1), None])
def test_chunks_join_into_the_whole_streams_mattes(info, smooth):
    whole = [f.alpha for f in stream_mattes(info, Threshold(), limits=LIMITS, smooth=smooth)]
    pts = frame_pts(info, LIMITS)
    for size in (1, 2, 5, 11, 12, 30):
        parts = [chunk_mattes(info, Threshold(), c, smooth, LIMITS) for c in plan_chunks(pts, size, smooth)]
        assert [p.pts for p in parts] == [tuple(pts[p.start : p.start + len(p.alphas)]) for p in parts]
        joined = [a for p in parts for a in p.alphas]
        assert len(joined) == 12 and all(np.array_equal(a, b) for a, b in zip(whole, joined, strict=True)), size
    if smooth is not None:  # the check means something: the filter changes the mattes
        raw = [f.alpha for f in stream_mattes(info, Threshold(), limits=LIMITS, smooth=None)]
        assert not all(np.array_equal(a, b) for a, b in zip(whole, raw))


@pytest.mark.parametrize(
    "name, options",
    [
        ("vfr.mkv", {"pts": [0, 40, 90, 100, 180, 200, 260, 300, 370], "time_base": Fraction(1, 1000), "gop": 3}),
        ("rotated.mp4", {"rotation": 90, "gop": 3}),
        ("clip.gif", {"codec": "gif", "pix_fmt": "rgb8"}),
        ("clip.webm", {"codec": "libvpx-vp9", "pix_fmt": "yuv420p", "gop": 3}),
    ],
)
def test_chunks_of_any_container_join_into_the_whole_stream(tmp_path, name, options):
    """A variable frame rate, a rotated phone clip, a GIF and a WebM: the same frames, times and mattes."""
    info = probe(write_clip(tmp_path / name, small(9), **options), LIMITS)
    whole = list(stream_mattes(info, Threshold(), limits=LIMITS))
    pts = frame_pts(info, LIMITS)
    assert pts == [f.pts for f in whole]
    for size in (1, 2, 4):
        parts = [
            chunk_mattes(info, Threshold(), c, SmoothParams(), LIMITS) for c in plan_chunks(pts, size, SmoothParams())
        ]
        joined = [a for p in parts for a in p.alphas]
        assert all(np.array_equal(a, f.alpha) for a, f in zip(joined, whole, strict=True)), size
