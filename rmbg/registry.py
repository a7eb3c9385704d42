"""Provider id -> factory.

The registry is an explicit dict of kebab-case ids to "module:function"
strings, imported only when a provider is asked for, so `import rmbg` stays
free of torch, onnxruntime and httpx.
"""

from __future__ import annotations

import importlib
from typing import Callable

from .errors import UnknownProviderError
from .providers.base import Provider

# id -> "module:factory". Factories take keyword-only config.
_REGISTRY: dict[str, str] = {
    "rmbg-1.4": "rmbg.providers.local.torch_backend:rmbg14",
    "rmbg-2.0": "rmbg.providers.local.torch_backend:rmbg20",
    "u2netp": "rmbg.providers.local.onnx_backend:u2netp",
    "fal-bria": "rmbg.providers.hosted.fal:fal_bria",
    "runware-bria": "rmbg.providers.hosted.runware:runware_bria",
    "runware-rembg": "rmbg.providers.hosted.runware:runware_rembg",
}


def register(provider_id: str, target: str | Callable[..., Provider]) -> None:
    """Register a provider factory (a callable, or a "module:function" string)."""
    _REGISTRY[provider_id] = target  # type: ignore[assignment]


def list_providers() -> list[str]:
    """Registered provider ids, in display order."""
    return list(_REGISTRY)


def _factory(provider_id: str) -> Callable[..., Provider]:
    try:
        target = _REGISTRY[provider_id]
    except KeyError:
        raise UnknownProviderError(provider_id, list_providers()) from None
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def get_provider(provider_id: str, **config) -> Provider:
    """Build the provider registered as `provider_id` with its config.

    Local models load lazily (on the first matte) and are shared between
    provider objects with the same weights/device/precision.
    """
    return _factory(provider_id)(**config)


# The out-of-the-box choice: the best model that works here as it is.
PREFERRED_DEFAULT = "rmbg-1.4"
FALLBACK_DEFAULT = "u2netp"


def default_provider() -> tuple[str, str]:
    """(provider id, one-line reason) for a user who chose nothing.

    RMBG-1.4 when its weights are cached or HF_TOKEN can fetch them; else the
    ungated U2-Net-p, which runs anywhere without an account.
    """
    status = get_provider(PREFERRED_DEFAULT).status()
    if status.ready or FALLBACK_DEFAULT not in _REGISTRY:
        return PREFERRED_DEFAULT, f"RMBG-1.4: {status.message}"
    return FALLBACK_DEFAULT, (
        f"Using U2-Net-p (ungated, runs offline) because RMBG-1.4 {status.message}. "
        "Accept the terms at https://huggingface.co/briaai/RMBG-1.4 and set HF_TOKEN to use RMBG-1.4."
    )
