"""A hosted service's alpha is read the same way every time, and exactly (rmbg.video.alpha.alpha_of).

Read through swscale's yuva420p -> rgba conversion (PyAV 19), the same VP9 answer decoded twice gave
different mattes: runs of 8 pixels of one row read 0 where the file holds 200, in some frames of some
reads (215 of 480 frames differed in 40 reads of a 12-frame 214x120 answer of the fal fake): a cut-out
had holes that are in no file, and the same answer read twice disagreed.
The alpha is now taken from the frame's own alpha plane: the same bytes on every read, and a 10-bit
ProRes alpha rounded to 8 bits exactly where swscale was one off."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from rmbg.video.alpha import alpha_of, returned_alpha
from rmbg.video.decode import probe
from rmbg.video.limits import VideoLimits
from tests.video_clips import write_clip, write_frames

COUNT = 6


def alphas(size: tuple[int, int]) -> list[np.ndarray]:
    """COUNT mattes with soft edges and solid parts, as a cut-out has (seeded)."""
    rng = np.random.default_rng(7)
    w, h = size
    ramp = np.tile(np.linspace(0, 255, w), (h, 1))
    return [np.clip(ramp + rng.normal(0, 40, (h, w)), 0, 255).astype(np.uint8) for _ in range(COUNT)]


def answer(folder: Path, size: tuple[int, int], codec: str, pix_fmt: str) -> tuple[Path, list[np.ndarray]]:
    """A clip as a vendor answers: grey frames with `alphas(size)` in `codec`."""
    given = alphas(size)  # each frame stacks a copy: these stay as given
    made = iter(given)
    w, h = size

    def frame() -> av.VideoFrame:
        rgba = np.dstack([np.full((h, w, 3), 128, np.uint8), next(made)])
        return av.VideoFrame.from_ndarray(rgba, format="rgba")

    suffix = ".webm" if codec == "libvpx-vp9" else ".mov"
    # lossless at libvpx's fastest setting: the same pixels in the file, in a fifth of the time
    options = {"lossless": "1", "deadline": "realtime", "cpu-used": "8"} if codec == "libvpx-vp9" else {"profile": "4"}
    return write_frames(folder / f"answer{suffix}", frame, COUNT, codec, pix_fmt, options=options), given


def read(path: Path, clip: Path) -> list[np.ndarray]:
    info = probe(clip, VideoLimits())
    return [a.alpha for a in returned_alpha(path, info, VideoLimits(), "test-vendor")]


@pytest.mark.parametrize("size", [(214, 120), (854, 480)])
def test_a_vp9_answer_reads_the_same_every_time(tmp_path, size):
    path, given = answer(tmp_path, size, "libvpx-vp9", "yuva420p")
    clip = write_clip(tmp_path / "clip.mp4", [np.zeros((size[1], size[0], 3), np.uint8)] * COUNT)
    first = read(path, clip)
    for _ in range(12):
        assert all(np.array_equal(a, b) for a, b in zip(first, read(path, clip), strict=True))
    for got, want in zip(first, given, strict=True):  # lossless VP9: the alpha given, within a level
        assert np.abs(got.astype(int) - want).max() <= 1


def test_a_prores_answers_deeper_alpha_is_rounded_to_the_8_bits_given(tmp_path):
    path, given = answer(tmp_path, (214, 120), "prores_ks", "yuva444p10le")  # decoded as 12-bit alpha
    clip = write_clip(tmp_path / "clip.mp4", [np.zeros((120, 214, 3), np.uint8)] * COUNT)
    for got, want in zip(read(path, clip), given, strict=True):
        # exact but for a few pixels prores_ks codes otherwise (in the file: any read sees them); through
        # swscale 56 % of the pixels came back one level off
        assert (got == want).mean() > 0.998


@pytest.mark.parametrize("fmt", ["rgba", "bgra", "argb", "abgr", "yuva444p16le", "gbrap", "gbrap12le"])
def test_every_layout_gives_its_alpha(fmt):
    want = alphas((40, 24))[0]
    rgba = np.dstack([np.full((24, 40, 3), 90, np.uint8), want])
    frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format=fmt, threads=1)
    assert np.abs(alpha_of(frame).astype(int) - want).max() <= 1
    assert alpha_of(frame).shape == (24, 40) and alpha_of(frame).dtype == np.uint8


@contextlib.contextmanager
def busy_cores(count: int = 2) -> Iterator[None]:
    """`count` threads multiplying matrices (numpy lets go of the GIL), as a loaded server's other work:
    swscale's slices then run out of step more often. Stopped and joined on the way out."""
    done = threading.Event()

    def spin() -> None:
        square = np.random.default_rng(0).random((300, 300))
        while not done.is_set():
            square @ square

    spinning = [threading.Thread(target=spin, daemon=True) for _ in range(count)]
    for thread in spinning:
        thread.start()
    try:
        yield
    finally:
        done.set()
        for thread in spinning:
            thread.join()


def test_every_conversion_of_our_frames_gives_the_same_pixels_on_a_loaded_machine():
    """rmbg.video.planes.SCALE_THREADS: before, 8-pixel runs at a slice's first row came out otherwise in
    11 to 34 of 60 ProRes frames with other processes busy (all four planes, alpha included), 16 of 60 on
    a quiet machine."""
    from rmbg.video.colour import shown_rgb
    from rmbg.video.encode import prores_frame, yuv

    rgba = np.random.default_rng(3).integers(0, 256, (480, 854, 4), dtype=np.uint8)
    coded = av.VideoFrame.from_ndarray(rgba[..., :3].copy(), format="rgb24").reformat(format="yuv420p", threads=1)

    def planes(frame: av.VideoFrame) -> list[np.ndarray]:
        wide = 2 if frame.format.name.endswith(("10le", "16le")) else 1
        return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width * wide] for p in frame.planes]

    conversions = {
        "prores": lambda: planes(prores_frame(rgba)),
        "webm": lambda: planes(yuv(rgba, "yuva420p")),
        "mp4": lambda: planes(yuv(rgba[..., :3].copy(), "yuv420p")),
        "decoded": lambda: [shown_rgb(coded, 854, 480, "h264")],
    }
    for name, convert in conversions.items():
        first = [plane.copy() for plane in convert()]
        differing = sum(not all(np.array_equal(a, b) for a, b in zip(first, convert(), strict=True)) for _ in range(60))
        assert differing == 0, f"{name}: {differing} of 60 conversions differ"
