"""Every provider, declared once: id -> ProviderInfo (what it is, what it
costs, what it needs) and the factory that builds it.

The declarations are data (rmbg.declarations), kept live in rmbg.provider_table (what
register() adds). The registry (`get_provider`), the price table (rmbg.money.pricing),
`rmbg providers` and the app's provider list all read them, so adding a provider is one
ProviderInfo there plus its module. This module builds; the table's names are handed on here.

Three kinds of thing are declared: removal providers ("local", "hosted": an
image in, a matte out; `list_providers`, `get_provider`), background
replacers ("replace": new backgrounds generated behind the subject;
`list_replacers`, `get_replacer`) and hosted video services ("video": a whole
clip in one paid call; rmbg.video.providers). Each is refused where another is
asked for, so a replacer is never a removal choice, in a comparison or the default. Factories are
"module:function" strings imported only when the provider is asked for, so
`import rmbg` stays free of torch, onnxruntime, transformers and httpx.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from . import licences
from .declarations import DECLARATIONS, Kind, Licence, ProviderInfo
from .errors import UnknownProviderError
from .provider_table import (
    REMOVERS,
    declarations,
    info,
    list_providers,
    list_replacers,
    register,
    replacer_info,
    unregister,
)
from .providers.base import Provider, Replacer

Factory = Callable[..., "Provider | Replacer"]  # a removal provider, or a replacer for kind "replace"

__all__ = [
    "DECLARATIONS",
    "HF_PREFIX",
    "Factory",
    "Kind",
    "Licence",
    "ProviderInfo",
    "declarations",
    "get_provider",
    "get_replacer",
    "info",
    "licence_of",
    "list_providers",
    "list_replacers",
    "register",
    "replacer_info",
    "unregister",
]

# Any Hugging Face image-segmentation repository: get_provider("hf:OWNER/REPO").
HF_PREFIX = "hf:"
HF_FACTORY = "rmbg.providers.local.hf_segmentation:hf_provider"


def licence_of(provider_id: str, **config: Any) -> Licence:
    """A provider's licence: declared, or for "hf:OWNER/REPO" its model card's (rmbg.licences.hub_licence).
    Weights of one's own (`weights=` a file, or `model=` other than those its module lists in MODELS)
    are not what the declaration covers: a file's licence is unknown, a Hub model's is its card's."""
    if provider_id.startswith(HF_PREFIX):
        repo, _, pinned = provider_id[len(HF_PREFIX) :].partition("@")
        return licences.hub_licence(repo.strip("/"), config.get("revision") or pinned or None, config.get("token"))
    declared = info(provider_id)
    if config.get("weights") is not None:
        return Licence("unknown", "unknown", "", "weights given as a file (weights=): no licence is declared for them")
    model = config.get("model")
    if model is not None and isinstance(declared.factory, str):
        known = getattr(importlib.import_module(declared.factory.partition(":")[0]), "MODELS", ())
        if str(model) not in known:
            return licences.hub_licence(str(model), config.get("revision"), config.get("token"))
    return declared.licence


def check_licence(provider_id: str, **config: Any) -> None:
    """LicenceError when RMBG_COMMERCIAL_ONLY=1 refuses this provider (before anything is built)."""
    if licences.commercial_only():
        label = provider_id if provider_id.startswith(HF_PREFIX) else info(provider_id).label
        licences.check(provider_id, label, licence_of(provider_id, **config))


def _load(target: str | Factory) -> Factory:
    if callable(target):
        return target
    module, _, name = target.partition(":")
    factory: Factory = getattr(importlib.import_module(module), name)
    return factory


def get_provider(provider_id: str, **config: Any) -> Provider:
    """Build the provider registered as `provider_id` with its config.

    "hf:OWNER/REPO" builds any Hub image-segmentation model (see
    rmbg.providers.local.hf_segmentation). Local models load lazily (on the
    first matte) and are shared between provider objects with the same
    weights/device/precision. Under RMBG_COMMERCIAL_ONLY=1 a provider whose licence does not
    allow commercial use, or is not known to, is refused (LicenceError) before it is built.
    """
    if provider_id.startswith(HF_PREFIX):
        check_licence(provider_id, **config)
        return cast(Provider, _load(HF_FACTORY)(provider_id, **config))
    declared = info(provider_id)
    if declared.kind not in REMOVERS:
        what = {
            "replace": "generates new backgrounds; it does not remove them: use rmbg.replace_background() or "
            "`rmbg replace`",
            "video": "takes whole clips, not images: use rmbg.remove_video() or `rmbg video`",
        }[declared.kind]
        raise UnknownProviderError(
            provider_id, list_providers(), f"{provider_id!r} {what}. Removal providers: {', '.join(list_providers())}."
        )
    check_licence(provider_id, **config)
    return cast(Provider, _load(declared.factory)(*declared.args, **config))


def get_replacer(provider_id: str, **config: Any) -> Replacer:
    """Build the background replacer registered as `provider_id` (a declaration of kind
    "replace") with its config (api_key=, base_url=, ...); no network."""
    declared = replacer_info(provider_id)
    check_licence(provider_id)
    return cast(Replacer, _load(declared.factory)(*declared.args, **config))
