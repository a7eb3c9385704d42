"""Animated GIF input cuts out like the other containers (it crashed when its frames were muxed,
and the CLI then hung), and a failure while writing ends the run with an RmbgError in words,
its decoding thread ended, never a hang."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.cli.main import main
from rmbg.video.decode import probe
from rmbg.video.limits import VideoLimits, VideoWriteError
from rmbg.video.pipeline import stream_mattes
from rmbg.video.result import MatteStore, write_clip
from tests.video_clips import Threshold, davis, threshold_registered, timeline


@functools.cache
def dog() -> tuple[np.ndarray, ...]:
    """The DAVIS dog's first 60 frames, decoded once for the module."""
    return davis("dog", 60)


def animated_gif(path, n: int, size: tuple[int, int], delay_ms: int = 40):
    """n frames of the dog (its 60 over again past 60), each with its own 255-colour palette: made
    with the fast octree: Pillow's default, the median cut, took most of this file's time."""
    frames = [Image.fromarray(f).resize(size, Image.Resampling.BILINEAR) for f in dog()[: min(n, 60)]]
    paletted = [f.quantize(255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE) for f in frames]
    paletted = [paletted[i % len(paletted)] for i in range(n)]
    paletted[0].save(path, save_all=True, append_images=paletted[1:], duration=delay_ms, loop=0)
    return path


@pytest.fixture(scope="module")
def gifs(tmp_path_factory):
    """gifs(n, size): an animated GIF written once for the module; the tests only read it."""
    folder, made = tmp_path_factory.mktemp("gifs"), {}

    def gif(n: int, size: tuple[int, int]):
        if (n, size) not in made:
            made[n, size] = animated_gif(folder / f"{n}-{size[0]}x{size[1]}.gif", n, size)
        return made[n, size]

    return gif


def decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rmbg-video-decode"]


@pytest.mark.parametrize(
    "n, size, formats",
    [
        (40, (160, 120), ("webm", "mp4")),
        pytest.param(80, (161, 97), ("webm", "mov", "mp4", "gif", "webp"), marks=pytest.mark.slow),
    ],
)
def test_animated_gifs_cut_out(tmp_path, gifs, n, size, formats):
    gif = gifs(n, size)
    outputs = [tmp_path / f"out.{fmt}" for fmt in formats]
    with rmbg.remove_video(gif, Threshold(), output=outputs) as result:
        assert result.frames == n and result.size == size
        assert result.duration == pytest.approx(n * 0.04)
    for path in outputs:
        times, duration, _ = timeline(path)
        assert len(times) == n, path.name
        assert times == pytest.approx([i * 0.04 for i in range(n)], abs=1e-3), path.name
        assert duration == pytest.approx(n * 0.04, abs=0.04), path.name


def test_rmbgs_own_gif_output_goes_back_in(tmp_path, gifs):
    with rmbg.remove_video(gifs(60, (160, 120)), Threshold(), output=tmp_path / "cut.gif") as first:
        mattes = list(first.mattes())
    with rmbg.remove_video(tmp_path / "cut.gif", Threshold(), output=tmp_path / "again.webm") as again:
        assert again.frames == 60
    assert len(timeline(tmp_path / "again.webm")[0]) == 60 and len(mattes) == 60


def test_a_large_animated_gif_is_scaled_and_cut_out(tmp_path, gifs):
    """4 frames: the scaling is per frame, so more frames add encoding time, not another case."""
    gif = gifs(4, (1200, 1200))
    with rmbg.remove_video(gif, Threshold(), smooth=False, output=tmp_path / "big.webm") as result:
        assert result.frames == 4 and result.size == (1080, 1080) and "scaled to 1080x1080" in result.note
    assert len(timeline(tmp_path / "big.webm")[0]) == 4


def test_the_cli_cuts_out_an_animated_gif(tmp_path, gifs, capsys):
    gif = gifs(60, (160, 120))
    with threshold_registered():
        assert main(["video", str(gif), "-o", str(tmp_path / "out.webm"), "-p", "threshold"]) == 0
    assert "60 frames, 2.4 s of video" in capsys.readouterr().out
    assert not decode_threads()


class BrokenWriter:
    """An output whose encoder refuses its 10th frame, as FFmpeg refused GIF frames before."""

    def __init__(self):
        self.written, self.aborted = 0, False

    def write(self, frame):
        if self.written == 9:
            raise VideoWriteError("Could not write out.webm (webm): FFmpeg refused it (Invalid argument).")
        self.written += 1

    def close(self):
        raise AssertionError("a failed output is never closed")

    def abort(self):
        self.aborted = True


def test_a_writer_that_fails_mid_clip_ends_the_run_and_its_decoding_thread(tmp_path, gifs):
    """The encoder's error reaches the caller, and the decoding thread (the frames still queued
    behind it) is ended before the call returns: left waiting, it hung the CLI at its exit."""
    gif = gifs(60, (160, 120))
    info = probe(gif, VideoLimits())
    writer = BrokenWriter()
    stream = stream_mattes(info, Threshold(), smooth=None)
    with pytest.raises(VideoWriteError, match="FFmpeg refused it"):
        write_clip(stream, info, [writer], MatteStore(tmp_path, (info.height, info.width)))  # type: ignore[list-item]
    assert writer.written == 9 and writer.aborted
    assert not decode_threads()


def test_ffmpeg_errors_while_writing_are_rmbg_errors(tmp_path, gifs):
    """Frames FFmpeg cannot mux (here: timestamps that run backwards, written by hand) are a
    VideoWriteError that names the file, not av's own error, and leave nothing behind."""
    from rmbg.video.encode import VideoWriter
    from rmbg.video.pipeline import VideoFrame

    gif = gifs(40, (160, 120))
    info = probe(gif, VideoLimits())
    writer = VideoWriter(tmp_path / "out.mp4", info)
    black, clear = np.zeros((120, 160, 3), np.uint8), np.zeros((120, 160), np.uint8)
    with pytest.raises(VideoWriteError, match=r"Could not write out.mp4 \(mp4\): FFmpeg refused it") as caught:
        for i in range(60):
            writer.write(VideoFrame(i, 60 - i, (60 - i) / 25, black, clear))
        writer.close()
    assert isinstance(caught.value, rmbg.RmbgError)
    writer.abort()  # what its callers do on any error
    assert not (tmp_path / "out.mp4").exists() and list(tmp_path.glob(".out.mp4.part*")) == []
