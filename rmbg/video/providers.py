"""The providers a clip can go through, for the app's Video tab, the CLI and the API.

    list_video_providers()      every one: local models (frame by frame, free but
                                for the machine) and hosted video services (one
                                paid call per clip, priced per second)
    get_video_provider(id)      a hosted video service, built (no network)
    clip_estimate(id, seconds)  what a clip of that length costs on it

Hosted video services are declared with every other provider, in the one
table (rmbg.declarations, kind "video"): an id, its label, its price per second,
its longest clip, its vendor (whose key and terms it takes) and the factory of
the client that speaks its vendor's API (rmbg.providers.hosted.<slot>_video).
This module reads them, and names no vendor: a new one needs no edit here.
Importing it imports no client and no httpx.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, cast

from ..declarations import Licence, ProviderInfo
from ..errors import UnknownProviderError
from ..licences import check, commercial_only
from ..provider_table import nearest
from ..providers.hosted.video_job import VideoRemover, billed_seconds, per_second_cost, price_text
from ..types import Cost


class _HostedVideo(Mapping[str, ProviderInfo]):
    """id -> declaration of every hosted video service (rmbg.registry, kind "video"), in display order;
    read when asked, so a service registered later is in it too."""

    def _rows(self) -> dict[str, ProviderInfo]:
        from ..registry import declarations

        return {d.id: d for d in declarations() if d.kind == "video"}

    def __getitem__(self, provider_id: str) -> ProviderInfo:
        return self._rows()[provider_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())


HOSTED_VIDEO: Mapping[str, ProviderInfo] = _HostedVideo()
# Local models that are not a background remover of their own (they need a point or a box).
NOT_FOR_VIDEO = frozenset({"sam2"})


@dataclass(frozen=True)
class VideoProviderInfo:
    """One provider as the Video tab shows it.

    kind: "local" (a model run on each frame here) or "hosted" (a paid service
    that takes the whole clip). usd_per_second: the hosted price per second of
    video, billed seconds rounded up (None for local models, costed by the
    machine's time). max_seconds: the longest clip the service takes (None:
    only rmbg's own limits). key_env: the variable its key is read from.
    licence: the model's licence or the service's terms (rmbg.declarations.Licence).
    """

    id: str
    label: str
    kind: Literal["local", "hosted"]
    usd_per_second: Decimal | None = None
    max_seconds: float | None = None
    key_env: str = ""
    key_page: str = ""
    licence: Licence | None = None

    @property
    def price_text(self) -> str:
        """The price as a person reads it: "$0.042/s of video" or "free (runs here)"."""
        if self.usd_per_second is None:
            return "free (runs here)"
        return f"${price_text(self.usd_per_second)}/s of video"


def _declared(provider_id: str) -> ProviderInfo:
    try:
        return HOSTED_VIDEO[provider_id]
    except KeyError:
        raise UnknownProviderError(
            provider_id, list(HOSTED_VIDEO), f"{provider_id!r} is not a hosted video provider. Hosted video "
            f"providers: {', '.join(HOSTED_VIDEO)}.",
        ) from None  # fmt: skip


def hosted_video_info(provider_id: str) -> VideoProviderInfo:
    """The declaration of a hosted video service (UnknownProviderError for any other id)."""
    d = _declared(provider_id)
    return VideoProviderInfo(d.id, d.label, "hosted", d.price_usd, d.max_seconds, d.key_env, d.key_page, d.licence)


def list_video_providers(*, local: bool = True, every: bool | None = None) -> list[VideoProviderInfo]:
    """Every provider a clip can go through: the registered local models (when
    `local`), then the hosted video services with their price per second; under
    RMBG_COMMERCIAL_ONLY=1 only those licensed for commercial use (`every`: all the same)."""
    rows: list[VideoProviderInfo] = []
    if local:
        from ..registry import declarations

        rows += [
            VideoProviderInfo(d.id, d.label, "local", key_env=d.key_env, key_page=d.key_page, licence=d.licence)
            for d in declarations()
            if d.kind == "local" and d.id not in NOT_FOR_VIDEO
        ]
    hosted = [hosted_video_info(pid) for pid in HOSTED_VIDEO]
    every = not commercial_only() if every is None else every
    return [row for row in rows + hosted if every or row.licence is None or row.licence.commercial]


def is_hosted_video(provider: object) -> bool:
    """True for a hosted video service's id, or an object that is one."""
    if isinstance(provider, str):
        return provider in HOSTED_VIDEO
    return isinstance(provider, VideoRemover) and getattr(provider, "kind", "") == "hosted"


def get_video_provider(provider_id: str, **connection: Any) -> VideoRemover:
    """Build a hosted video service (api_key=, base_url=, client=, deadline_s=, ...: its Connection); no network.
    LicenceError under RMBG_COMMERCIAL_ONLY=1 when its terms do not allow commercial use."""
    declared = _declared(provider_id)
    check(provider_id, declared.label, declared.licence)
    factory = declared.factory
    if isinstance(factory, str):
        module, _, name = factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return cast(VideoRemover, factory(*declared.args, **connection))


def clip_estimate(provider_id: str, seconds: float) -> Cost:
    """What a clip of `seconds` costs on a hosted video service: its billed
    seconds (rounded up to a whole second) times its price per second."""
    info = hosted_video_info(provider_id)
    assert info.usd_per_second is not None
    return per_second_cost(info.usd_per_second, billed_seconds(seconds))


# The Video tab's names for the same listing.
VideoProvider = VideoProviderInfo


def video_providers() -> list[VideoProviderInfo]:
    """Every provider a clip can go through, in display order (list_video_providers)."""
    return list_video_providers()


def video_provider(provider_id: str) -> VideoProviderInfo:
    """One provider a clip can go through; UnknownProviderError listing them otherwise."""
    listed = video_providers()
    for entry in listed:
        if entry.id == provider_id:
            return entry
    for entry in list_video_providers(every=True):  # refused by the licence switch: its words, not "unknown"
        if entry.id == provider_id and entry.licence is not None:
            check(entry.id, entry.label, entry.licence)
    ids = [p.id for p in listed]
    raise UnknownProviderError(
        provider_id,
        ids,
        f"{provider_id!r} does not run on video. Video providers: {', '.join(ids)}.",
        near=nearest(provider_id, ids),
    )
