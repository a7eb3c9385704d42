"""How large a file the app takes, in one place: an image (RMBG_IMAGE_MAX_MB,
25 MB) and a clip (RMBG_VIDEO_MAX_MB, 500 MB: rmbg.video.limits), and from
them what one upload may be.

gradio has one upload limit for the whole page (launch's max_file_size), so
it is the larger of the two, and an image is held to its own limit here, by
the file's size on disk, before anything opens it: every image a visitor
sends reaches a handler through a field of the kind `inputs.ImageFile`
(the page's tabs, the named API, gradio_client), and the upload event's
check (actions.check_upload) says it at once. An upload request larger than
the upload limit (and a little room for the form around the file) is
answered 413 before its body is read (rmbg.webapp.upload_room).
"""

from __future__ import annotations

import math
import os
from typing import TypeVar

from ..errors import InvalidImageError
from ..settings import current

MB = 2**20
IMAGE_MAX_MB = 25.0
FORM_ROOM = 64 * 2**10  # an upload's multipart framing and fields, beside its files
T = TypeVar("T")


def image_max_bytes() -> int:
    """The largest image file the app takes (RMBG_IMAGE_MAX_MB)."""
    try:
        megabytes = current().number("RMBG_IMAGE_MAX_MB", IMAGE_MAX_MB)
    except ValueError as exc:
        raise InvalidImageError(f"{exc}.") from None
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise InvalidImageError(f"RMBG_IMAGE_MAX_MB must be a number of MB above 0, got {megabytes:g}.")
    return round(megabytes * MB)


def fetch_within_limit(url: str) -> bytes:
    """An image's URL fetched behind the guard (rmbg.image.fetch), held to an image file's limit."""
    from ..image.fetch import fetch_image

    return fetch_image(url, max_bytes=image_max_bytes())


def video_max_bytes() -> int:
    """The largest clip the app takes (RMBG_VIDEO_MAX_MB, read by rmbg.video.limits)."""
    from ..video.limits import VideoLimits

    return VideoLimits.from_settings().max_bytes


def upload_max_bytes() -> int:
    """One file through gradio's upload route (its max_file_size): an image or a clip."""
    return max(image_max_bytes(), video_max_bytes())


def video_body_bytes() -> int:
    """The most POST /api/video's body may be: a clip, a background image and the form around them."""
    return video_max_bytes() + image_max_bytes() + FORM_ROOM


def video_body_refusal() -> str:
    """The 413 of a POST /api/video body over video_body_bytes()."""
    clip, picture = shown_mb(video_max_bytes()), shown_mb(image_max_bytes())
    return f"The request is over {clip} MB, the largest clip this server takes (with a {picture} MB background image)."


def shown_mb(size: int, *, up: bool = False) -> str:
    """Bytes as MB for a sentence, to 3 significant digits ("25", "0.05", "2048"); `up`: a file's
    size, rounded up (so one just over its limit never reads as the limit itself: "25.1")."""
    megabytes = size / MB
    if megabytes <= 0:
        return "0"
    if up:
        step = 1.0 if megabytes >= 100 else 10.0 ** (math.floor(math.log10(megabytes)) - 2)
        megabytes = math.ceil(megabytes / step) * step
    return f"{megabytes:.0f}" if megabytes >= 100 else f"{float(f'{megabytes:.3g}'):g}"


def request_over(limit: int) -> str:
    """The 413 of a request whose body is over `limit` bytes (REST's routes, the MCP endpoint)."""
    return f"The request is over {shown_mb(limit)} MB."


def size_refusal(what: str, size: int, limit: int) -> str:
    """The sentence refusing a file of `size` bytes over `limit`, said before it is read
    ("This image is 31.2 MB; the limit is 25 MB.")."""
    return f"{what} is {shown_mb(size, up=True)} MB; the limit is {shown_mb(limit)} MB."


def check_image_file(value: object, what: str = "This image") -> None:
    """Refuse an image file (a path, as gradio hands an upload over) over the image
    limit, from its size on disk; anything else is left to the loader's checks."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return
    try:
        size = os.stat(value).st_size
    except (OSError, ValueError):  # not a file here: the loader says what is wrong with it
        return
    limit = image_max_bytes()
    if size > limit:
        raise InvalidImageError(size_refusal(what, size, limit))


def image_file(value: T) -> T:
    """`value`, once check_image_file has passed it."""
    check_image_file(value)
    return value
