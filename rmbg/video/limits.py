"""What a video may be: its errors and its limits (duration, frame size, frame count, file size).

The limits are read from the video settings (RMBG_VIDEO_MAX_SECONDS, ...) (rmbg/settings_declared.py)
or given per call as a `VideoLimits`. Each is checked twice: on what the
header claims, before anything is decoded, and again on what decoding
actually finds (a header can lie, or say nothing).

Frames larger than the size limit are scaled down to fit it (keeping the
aspect ratio), with a note; frames over the image pixel limit
(RMBG_MAX_PIXELS) are refused outright, since even one of them is too much to
decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidImageError, RmbgError
from ..image.io import max_pixels_default
from ..settings import current
from ..types import Cost

SLACK_S = 0.05  # one frame at 24 fps: a 60.0 s clip whose last frame ends at 60.04 s is 60 s


def falls_short(reached: float, whole: float | None) -> bool:
    """Whether a clip read to `reached` s stopped well before `whole` s, where it should have gone on (its
    header's length, or its last frame's start): short by more than a tenth and by more than half a second,
    so a clip whose last frames are late, or whose header rounds its length, is not taken for a damaged one."""
    return whole is not None and reached < 0.9 * whole and whole - reached > 0.5


class InvalidVideoError(InvalidImageError):
    """The input is not a video we can process: empty, not a video, damaged or cut off."""


class VideoLimitError(InvalidVideoError):
    """The video is over one of the limits (too long, too many frames, too large a file or frame)."""


@dataclass(frozen=True)
class PaidAnswer:
    """A hosted service's answer that was paid for (`cost`: as it was counted) though its output was not
    written: the file it sent (`data`, its MIME type, its provenance), for a door to keep for the next run."""

    data: bytes
    content_type: str
    meta: dict[str, str]
    cost: Cost


class VideoWriteError(RmbgError):
    """An output video could not be written: FFmpeg refused a frame or the file could not be
    made (the message names the file and what went wrong). `paid`: the hosted answer it was
    written from, when one was bought for it (rmbg.video.hosted), else None."""

    paid: PaidAnswer | None = None


class OutputBlocked(VideoWriteError):
    """A file (`blocker`) stands where a folder on the output's path (`path`) must be made: the output cannot
    be written until that file is moved (the message says so, in the library's terms)."""

    def __init__(self, path: Path, blocker: Path):
        self.path, self.blocker = path, blocker
        super().__init__(
            f"Could not write {path}: {blocker} is a file where a folder must be made; move or rename that file, "
            "or write the output elsewhere."
        )

    @classmethod
    def found(cls, path: Path) -> OutputBlocked | None:
        """The error for `path` when a file (or a link to one) stands where one of its folders must be, else None."""
        return next((cls(path, folder) for folder in reversed(path.parents) if folder.is_file()), None)


class VideoStopped(RmbgError):
    """The work was stopped on request (the stop flag was set); nothing was written.

    `frames_done`: how many frames had been through the model when it stopped."""

    def __init__(self, frames_done: int):
        self.frames_done = frames_done
        super().__init__(f"Stopped after {frames_done} frame(s); no output was written.")


@dataclass(frozen=True)
class VideoLimits:
    """The largest clip we process.

    max_seconds: duration; max_long, max_short: the frame's longer and
    shorter side (1920x1080 fits a portrait 1080x1920 too); max_frames: frame
    count; max_bytes: file size; max_pixels: the hard per-frame limit above
    which a clip is refused rather than scaled.
    """

    max_seconds: float = 60.0
    max_long: int = 1920
    max_short: int = 1080
    max_frames: int = 3600
    max_bytes: int = 500 * 2**20
    max_pixels: int = 40_000_000

    @classmethod
    def from_settings(cls) -> VideoLimits:
        s = current()
        try:
            size = s.raw("RMBG_VIDEO_MAX_SIZE") or "1920x1080"
            found = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
            if not found:
                raise ValueError(f"RMBG_VIDEO_MAX_SIZE must be WIDTHxHEIGHT (e.g. 1920x1080), got {size!r}")
            sides = sorted((int(found.group(1)), int(found.group(2))))
            return cls(
                max_seconds=s.number("RMBG_VIDEO_MAX_SECONDS", 60.0),
                max_long=sides[1],
                max_short=sides[0],
                max_frames=s.integer("RMBG_VIDEO_MAX_FRAMES", 3600),
                max_bytes=int(s.number("RMBG_VIDEO_MAX_MB", 500.0) * 2**20),
                max_pixels=max_pixels_default(),
            )
        except ValueError as exc:
            raise InvalidRequestSetting(f"{exc}.") from None

    # --- checks -----------------------------------------------------------------

    def check_bytes(self, size: int, what: str = "The video") -> None:
        if size == 0:
            raise InvalidVideoError(f"{what} is an empty file (0 bytes).")
        if size > self.max_bytes:
            raise VideoLimitError(
                f"{what} is {size / 2**20:.0f} MB, over the {self.max_bytes / 2**20:.0f} MB limit "
                "(RMBG_VIDEO_MAX_MB). Trim or compress it first."
            )

    def check_seconds(self, seconds: float, *, decoded: bool = False) -> None:
        if seconds > self.max_seconds + SLACK_S:
            said = "runs past" if decoded else "is"
            raise VideoLimitError(
                f"The video {said} {seconds:.1f} s, over the {self.max_seconds:g} s limit "
                "(RMBG_VIDEO_MAX_SECONDS). Trim it first."
            )

    def check_frames(self, frames: int) -> None:
        if frames > self.max_frames:
            raise VideoLimitError(
                f"The video has more than {self.max_frames} frames (RMBG_VIDEO_MAX_FRAMES). "
                "Trim it or lower its frame rate first."
            )

    def fit(self, width: int, height: int) -> tuple[int, int, str]:
        """(width, height, note) of the frames we process: the frame itself when it
        fits, else scaled down to fit (note says so); refused over max_pixels."""
        if width <= 0 or height <= 0:
            raise InvalidVideoError("The video's frames have no size; the file may be damaged.")
        if width * height > self.max_pixels:
            raise VideoLimitError(
                f"The video's frames are {width}x{height}, over the {self.max_pixels / 1e6:.0f} MP "
                "limit (RMBG_MAX_PIXELS). Scale it down first."
            )
        long, short = max(width, height), min(width, height)
        scale = min(1.0, self.max_long / long, self.max_short / short)
        if scale >= 1.0:
            return width, height, ""
        w, h = max(2, round(width * scale)), max(2, round(height * scale))
        note = (
            f"The frames ({width}x{height}) are larger than {self.max_long}x{self.max_short} "
            f"(RMBG_VIDEO_MAX_SIZE): scaled to {w}x{h}."
        )
        return w, h, note


class InvalidRequestSetting(InvalidVideoError):
    """A video setting that cannot be read (the message names it)."""
