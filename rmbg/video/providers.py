"""Which providers can cut a clip, and what a second of video costs with each.

    video_providers()   every provider a clip can go through, in display order
    video_provider(id)  one of them; UnknownProviderError (listing the ids) otherwise

Every local removal provider of the registry runs on video, frame by frame
(rmbg.video.pipeline), for nothing but machine time: usd_per_second None.
A hosted video provider is priced per second of video (usd_per_second), and
its calls are reserved as duration x price before anything is sent; each is
declared here, as one more entry of HOSTED, beside its module in
rmbg/providers/hosted/.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ..errors import UnknownProviderError
from ..registry import declarations
from ..types import format_usd


@dataclass(frozen=True)
class VideoProvider:
    """One provider a clip can go through: id, label, kind ("local" or
    "hosted") and price per second of video (USD; None for a local model)."""

    id: str
    label: str
    kind: Literal["local", "hosted"]
    usd_per_second: Decimal | None = None

    def price_text(self) -> str:
        """'free (local)' or '$0.0500 per second of video'."""
        if self.usd_per_second is None:
            return "free (local)"
        return f"${format_usd(self.usd_per_second)} per second of video"


# Hosted video providers, declared once each (none yet).
HOSTED: tuple[VideoProvider, ...] = ()


def video_providers() -> list[VideoProvider]:
    """The local removal providers of the registry, then the hosted video providers."""
    local = [VideoProvider(d.id, d.label, "local") for d in declarations() if d.kind == "local"]
    return local + list(HOSTED)


def video_provider(provider_id: str) -> VideoProvider:
    """The provider `provider_id` as a video provider."""
    listed = video_providers()
    for entry in listed:
        if entry.id == provider_id:
            return entry
    raise UnknownProviderError(
        provider_id,
        [p.id for p in listed],
        f"{provider_id!r} does not run on video. Video providers: {', '.join(p.id for p in listed)}.",
    )
