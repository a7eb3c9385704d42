"""What a hosted video remover is given and gives back, and how its result is fetched.

A hosted video remover (fal's `bria/video/background-removal/v3`, Runware's
`bria:51@1`) takes a whole clip in one paid request and answers with a URL of
the clip cut out, as a video with an alpha channel. It is priced per second of
video: the clip's duration rounded as the vendor bills it (`billed_seconds`),
times its price per second.

    job = VideoJob(path, "video/mp4", seconds=4.2, output="webm", max_result_bytes=...)
    remover.check(job)                   # the vendor's own limits, before anything is paid or sent
    done = remover.remove(job, folder)   # HostedVideo: the result file, its cost, provenance

The result is fetched as a visitor's URL is (rmbg.image.fetch: http(s) only,
every address checked, redirects checked, one deadline), streamed into a file
with a byte cap: never held whole, never fetched from a private address (the
vendor's own configured host excepted), never with our key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

from ...errors import (
    InvalidRequestError,
    ProviderResponseError,
)
from ...types import Cost, format_usd
from .payload import fetch_retrying

if TYPE_CHECKING:
    from ..base import ProviderStatus

Output = Literal["webm", "mov"]
OUTPUTS: tuple[Output, ...] = ("webm", "mov")
# Frames of a second a vendor is not taken to bill: a 5.0004 s header is 5 s, not 6.
BILLING_SLACK_S = 0.001


def billed_seconds(seconds: float) -> int:
    """The seconds a per-second price is paid for: the duration rounded up to a
    whole second (at least one). Neither vendor's page says how it rounds a
    fraction of a second, so rmbg takes the rounding that never holds less
    than the bill (docs/video.md, "Hosted video")."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a clip's duration must be a finite number of seconds, got {seconds!r}")
    return max(1, math.ceil(seconds - BILLING_SLACK_S))


def price_text(usd_per_second: Decimal) -> str:
    """A price per second as its vendor writes it: 0.042 -> "0.042", 0.14 -> "0.14"."""
    text = f"{usd_per_second.normalize():f}"
    return text if "." in text else format_usd(usd_per_second)


def per_second_cost(usd_per_second: Decimal, seconds: int, source: str = "price table") -> Cost:
    """The price-table cost of `seconds` billed seconds, with the sum in its note."""
    note = f"{seconds} s x ${price_text(usd_per_second)}/s, {source}"
    return Cost(usd_per_second * seconds, "estimated", note)


def mib(size: float) -> str:
    """Bytes as a person reads them: 21480000 -> "20.5 MiB", 16 MiB -> "16 MiB"."""
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MiB"


@dataclass(frozen=True)
class VideoJob:
    """One clip for a hosted video remover.

    path: the clip as it was probed (what is uploaded); content_type its MIME
    type; seconds its duration and billed_seconds what the vendor bills for it;
    output: the transparent format asked of the vendor (webm: VP9 with alpha;
    mov: ProRes 4444); max_result_bytes: the most its answer may be.
    """

    path: Path
    content_type: str
    seconds: float
    billed_seconds: int
    output: Output = "webm"
    max_result_bytes: int = 1 << 30

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


@dataclass
class HostedVideo:
    """What a hosted video remover gave back: the result file (downloaded), its
    MIME type as served, what the call cost, and provenance (request id, model)."""

    path: Path
    content_type: str
    cost: Cost
    meta: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class VideoRemover(Protocol):
    """A hosted service that cuts a whole clip out in one paid request."""

    id: str
    label: str
    kind: Literal["hosted"]
    usd_per_second: Decimal
    max_seconds: float  # the longest clip the vendor takes

    def status(self) -> ProviderStatus:
        """Cheap check (no paid call) of whether this can run: its key."""
        ...

    def estimate(self, billed: int) -> Cost:
        """The price-table cost of a clip billed for `billed` seconds."""
        ...

    def check(self, job: VideoJob) -> None:
        """Refuse (an RmbgError) a clip the vendor would refuse, before anything is sent."""
        ...

    def remove(self, job: VideoJob, folder: Path) -> HostedVideo:
        """Send the clip, wait for it, download the result into `folder`."""
        ...


class DeclaredVideo:
    """A hosted video client's label, price per second and longest clip, read from its declaration
    (rmbg.declarations, kind "video"): the one table, so the class repeats none of them; and what
    every such client does alike: its estimate, the check of a clip against its limits, the result's download."""

    id: str
    label: str  # set on each subclass from its declaration
    base_url: str  # the vendor's host, set by HostedClient (the other base)
    UPLOAD_MAX: ClassVar[int]  # the largest clip (bytes) sent to the vendor in one request
    PRICE_WORDS: ClassVar[str | None] = None  # how an estimate names its price; None: the declaration's price note

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.label = _declared(cls.id).label

    @property
    def usd_per_second(self) -> Decimal:
        price = _declared(self.id).price_usd
        if price is None:  # pragma: no cover - every video declaration has one (tests/test_declarations)
            raise ValueError(f"{self.id} declares no price per second")
        return price

    @property
    def max_seconds(self) -> float:
        return _declared(self.id).max_seconds or math.inf

    def estimate(self, billed: int = 1) -> Cost:
        """The price-table cost of a clip billed for `billed` seconds."""
        words = self.PRICE_WORDS or _declared(self.id).price_note or "price table"
        return per_second_cost(self.usd_per_second, billed, words)

    def _download(self, url: str, job: VideoJob, dest: Path, seconds_left: Callable[[], float]) -> str:
        """The result at `url` fetched into `dest` within the call's deadline, capped at the job's
        max_result_bytes, the vendor's own host (HostedClient.base_url) trusted: its MIME type (download_video)."""
        return download_video(
            url, self.id, base_url=self.base_url, dest=dest, max_bytes=job.max_result_bytes, seconds_left=seconds_left
        )

    def check(self, job: VideoJob) -> None:
        """The vendor's own limits (its longest clip, UPLOAD_MAX), before anything is paid or sent."""
        check_clip(self.id, job, self.max_seconds, self.UPLOAD_MAX)


def _declared(provider_id: str):
    from ...provider_table import info  # the live table (money's layer, below the providers)

    return info(provider_id)


def download_video(
    url: str,
    provider_id: str,
    *,
    base_url: str,
    dest: Path,
    max_bytes: int,
    seconds_left: Callable[[], float],
) -> str:
    """Fetch a result video into `dest` (its MIME type as served): http(s) only,
    through the URL guard (the vendor's own host, from `base_url`, trusted as
    configured; any other must be public), streamed with a byte cap, within the
    call's deadline, retried on a CDN's failure. No key is sent. A type that is
    not a video (an HTML error page served with 200) is refused."""
    from urllib.parse import urlsplit

    if not url.startswith(("http://", "https://")):
        raise ProviderResponseError(provider_id, "the result's URL is not an http(s) URL; refused.")
    trusted = {urlsplit(base_url).hostname or ""} - {""}
    try:
        content_type = _fetch_into(url, provider_id, trusted, dest, max_bytes, seconds_left)
    except BaseException:
        dest.unlink(missing_ok=True)  # no half result left behind
        raise
    mime = content_type.partition(";")[0].strip().lower()
    if mime and not mime.startswith("video/") and mime not in ("application/octet-stream", "image/gif"):
        dest.unlink(missing_ok=True)
        raise ProviderResponseError(provider_id, f"returned a {mime[:60]} file where a video was expected.")
    return mime


def _fetch_into(
    url: str, provider_id: str, trusted: set[str], dest: Path, max_bytes: int, seconds_left: Callable[[], float]
) -> str:
    from ...image.fetch import fetch_file

    def fetch(deadline_s: float) -> str:
        with dest.open("wb") as out:
            _, content_type, _ = fetch_file(
                url, out, allow_hosts=trusted, max_bytes=max_bytes, deadline_s=deadline_s, accept="video/*"
            )
        return content_type

    return fetch_retrying(
        fetch, provider_id, seconds_left, lambda size, limit: f"a result of {mib(size)} or more, over the {mib(limit)}"
    )


def check_clip(provider_id: str, job: VideoJob, max_seconds: float, max_bytes: int) -> None:
    """Refuse, before anything is sent, a clip over a vendor's duration or upload size."""
    if job.seconds > max_seconds + 0.05:
        raise InvalidRequestError(
            f"{provider_id} takes clips of up to {max_seconds:g} s; this one is {job.seconds:.1f} s. Trim it first."
        )
    if job.size_bytes > max_bytes:
        raise InvalidRequestError(
            f"{provider_id} takes files of up to {max_bytes / 2**20:g} MB; this one is "
            f"{job.size_bytes / 2**20:.0f} MB. Compress it first."
        )
