"""Video out: each output format, encoded with PyAV frame by frame.

    webm   VP9 with alpha (libvpx-vp9, yuva420p): transparent; plays in Chrome, Firefox, Edge,
           Android and most editors. The default for transparency.
    mov    ProRes 4444 with alpha (prores_ks, yuva444p10le): transparent; for Final Cut, Premiere,
           DaVinci Resolve, After Effects and Safari/QuickTime. Large by design (an editing format).
    mp4    H.264 (libx264, yuv420p) on a colour or image background (white by default): no
           transparency, plays everywhere. Odd sizes are padded to even with the edge pixels.
    matte  H.264 of the alpha itself (white = subject), for compositing elsewhere.
    gif    animated GIF with one transparent palette entry (hard edges); for short clips.
    webp   animated WebP with alpha (libwebp_anim, lossless); for short clips.

Frames keep their input timestamps (the clip's time_base), less the clip's start where it starts late
(rmbg.video.audio.starts_at), so the output has the same frame count and timing as the input, variable
frame rate included (GIF counts time in hundredths of a second, so its timing is rounded to them; a GIF
or WebP shows a frame for 20 ms at least, as browsers play them, so frames of a clip over 50 fps closer
than that are left out of those two). Audio is carried over unless turned off (rmbg.video.audio).

A writer writes into a hidden temporary file beside the output and renames it
at the end (`close`); `abort` deletes it: a stopped or failed run never
leaves half a video at the output path.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidRequestError
from ..image import arrays
from ..image.compose import fit_cover, parse_colour
from .audio import AudioFeed, starts_at
from .decode import ClipInfo
from .lengths import Lengths, webp_ends_at
from .limits import OutputBlocked, VideoWriteError
from .pipeline import VideoFrame
from .planes import SCALE_THREADS

FORMATS = ("webm", "mov", "mp4", "matte", "gif", "webp")
SUFFIX = {"webm": ".webm", "mov": ".mov", "mp4": ".mp4", "matte": ".mp4", "gif": ".gif", "webp": ".webp"}
TRANSPARENT = ("webm", "mov", "gif", "webp")
YUV = ("webm", "mov", "mp4", "matte")  # stored as YUV: converted and tagged BT.709, limited range
WITH_AUDIO = ("webm", "mov", "mp4", "matte")
HOLD_LAST = ("mov", "mp4", "matte", "gif")  # a stream ends with its last packet in decoding order (rmbg.video.lengths)
# Constant quality, picked so a cut-out is no larger than twice its input
# (benchmarks/video.py measures the ratio on the DAVIS clips).
WEBM_OPTIONS = {"crf": "34", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1", "auto-alt-ref": "0"}
MP4_OPTIONS = {"crf": "23", "preset": "veryfast"}
MATTE_OPTIONS = {"crf": "20", "preset": "veryfast"}
# Lossless at libwebp's effort 2 (FFmpeg's default is 4): on the DAVIS cut-outs 0.42-0.50x the CPU time of
# level 4 for files 1.2 % smaller to the same size; every level keeps each visible pixel exact
# (archived benchmarks/webp_effort.py, docs/video.md#formats-and-which-plays-where)
WEBP_OPTIONS = {"lossless": "1", "compression_level": "2"}
# ProRes 4444 at the encoder's own rate: bits_per_mb=1000 left opaque pixels 0.19-0.50 levels off on
# the DAVIS clips in data/, the default 0.05-0.07, with no cast (archived benchmarks/video_prores.py)
PRORES_OPTIONS = {"profile": "4", "vendor": "apl0"}
GIF_TIME_BASE = Fraction(1, 100)
WEBP_TIME_BASE = Fraction(1, 1000)
SHORTEST_SHOWN = Fraction(2, 100)  # the shortest time browsers show a GIF's or a WebP's frame for (s)


def format_of(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The output format: `fmt` when given, else from the file's extension. A file is what its
    name says: a `fmt` that another format's extension contradicts is refused (format="webm" into
    "clip.mp4"); "matte" is an MP4, so it goes into a .mp4 name (or one with no such extension)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise InvalidRequestError(f"Unknown video format {fmt!r}: use one of {', '.join(FORMATS)}.")
        named = suffix if suffix in FORMATS and suffix != "matte" else None
        if named is not None and SUFFIX[fmt] != f".{named}":
            raise InvalidRequestError(
                f"{Path(path).name} names a .{named} file, but format={fmt!r} writes {SUFFIX[fmt]}: end the name in "
                f"{SUFFIX[fmt]}, or leave the format out."
            )
        return fmt
    if suffix in FORMATS and suffix != "matte":
        return suffix
    raise InvalidRequestError(
        f"Cannot tell the video format from {Path(path).name!r}: end it in .webm, .mov, .mp4, .gif or .webp, "
        "or pass format= (webm, mov, mp4, matte, gif, webp)."
    )


def background_of(value: Any, size: tuple[int, int]) -> np.ndarray:
    """The background (H x W x 3 uint8) of an MP4: a colour (white when None) or an image, fitted to cover."""
    if isinstance(value, Image.Image):  # its colours in sRGB's (BT.709's) space, as its profile says
        return np.asarray(fit_cover(value, size), dtype=np.uint8)
    colour = parse_colour(value if value is not None else "white")
    return np.broadcast_to(np.asarray(colour[:3], dtype=np.uint8), (size[1], size[0], 3))


def _even(array: np.ndarray) -> np.ndarray:
    h, w = array.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return array
    pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="edge")


def cutout_rgba(frame: VideoFrame) -> np.ndarray:
    """RGBA of the cut-out; colour zeroed where alpha is 0 (rmbg.image.arrays.rgba: OpenCV where it
    is installed, as the video extra has it)."""
    return arrays.rgba(frame.rgb, frame.alpha)


def over(frame: VideoFrame, background: np.ndarray) -> np.ndarray:
    """The frame over `background` through its alpha (RGB uint8, rounded)."""
    a = frame.alpha[..., None].astype(np.uint16)
    mixed = frame.rgb.astype(np.uint16) * a + background.astype(np.uint16) * (255 - a) + 127
    return (mixed // 255).astype(np.uint8)


@contextlib.contextmanager
def _writing(path: Path, fmt: str) -> Iterator[None]:
    """FFmpeg's and the file system's errors while writing `path`, as a VideoWriteError in words."""
    import av

    try:
        yield
    except av.error.FFmpegError as exc:
        said = getattr(exc, "strerror", None) or str(exc)
        raise VideoWriteError(f"Could not write {path.name} ({fmt}): FFmpeg refused it ({said}).") from exc
    except OSError as exc:  # a file where a folder of the path must be: said as such, else the system's words
        blocked = OutputBlocked.found(path) if exc.errno in (errno.EEXIST, errno.ENOTDIR) else None
        raise (blocked or VideoWriteError(f"Could not write {path}: {exc.strerror or exc}.")) from exc


class VideoWriter:
    """One output file of one clip: `write(frame)` in order, then `close()` (or `abort()`).
    Every failure of FFmpeg or of the disk is raised as a VideoWriteError (an RmbgError)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: ClipInfo,
        fmt: str | None = None,
        *,
        background: Any = None,
        audio: bool = True,
    ):
        import av

        self.path = Path(path)
        self.fmt = format_of(self.path, fmt)
        self.info = info
        self.part = self.path.with_name(f".{self.path.name}.part{os.getpid()}")
        size = (info.width, info.height)
        self._background = background_of(background, size) if self.fmt == "mp4" else None
        if self.fmt != "mp4" and background is not None:
            raise InvalidRequestError(f"A background needs the mp4 format; {self.fmt} keeps the transparency.")
        container_format = {"matte": "mp4", "webp": "webp", "gif": "gif"}.get(self.fmt, self.fmt)
        with _writing(self.path, self.fmt):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # an animated picture loops for ever, as a GIF on a page does; "loop" is the WebP muxer's
            # (its default, 1, plays once; given to the encoder it was dropped in silence). An MP4 has its
            # index (moov) before its frames, as the web wants it: a page or a phone plays it as it arrives
            # instead of fetching the end of the file first (the mov muxer moves it there on close).
            muxing = {"webp": {"loop": "0"}, "mp4": {"movflags": "+faststart"}}.get(container_format, {})
            self._container = av.open(str(self.part), "w", format=container_format, options=muxing)
        self.frames = 0
        self._last_pts: int | None = None
        start = info.start_pts * info.time_base  # where the picture starts (s, on the clip's timestamps)
        self._audio: AudioFeed | None = None
        try:
            with _writing(self.path, self.fmt):
                self._stream = self._add_video(size)
                if audio and info.audio_codec is not None and self.fmt in WITH_AUDIO:
                    end = float(start) + info.span if info.span is not None else None  # the picture's
                    feed = AudioFeed(info.path, self._container, "mp4" if self.fmt == "matte" else self.fmt, end)
                    self._audio = None if feed.empty else feed
            self._shift = round(starts_at(start, self._audio) / info.time_base)  # ticks off each frame's pts
        except Exception:
            self.abort()
            raise

    def _add_video(self, size: tuple[int, int]) -> Any:
        w, h = size
        codec, pix_fmt, options, time_base = {
            "webm": ("libvpx-vp9", "yuva420p", WEBM_OPTIONS, self.info.time_base),
            "mov": ("prores_ks", "yuva444p10le", PRORES_OPTIONS, self.info.time_base),
            "mp4": ("libx264", "yuv420p", MP4_OPTIONS, self.info.time_base),
            "matte": ("libx264", "yuv420p", MATTE_OPTIONS, self.info.time_base),
            "gif": ("gif", "pal8", {}, GIF_TIME_BASE),
            "webp": ("libwebp_anim", "bgra", WEBP_OPTIONS, WEBP_TIME_BASE),
        }[self.fmt]
        if self.fmt in ("mp4", "matte"):
            w, h = w + w % 2, h + h % 2
        rate = Fraction(self.info.fps).limit_denominator(1001) if self.info.fps else Fraction(24)
        stream: Any = self._container.add_stream(codec, rate=rate, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        # The frames' time base, kept here: the stream's own is the muxer's to change once it has
        # written its header (WebM's becomes 1/1000, MP4's the track's timescale), and a frame
        # stamped with it after that would be read in the wrong unit (a 2 s clip lasted 25 s).
        self._time_base = time_base
        # how long a GIF's frame shows where the clip does not say, in its ticks: a frame's time, 20 ms at least
        nominal = round(max(SHORTEST_SHOWN, 1 / Fraction(max(self.info.fps, 1.0))) / time_base)
        shortest = round(SHORTEST_SHOWN / time_base) if self.fmt == "gif" else 1
        fixed = nominal if self.fmt == "gif" else None
        self._lengths = Lengths(
            self._container,
            1 / max(self.info.fps, 1.0),
            hold_last=self.fmt in HOLD_LAST,
            fixed=fixed,
            shortest=shortest,
        )
        if self.fmt in YUV:
            # BT.709, limited range, said in the file: what the frames are converted with (yuv()), so a
            # player, an editor or FFmpeg reads the colours back as they went in. Untagged, a reader
            # guesses: Chromium plays an untagged H.264 from 720 rows up as BT.709, and the BT.601
            # numbers written before of an orange (230, 120, 40) showed as (240, 126, 39) (docs/video.md).
            ctx = stream.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # BT.709
            ctx.color_range = 1  # limited ("tv"), what every player expects
        if self.fmt == "mov":
            # prores_ks with more than one thread (PyAV 18's FFmpeg) writes the alpha plane wrong in
            # places: up to 128 levels off in whole blocks, a different file each run; one thread
            # gives the alpha back exactly (ProRes 4444 keeps alpha losslessly), at about half the speed
            stream.codec_context.thread_count = 1
        return stream

    def _pts(self, frame: VideoFrame) -> int | None:
        """The frame's timestamp in the output; None: left out (a GIF's or a WebP's, below)."""
        if self.fmt not in ("gif", "webp"):
            return frame.pts - self._shift
        # these count from 0 in their own time base (a GIF's hundredth, a WebP's millisecond), and a
        # browser plays a frame shown for 10 ms or less for 100 ms: a 60 fps clip's GIF played 2.8 times
        # too slow, a 120 fps one 12 times. A frame closer than SHORTEST_SHOWN to the last one written is
        # left out, so the animation keeps the clip's own speed, at 50 frames a second at most.
        pts = round(frame.time / self._time_base)
        if self._last_pts is not None and (pts - self._last_pts) * self._time_base < SHORTEST_SHOWN:
            return None
        self._last_pts = pts
        return pts

    def write(self, frame: VideoFrame) -> None:
        with _writing(self.path, self.fmt):
            self._write(frame)

    def _write(self, frame: VideoFrame) -> None:
        import av

        pts = self._pts(frame)
        at = frame.time if pts is None else float(pts * self._time_base)  # s, on the output's timestamps
        self._lengths.frame(at, frame.shown, written=pts is not None)
        if pts is None:
            return
        if self.fmt == "mov":
            out = prores_frame(cutout_rgba(frame))
        elif self.fmt == "webm":
            out = yuv(cutout_rgba(frame), "yuva420p")
        elif self.fmt == "webp":
            out = av.VideoFrame.from_ndarray(cutout_rgba(frame)[..., [2, 1, 0, 3]].copy(), format="bgra")
        elif self.fmt == "gif":
            paletted: Any = _paletted(frame)
            out = av.VideoFrame.from_ndarray(paletted, format="pal8")
        elif self.fmt == "mp4":
            assert self._background is not None
            out = yuv(_even(over(frame, self._background)), "yuv420p")
        else:
            out = yuv(_even(np.repeat(frame.alpha[..., None], 3, axis=2)), "yuv420p")
        out.pts, out.time_base = pts, self._time_base
        if self._audio is not None:
            self._audio.mux_until(at)
        for packet in self._stream.encode(out):
            self._lengths.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush, close and move the finished file to its path; returns the path."""
        try:
            with _writing(self.path, self.fmt):
                for packet in self._stream.encode(None):
                    self._lengths.mux(packet)
                self._lengths.close()
                if self._audio is not None:  # the sound ends with the picture
                    self._audio.close(self._lengths.end)
                    self._audio = None
                self._container.close()
                if self.fmt == "webp" and self.frames:
                    webp_ends_at(self.part, self._lengths.end, float(SHORTEST_SHOWN))
                os.replace(self.part, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the output path is left as it was."""
        if self._audio is not None:
            self._audio.abort()
            self._audio = None
        try:
            self._container.close()
        except Exception:  # a container that never got a frame may refuse to close cleanly
            pass
        self.part.unlink(missing_ok=True)


def yuv(pixels: np.ndarray, pix_fmt: str) -> Any:
    """An RGB or RGBA frame in `pix_fmt`, converted as the YUV streams are tagged: BT.709, limited range."""
    import av

    source = av.VideoFrame.from_ndarray(pixels, format="rgba" if pixels.shape[2] == 4 else "rgb24")
    return source.reformat(format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG", threads=SCALE_THREADS)


def prores_frame(rgba: np.ndarray) -> Any:
    """A ProRes 4444 frame (yuva444p10le) of an RGBA cut-out: the colour in BT.709, limited range
    (as the stream is tagged), and the alpha widened to 10 bits by repeating its top bits
    (a << 2 | a >> 6), so every one of its 256 levels comes back exactly whether a reader
    narrows it by a shift or by rounding. FFmpeg's own conversion widens some levels otherwise
    (127 -> 510, 254 -> 1020), which a shift reads back one level off."""
    import av

    out = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(
        format="yuva444p10le", dst_colorspace="ITU709", dst_color_range="MPEG", threads=SCALE_THREADS
    )
    a = rgba[..., 3].astype(np.uint16)
    plane = out.planes[3]
    rows = np.zeros((rgba.shape[0], plane.line_size // 2), np.dtype("<u2"))
    rows[:, : rgba.shape[1]] = (a << 2) | (a >> 6)
    plane.update(rows.tobytes())
    return out


def _paletted(frame: VideoFrame) -> tuple[np.ndarray, np.ndarray]:
    """(indices, ARGB palette) of a GIF frame: 255 colours, index 255 transparent (alpha < 128)."""
    image = Image.fromarray(frame.rgb, "RGB").quantize(255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    indices = np.asarray(image, dtype=np.uint8).copy()
    indices[frame.alpha < 128] = 255
    rgb = np.zeros((256, 3), np.uint8)
    colours = np.frombuffer(bytes(image.getpalette() or []), np.uint8).reshape(-1, 3)[:255]
    rgb[: len(colours)] = colours
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255
    palette[:, 1:] = rgb
    palette[255] = 0
    return indices, palette
