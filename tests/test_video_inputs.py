"""Video inputs that must be refused in words (damaged, empty, not a video, over a limit), limits
checked again while decoding, and memory that does not grow with the clip's length."""

from __future__ import annotations

import dataclasses
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.video import InvalidVideoError, VideoLimitError, VideoLimits
from rmbg.video.decode import frames, probe
from tests.video_clips import Threshold, davis, timeline, write_clip, write_undeclared


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("inputs") / "dog.mp4", davis("dog", 12))


def refused(source, match, limits=None, error=InvalidVideoError):
    with pytest.raises(error, match=match) as caught:
        rmbg.remove_video(source, Threshold(), limits=limits)
    assert isinstance(caught.value, rmbg.InvalidImageError) and isinstance(caught.value, rmbg.RmbgError)
    return str(caught.value)


def test_empty_and_non_video_files(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    refused(tmp_path / "empty.mp4", r"empty.mp4 is an empty file \(0 bytes\)")
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 20)
    refused(tmp_path / "notes.mp4", "notes.mp4 is not a video we can read: it may be damaged, cut off")
    Image.new("RGB", (32, 32), "red").save(tmp_path / "still.png")
    refused(tmp_path / "still.png", "still.png is a still image, not a video we take: give an MP4, MOV")
    pictures = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    for name, said in (("moving.webp", "an animated WebP"), ("moving.png", "an animated PNG")):  # FFmpeg's webp_anim
        pictures[0].save(tmp_path / name, save_all=True, append_images=pictures[1:], duration=40)
        refused(tmp_path / name, f"{name} is {said}, not a video we take: give an MP4, MOV, WebM, MKV or animated GIF")
    refused(b"", r"The video is an empty file")
    refused(tmp_path / "missing.mp4", "missing.mp4 is not a file")


def test_truncated_and_corrupt_clips(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) of this MP4 is at its end: gone
    refused(cut, "cut.mp4 is not a video we can read")
    webm = write_clip(tmp_path / "long.webm", davis("dog", 12) * 4, codec="libvpx-vp9")
    short = tmp_path / "short.webm"
    short.write_bytes(webm.read_bytes()[: webm.stat().st_size // 3])
    refused(short, r"short.webm stops at \d\.\d s although its header says 2\.0 s: the file is cut off")
    noisy = bytearray(data)
    rng = np.random.default_rng(0)
    for at in rng.integers(len(data) // 4, len(data), 400):
        noisy[at] ^= 0xFF
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(bytes(noisy))
    try:  # FFmpeg conceals some damage; whatever it cannot decode must be said in words
        with rmbg.remove_video(garbled, Threshold()) as out:
            assert out.frames >= 1
    except InvalidVideoError as exc:
        assert "garbled.mp4" in str(exc)


def _remuxed(path, *sources):
    """The tracks of every source (a clip, a subtitle file) copied into one file."""
    inputs = [av.open(str(source)) for source in sources]
    with av.open(str(path), "w") as out:  # every track made before the first packet is written
        tracks = [{s.index: out.add_stream_from_template(s) for s in clip.streams} for clip in inputs]
        for clip, made in zip(inputs, tracks, strict=True):
            for packet in clip.demux():
                if packet.dts is not None:
                    packet.stream = made[packet.stream_index]
                    out.mux(packet)
    for clip in inputs:
        clip.close()
    return path


@pytest.mark.parametrize("sound", [None, "libopus", "aac"])
def test_a_cut_off_clip_is_refused_before_the_model_runs_with_or_without_sound(tmp_path, sound):
    """An interrupted recording or a partial download (an MKV cut at half its bytes) was accepted in
    silence when it had a sound track: half the clip came back, exit 0. Without one it was refused only
    after the model had run on every frame it held. Now its packets, every track's, are held against the
    length its header says before any frame is decoded."""
    whole = write_clip(tmp_path / "whole.mkv", davis("dog", 12) * 5, tone_hz=440 if sound else None,
                       audio_codec=sound or "aac")  # fmt: skip
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    model = Threshold()
    with pytest.raises(InvalidVideoError, match=r"cut.mkv stops at 1\.\d s although its header says 2\.5 s: the fi"):
        rmbg.remove_video(cut, model)
    assert model.calls == 0
    with rmbg.remove_video(whole, model, smooth=False) as out:  # the same clip whole: every frame
        assert out.frames == 60  # 60 frames with their sound, as a phone clip of 2.5 s


def test_a_track_that_runs_past_the_picture_is_no_cut(tmp_path):
    """A file's length is its longest track's: a subtitle cue at 4-5 s, or sound that goes on after the
    picture, made a whole 0.5 s clip 'cut off or damaged' (after the model had run on it)."""
    picture = write_clip(tmp_path / "picture.mp4", davis("dog", 12))
    cues = tmp_path / "cues.srt"
    cues.write_text("1\n00:00:00,000 --> 00:00:00,400\nHello\n\n2\n00:00:04,000 --> 00:00:05,000\nBye\n\n")
    voiced = write_clip(tmp_path / "voiced.mkv", davis("dog", 12), tone_hz=440, tone_seconds=3, audio_codec="libopus")
    for clip in (_remuxed(tmp_path / "subtitled.mkv", picture, cues), voiced):
        with av.open(str(clip)) as opened:
            assert opened.duration / 1e6 > 2.5  # the header's length is the longer track's
        model = Threshold()
        with rmbg.remove_video(clip, model, smooth=False) as out:
            assert (out.frames, model.calls) == (12, 12)


@pytest.mark.parametrize("height, width", [(2, 2), (5, 3), (11, 11)])
def test_a_clip_of_tiny_frames_is_cut_like_any_other(tmp_path, height, width):
    """Frames under 12 px on both sides are smoothed without optical flow, as still frames: OpenCV's
    DIS flow refuses them, and a 3x5 clip sent to POST /api/video was answered 500."""
    shades = [np.full((height, width, 3), shade, np.uint8) for shade in (40, 200, 40, 200)]
    clip = write_clip(tmp_path / "tiny.mkv", shades, codec="ffv1", pix_fmt="yuv444p")
    with rmbg.remove_video(clip, Threshold(), format="matte") as out:
        assert out.frames == 4
        assert [matte.shape for matte in out.mattes()] == [(height, width)] * 4


def test_header_limits_are_checked_before_decoding(clip):
    refused(
        clip, r"The video is 0.5 s, over the 0.25 s limit \(RMBG_VIDEO_MAX_SECONDS\)", VideoLimits(max_seconds=0.25)
    )
    refused(clip, r"more than 5 frames \(RMBG_VIDEO_MAX_FRAMES\)", VideoLimits(max_frames=5), VideoLimitError)
    refused(clip, r"dog.mp4 is 0 MB, over the 0 MB limit \(RMBG_VIDEO_MAX_MB\)", VideoLimits(max_bytes=1000))
    refused(clip, r"214x120, over the 0 MP limit \(RMBG_MAX_PIXELS\)", VideoLimits(max_pixels=10_000))


def test_limits_come_from_the_settings(monkeypatch, clip):
    monkeypatch.setenv("RMBG_VIDEO_MAX_SECONDS", "0.25")
    monkeypatch.setenv("RMBG_VIDEO_MAX_SIZE", "100x200")
    limits = VideoLimits.from_settings()
    assert (limits.max_seconds, limits.max_long, limits.max_short) == (0.25, 200, 100)
    refused(clip, "over the 0.25 s limit")
    monkeypatch.setenv("RMBG_VIDEO_MAX_SIZE", "big")
    refused(clip, "RMBG_VIDEO_MAX_SIZE must be WIDTHxHEIGHT")


def test_large_frames_are_scaled_with_a_note(clip):
    with rmbg.remove_video(clip, Threshold(), limits=VideoLimits(max_long=107, max_short=100)) as out:
        assert out.size == (107, 60) and out.frames == 12
        assert out.note == "The frames (214x120) are larger than 107x100 (RMBG_VIDEO_MAX_SIZE): scaled to 107x60."


def test_limits_are_checked_again_while_decoding(clip):
    """A header that says nothing (or lies) does not get a clip past the limits."""
    info = dataclasses.replace(probe(clip, VideoLimits()), seconds=None, frames=None)
    with pytest.raises(VideoLimitError, match="more than 5 frames"):
        list(frames(info, VideoLimits(max_frames=5)))
    with pytest.raises(VideoLimitError, match=r"The video runs past 0.3 s, over the 0.25 s limit"):
        list(frames(info, VideoLimits(max_seconds=0.25)))


def test_limits_hold_on_what_a_clip_contains_when_its_header_declares_nothing(tmp_path):
    """5,000 frames at 1,000 fps with no declared duration or frame count: refused on its packets,
    before the model runs on any frame (it ran on 3,600 before it was refused)."""
    clip = write_undeclared(tmp_path / "stream.mkv", 5000, 1000)
    info = probe(clip, VideoLimits(max_frames=10_000))
    assert (info.seconds, info.frames, info.packets) == (None, None, 5000)
    assert info.span == pytest.approx(5.0, abs=0.002)
    model = Threshold()
    with pytest.raises(VideoLimitError, match=r"more than 3600 frames \(RMBG_VIDEO_MAX_FRAMES\)"):
        rmbg.remove_video(clip, model)
    with pytest.raises(VideoLimitError, match=r"The video runs past 2\.1 s, over the 2 s limit"):
        rmbg.remove_video(clip, model, limits=VideoLimits(max_seconds=2))
    assert model.calls == 0


def test_a_clip_lasts_from_its_first_frame_to_the_end_of_its_last(tmp_path):
    """12 frames over 59 s (the last gap 39 s): the clip lasts until its last frame ends (59.04 s,
    its packet's duration), not the last frame plus the gap before it (it was reported as 98 s)."""
    pts = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 20000, 59000]
    clip = write_clip(tmp_path / "vfr.mkv", davis("dog", 12), pts=pts, time_base=Fraction(1, 1000))
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=tmp_path / "vfr.webm") as result:
        assert result.frames == 12 and result.duration == pytest.approx(59.041, abs=0.002)
    assert timeline(tmp_path / "vfr.webm")[1] == pytest.approx(59.041, abs=1 / 24)


def _peak(path) -> int:
    tracemalloc.start()
    try:
        with rmbg.remove_video(path, Threshold(), output=path.with_suffix(".webm")) as out:
            assert out.frames > 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_clip(tmp_path):
    small = [f[::2, ::2][:60, :104].copy() for f in davis("dog", 12)]
    short = write_clip(tmp_path / "short.mp4", small * 4)  # 2 s, past the filter's window and the queues
    long = write_clip(tmp_path / "long.mp4", small * 24)  # 12 s: a matte kept per frame would be 1.5 MB more
    _peak(short)  # warm-up: first-use allocations (codecs, flow) are not the clip's
    five, sixty = _peak(short), _peak(long)
    assert sixty < five * 1.25 + 256 * 1024, (five, sixty)
    assert sixty < 300 * 2**20
