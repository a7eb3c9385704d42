"""Clips for the video tests, built in the test from the DAVIS 2016 clips in data/ (PyAV),
and a cheap deterministic provider that satisfies the Provider protocol."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from rmbg.providers.base import ProviderStatus
from rmbg.types import Cost, Matte

DATA = Path(__file__).resolve().parents[1] / "data" / "davis2016-clips"


_DECODED: dict[tuple[str, tuple[int, int] | None], list[np.ndarray]] = {}
_DECODING = threading.Lock()


def davis(seq: str = "dog", n: int = 12, size: tuple[int, int] | None = (214, 120)) -> tuple[np.ndarray, ...]:
    """The first n frames of a DAVIS clip (RGB uint8, read-only as Pillow gives them), resized to `size`
    (None: 854x480). Decoded once per process for each clip and size, as far as a call has asked, and shared:
    a cache of the last 4 (clip, count, size) asked decoded again for each other count (12, 48, 60 frames...):
    5.4 s of CPU in davis() for the 61 calls of the nine largest video files' fast tests, 1.2 s now."""
    with _DECODING:  # one decoder at a time extends a list: a frame is never appended twice
        out = _DECODED.setdefault((seq, size), [])
        if len(out) < n:
            with av.open(str(DATA / seq / "clip.mp4")) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i == len(out):
                        image = frame.to_image()
                        out.append(np.asarray(image.resize(size, Image.Resampling.BILINEAR) if size else image))
                    if len(out) >= n:
                        break
        return tuple(out[:n])


def davis_masks(seq: str, n: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    paths = sorted((DATA / seq / "masks").glob("*.png"))[:n]
    masks = [Image.open(p).convert("L") for p in paths]
    return [np.asarray(m.resize(size, Image.Resampling.NEAREST) if size else m) for m in masks]


def write_clip(
    path: Path,
    frames,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rate: int = 24,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    tone_hz: float | None = None,
    tone_seconds: float | None = None,
    audio_codec: str = "aac",
    gop: int | None = None,
) -> Path:
    """Encode RGB frames into `path` (container from the suffix); pts in `time_base` for a
    variable frame rate; a display rotation; a sine tone as the audio track
    (as long as the frames, or tone_seconds); a keyframe every `gop` frames."""
    frames = list(frames)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        if gop is not None:
            s.codec_context.gop_size = gop
        if time_base is not None:
            s.time_base = s.codec_context.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation)
        audio = c.add_stream(audio_codec, rate=48000, layout="mono") if tone_hz else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, threads=1)
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
        if audio is not None:
            seconds = tone_seconds or len(frames) / rate
            t = np.arange(int(48000 * seconds)) / 48000
            tone = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            step = 960
            fmt = audio.codec_context.codec.audio_formats[0].name
            resampler = av.AudioResampler(format=fmt, layout="mono", rate=48000)
            for start in range(0, len(tone), step):
                chunk = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                for ready in resampler.resample(chunk):
                    for packet in audio.encode(ready):
                        c.mux(packet)
            for packet in audio.encode(None):
                c.mux(packet)
    return path


def write_frames(
    path: Path, make: Callable[[], av.VideoFrame], count: int, codec: str, pix_fmt: str, *, options=None, **settings
) -> Path:
    """`count` frames of `make()` (a new frame each time) at 24 fps into `path`; `settings`: the codec
    context's, set as given (colorspace, color_trc, sample_aspect_ratio, ...): a clip tagged as a test
    needs it."""
    first = make()
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24, options=options or {})
        stream.width, stream.height, stream.pix_fmt = first.width, first.height, pix_fmt
        for name, value in settings.items():
            setattr(stream.codec_context, name, value)
        for i in range(count):
            frame = first if i == 0 else make()
            if frame.format.name != pix_fmt:  # as the encoder would, on one thread (rmbg.video.planes.SCALE_THREADS)
                frame = frame.reformat(format=pix_fmt, threads=1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _array(frame: av.VideoFrame, alpha: bool) -> np.ndarray:
    """RGB, or RGBA with the frame's own alpha plane (swscale's yuva420p -> rgba is not repeatable:
    tests/test_video_alpha_read.py)."""
    from rmbg.video.alpha import alpha_of

    rgb = frame.to_ndarray(format="rgb24", threads=1)
    return np.dstack([rgb, alpha_of(frame)]) if alpha else rgb


def decoded(path: Path, *, alpha: bool = False) -> tuple[list[np.ndarray], list[float]]:
    """Frames (RGBA when alpha, with libvpx-vp9 for VP9 so the alpha is kept) and their times (s)."""
    out, times = [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if stream.codec_context.name == "vp9":
            ctx = av.CodecContext.create("libvpx-vp9", "r")
            decoded_frames = [f for packet in c.demux(stream) if packet.size for f in ctx.decode(packet)]
            decoded_frames += list(ctx.decode(None))
            for f, packet_time in zip(decoded_frames, _packet_times(path)):
                out.append(_array(f, alpha))
                times.append(packet_time)
            return out, times
        for f in c.decode(stream):
            out.append(_array(f, alpha))
            times.append(float(f.time))
    return out, times


def _packet_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sorted(float(p.pts * stream.time_base) for p in c.demux(stream) if p.size)


class Threshold:
    """A cheap local 'model': alpha 255 where the frame's grey level is over `level`."""

    id = "threshold"
    label = "Threshold (tests)"
    kind = "local"

    def __init__(self, level: int = 100):
        self.level = level
        self.calls = 0

    def options(self):
        return {"level": self.level}

    def status(self):
        return ProviderStatus("ready")

    def estimate(self):
        return Cost.free()

    def matte(self, image):
        self.calls += 1
        started = time.perf_counter()
        grey = np.asarray(image.convert("L"))
        alpha = Image.fromarray(np.where(grey > self.level, 255, 0).astype(np.uint8), "L")
        # its own time, measured as a model's is (a fixed 1 ms was more than 12 frames' whole run on a fast CPU)
        return Matte(alpha, Cost.free(), max(time.perf_counter() - started, 1e-9), {"model": "threshold"})


@contextlib.contextmanager
def threshold_registered():
    """Threshold as the registered local provider "threshold" (the app lists it among the
    video providers), for as long as the block runs."""
    from rmbg import registry
    from rmbg.declarations import ProviderInfo

    declared = ProviderInfo("threshold", Threshold.label, "local", lambda **_: Threshold(), compare_by_default=False)
    registry.register("threshold", declared.factory, declared)
    try:
        yield
    finally:
        registry.unregister("threshold")


def timeline(path: Path) -> tuple[list[float], float, tuple[float, float] | None]:
    """What a player sees of a video file: each frame's time (s, in order), the container's
    duration (s), and the sound's (start, end) in seconds, or None without sound. Read from the
    packets (PyAV), and for WebP (whose FFmpeg demuxer sees one packet) from Pillow's frame durations."""
    if path.suffix.lower() == ".webp":
        with Image.open(path) as image:
            times, at = [], 0.0
            for i in range(image.n_frames):
                image.seek(i)
                image.load()
                times.append(at)
                at += image.info["duration"] / 1000
            return times, at, None
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        times = sorted(float(p.pts * video.time_base) for p in c.demux(video) if p.size)
        duration = c.duration / 1_000_000
    sound = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            audio = c.streams.audio[0]
            packets = [p for p in c.demux(audio) if p.size]
            start, last = packets[0], packets[-1]
            sound = (float(start.pts * audio.time_base), float((last.pts + last.duration) * audio.time_base))
    return times, duration, sound


class _Pipe(io.RawIOBase):
    """A file that cannot seek: a muxer writing into it cannot go back to fill in its header."""

    def __init__(self, file):
        self._file = file

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._file.write(data)


def write_undeclared(path: Path, n: int, rate: int, size: int = 16) -> Path:
    """An MKV of n grey frames (size x size) at `rate` fps whose header declares neither its
    duration nor its frame count, as a muxer writing into a pipe leaves it."""
    with path.open("wb") as file, av.open(_Pipe(file), "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(n):
            grey = np.full((size, size, 3), i % 256, np.uint8)
            for packet in s.encode(av.VideoFrame.from_ndarray(grey, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path
