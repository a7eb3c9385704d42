"""The table of declared providers, live: the declarations (rmbg.declarations) and whatever
register() adds or replaces, in display order. Reading it builds nothing and imports no
provider code, so the price table (rmbg.money.pricing) and the price watch (rmbg.money.price_watch),
which provider code itself uses, read it from below; rmbg.registry builds providers from it
and hands every name here on.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from . import licences
from .declarations import DECLARATIONS, ProviderInfo
from .errors import UnknownProviderError

_REGISTRY: dict[str, ProviderInfo] = {info.id: info for info in DECLARATIONS}
# How many times register() and unregister() have changed the table: what a reader that keeps something made
# from it compares, to make it again after a change (the web app's kept providers and price rows).
version = 0


def register(provider_id: str, target: str | Callable[..., Any], info: ProviderInfo | None = None) -> None:
    """Register a provider factory (a callable or a "module:function" string).

    `info` declares it; without one it is listed as a local provider named by its id, its
    licence undeclared (refused under RMBG_COMMERCIAL_ONLY=1, rmbg.licences).
    """
    global version
    declared = info or ProviderInfo(provider_id, provider_id, "local", target)
    _REGISTRY[provider_id] = ProviderInfo(**{**declared.__dict__, "id": provider_id, "factory": target})
    version += 1


def unregister(provider_id: str) -> None:
    """Remove a registered provider (no error if it is not registered)."""
    global version
    _REGISTRY.pop(provider_id, None)
    version += 1


REMOVERS = ("local", "hosted")  # the kinds get_provider builds (an image in, a matte out); not "replace", "video"


def list_providers(*, refused: bool = False) -> list[str]:
    """Registered removal provider ids (what get_provider builds), in display order; under
    RMBG_COMMERCIAL_ONLY=1 only those licensed for commercial use, unless `refused`."""
    every = refused or not licences.commercial_only()  # read once per listing
    return [pid for pid, d in _REGISTRY.items() if d.kind in REMOVERS and (every or d.licence.commercial)]


def list_replacers() -> list[str]:
    """Registered background replacer ids (what get_replacer builds), in display order (those
    licensed for commercial use only, under RMBG_COMMERCIAL_ONLY=1)."""
    every = not licences.commercial_only()
    return [pid for pid, d in _REGISTRY.items() if d.kind == "replace" and (every or d.licence.commercial)]


def declarations() -> list[ProviderInfo]:
    """Every registered declaration, removal providers and replacers, in display order."""
    return list(_REGISTRY.values())


def info(provider_id: str) -> ProviderInfo:
    """The declaration of a registered provider; UnknownProviderError lists the valid ids."""
    try:
        return _REGISTRY[provider_id]
    except KeyError:
        known = list_providers()
        raise UnknownProviderError(provider_id, known, near=nearest(provider_id, known)) from None


def nearest(asked: str, known: list[str]) -> str:
    """The id among `known` that `asked` most likely meant: the one rembg (or another tool) calls by
    that name (ProviderInfo.known_as), else one spelt almost alike ("u2net", "birefnet_lite", "rmbg14");
    "" when none is close. Only a suggestion: an unknown id is never run as another."""
    name = asked.strip().lower()
    for declared in _REGISTRY.values():
        if name in declared.known_as and declared.id in known:
            return declared.id
    close = difflib.get_close_matches(name.replace("_", "-"), known, n=1, cutoff=0.85)
    return close[0] if close and close[0] != asked else ""


def replacer_info(provider_id: str) -> ProviderInfo:
    """The declaration of a registered background replacer; anything else ->
    UnknownProviderError listing the replacers."""
    declared = _REGISTRY.get(provider_id)
    if declared is None or declared.kind != "replace":
        what = "is a removal provider, not a background replacer" if declared else "is not a background replacer"
        raise UnknownProviderError(
            provider_id,
            list_replacers(),
            f"{provider_id!r} {what}. Background replacers: {', '.join(list_replacers())}.",
        )
    return declared
