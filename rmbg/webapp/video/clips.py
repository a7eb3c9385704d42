"""The clips the app takes: an upload or an http(s) URL (fetched behind the
guard, rmbg.image.fetch), within the video limits (RMBG_VIDEO_MAX_SECONDS,
..., RMBG_VIDEO_MAX_MB; rmbg.video.limits), which the page's uploads follow
(rmbg.webapp.file_limits). Each run works on a private copy of its clip, in a
folder of its own, so what it keeps does not depend on gradio's upload folder."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...image.formats import URL, url_name
from ...video import VideoLimits
from ...video.decode import probe, spool
from ...video.limits import InvalidVideoError
from ..context import App
from ..inputs import one_source
from ..look import safe_stem


def app_limits() -> VideoLimits:
    """The video limits from the settings (the page's uploads are as large: rmbg.webapp.file_limits)."""
    return VideoLimits.from_settings()


@dataclass(frozen=True)
class Upload:
    """A clip this server received as a file (gradio's upload folder, which
    gradio checks; a REST form's file): the only kind of clip read from a path.
    Any text a caller sends is a URL, never a path on the server."""

    path: Path
    name: str = ""


Clip = Upload | str  # an upload, or an http(s) URL


def clip_of(upload: object, url: object) -> Clip:
    """The clip a request names: its upload or its URL (which must be http(s)), not both."""
    one_source(bool(upload), url, "clip", InvalidVideoError)
    if upload:
        return Upload(Path(str(upload)))
    text = str(url or "").strip()
    if not text:
        raise InvalidVideoError("Upload a clip first (or give its URL).")
    if not URL.match(text):
        raise InvalidVideoError("Give the clip's URL as http(s)://..., such as https://example.com/clip.mp4.")
    return text


def stem_of(clip: Clip) -> str:
    """The file stem outputs are named after: the upload's name, or the URL's last segment."""
    if isinstance(clip, Upload):
        return Path(clip.name or clip.path.name).stem or "video"
    return Path(url_name(clip)).stem or "video"


def take_clip(clip: Clip, folder: Path, limits: VideoLimits) -> Path:
    """A private copy of the clip in `folder`: an upload's file, or an http(s)
    URL fetched behind the guard (rmbg.image.fetch), within the byte limit."""
    if not isinstance(clip, Upload):
        if not URL.match(str(clip).strip()):  # clip_of made it; said again, as a path is never read from text
            raise InvalidVideoError("Give the clip's URL as http(s)://..., such as https://example.com/clip.mp4.")
        return spool(str(clip).strip(), folder, limits)
    if not clip.path.is_file():
        raise InvalidVideoError("The uploaded clip is no longer on the server: upload it again.")
    limits.check_bytes(clip.path.stat().st_size, "The clip")
    copy = folder / f"input{clip.path.suffix[:6].lower()}"
    shutil.copyfile(clip.path, copy)
    return copy


CONTAINER_SUFFIX = {"matroska,webm": ".webm", "gif": ".gif"}  # else MP4/MOV's demuxer: .mp4


def clip_from_url(url: object, app: App) -> Path:
    """The page's URL box: the clip fetched behind the guard, checked (a video
    within the limits: said now, not at Remove), kept as a file the page shows."""
    text = str(url or "").strip()
    if not URL.match(text):
        raise InvalidVideoError("Paste an http(s) URL of a video, such as https://example.com/clip.mp4.")
    folder = Path(tempfile.mkdtemp(prefix="rmbg-app-video-"))
    try:
        limits = app_limits()
        path = spool(text, folder, limits)
        info = probe(path, limits, stem_of(text))
        return app.store.adopt(path, f"{safe_stem(stem_of(text))}{CONTAINER_SUFFIX.get(info.container, '.mp4')}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_clip(path: object) -> str | None:
    """What is wrong with an uploaded clip, said at upload; None when its header is within the limits."""
    if not path:
        return None
    try:
        limits = app_limits()
        probe(Path(str(path)), limits, "The clip")
    except InvalidVideoError as exc:
        return str(exc)
    return None
