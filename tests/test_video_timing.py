"""Every output lasts as long as its clip: for each output format and each input container and
time base, each frame's time, the container's duration and the sound as the input has them.

The clips have 60 frames, past the encoders' lag (libvpx holds 25 frames, libx264 about 40):
the WebM muxer changes its stream's time base to 1/1000 once it has written its header, and
frames stamped with the stream's time base after that were read in the wrong unit (a 2.5 s clip
came out 30 s long), which clips of 8-12 frames never reached.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

import rmbg
from tests.video_clips import Threshold, davis, timeline, write_clip

FRAME = 1 / 24  # one frame of the inputs' 24 fps: the most any time may be off
OUTPUTS = ("webm", "mov", "mp4", "matte", "gif", "webp")


@pytest.fixture(scope="module")
def pictures():
    """60 frames of DAVIS dog at 54x30 (tiny: the times are what is checked, and the lossless WebP and
    VP9 encoders' cost grows with the pixels; 27x15 chroma, odd, for MP4's padding)."""
    return [f[::4, ::4][:30, :54].copy() for f in davis("dog", 60)]


def make(kind: str, folder, pictures, sound: bool):
    tone = 440 if sound else None
    n = len(pictures)
    if kind == "mp4":  # PyAV's (and FFmpeg's) default for 24 fps H.264: 1/12288
        return write_clip(folder / "in.mp4", pictures, tone_hz=tone)
    if kind == "mp4-90k":
        return write_clip(
            folder / "in.mp4", pictures, time_base=Fraction(1, 90000), pts=[i * 3750 for i in range(n)], tone_hz=tone
        )
    if kind in ("mov", "mkv"):
        return write_clip(folder / f"in.{kind}", pictures, tone_hz=tone)
    if kind == "webm":
        return write_clip(folder / "in.webm", pictures, codec="libvpx-vp9", tone_hz=tone, audio_codec="libopus")
    if kind == "vfr":  # 30, 67 and 104 ms between frames, in turn
        pts = np.cumsum([0] + [30 + 37 * (i % 3) for i in range(n - 1)]).tolist()
        return write_clip(folder / "in.mkv", pictures, time_base=Fraction(1, 1000), pts=pts, tone_hz=tone)
    if kind == "rotated":
        return write_clip(folder / "in.mp4", pictures, rotation=90, tone_hz=tone)
    assert kind == "gif"  # 40 ms a frame
    images = [Image.fromarray(p) for p in pictures]
    images[0].save(folder / "in.gif", save_all=True, append_images=images[1:], duration=40, loop=0)
    return folder / "in.gif"


def outputs_of(clip, folder) -> dict[str, object]:
    paths = [folder / f"out.{fmt}" for fmt in OUTPUTS if fmt != "matte"]
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=paths) as result:
        matte = result.save(folder / "matte.mp4", "matte")
    return dict(zip(OUTPUTS, [*paths[:3], matte, *paths[3:]], strict=True))


def check_timing(clip, outputs) -> None:
    times, duration, sound = timeline(clip)
    for fmt, path in outputs.items():
        got, got_duration, got_sound = timeline(path)
        assert len(got) == len(times) == 60, fmt
        # GIF counts in hundredths of a second: 5 ms at most; the others keep the times
        worst = max(abs(a - b) for a, b in zip(got, times, strict=True))
        assert worst <= (0.0051 if fmt == "gif" else 0.0011), (fmt, worst)
        assert got_duration == pytest.approx(duration, abs=FRAME), fmt
        if sound is None or fmt in ("gif", "webp"):
            assert got_sound is None, fmt
            continue
        assert got_sound is not None, fmt
        assert got_sound[0] == pytest.approx(sound[0], abs=FRAME), fmt
        assert got_sound[1] == pytest.approx(sound[1], abs=FRAME), fmt
        if sound[1] >= times[-1]:  # the sound does not end before the picture where it did not
            assert got_sound[1] >= got[-1], fmt


def test_a_default_mp4_with_sound_keeps_its_timing_in_every_format(tmp_path, pictures):
    clip = make("mp4", tmp_path, pictures, sound=True)
    check_timing(clip, outputs_of(clip, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, sound",
    [("mp4", False)]  # ("mp4", True) is the test above: the default MP4, with sound
    + [(kind, sound) for kind in ("mp4-90k", "mov", "mkv", "webm", "vfr", "rotated") for sound in (False, True)]
    + [("gif", False)],  # a GIF has no sound track
)
def test_every_input_keeps_its_timing_in_every_format(tmp_path, pictures, kind, sound):
    clip = make(kind, tmp_path, pictures, sound)
    check_timing(clip, outputs_of(clip, tmp_path))


def _as_a_browser_plays(path) -> list[int]:
    """Each frame's delay (ms) as Chromium and Firefox play an animated GIF or WebP: 10 ms or less as 100."""
    with Image.open(path) as image:
        delays = []
        for i in range(image.n_frames):
            image.seek(i)
            image.load()  # a WebP frame's duration is read with its pixels
            delays.append(image.info["duration"])
    return [100 if delay <= 10 else delay for delay in delays]


@pytest.mark.parametrize("gap_ms", [4, 8, 16.667])
def test_an_animation_of_a_fast_clip_plays_at_the_clips_speed(tmp_path, pictures, gap_ms):
    """Frames 4, 8 and 16.7 ms apart (250, 120 and 60 fps: phones film at 60, slow motion at 120 and 240)
    into a GIF and a WebP: a browser plays a frame shown for 10 ms or less for 100 ms, so every frame
    kept made the 60 fps GIF play 2.8 times too slow and the 120 fps one 12 times. Frames under 20 ms
    after the last one kept are left out: the animation lasts as long as the clip, as a browser plays it."""
    pts = [round(gap_ms * i * 3) for i in range(len(pictures))]  # in thirds of a millisecond
    clip = write_clip(tmp_path / "fast.mkv", pictures, time_base=Fraction(1, 3000), pts=pts)
    length = len(pictures) * gap_ms  # ms: the last frame lasts one gap; the animation's last, a nominal frame
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=[tmp_path / "o.gif", tmp_path / "o.webp"]):
        pass
    for name in ("o.gif", "o.webp"):
        delays = _as_a_browser_plays(tmp_path / name)
        assert min(delays) >= 20 and sum(delays) == pytest.approx(length, abs=1000 / 24 + 10), (name, delays)
        times = timeline(tmp_path / name)[0]
        assert len(times) == len(delays) and all(b > a for a, b in zip(times, times[1:])), name
