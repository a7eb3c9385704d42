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
    "rmbg-1.4": "rmbg.providers.local:rmbg14",
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
