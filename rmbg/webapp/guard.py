"""Running a provider for the app: under the spending cap, one local model
at a time, and on ZeroGPU hardware inside `spaces.GPU`.

`Guarded` wraps a provider without changing its id or options, so the matte
cache still recognises it: a cached matte never reaches `matte()`, so it is
never charged and never checked against the cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from ..providers.local.device import LOCAL_DEVICE_LOCK
from .session import Budget

if TYPE_CHECKING:
    from PIL import Image

    from ..providers.base import Provider, ProviderStatus
    from ..types import Cost, Matte

GPU_SECONDS = 120  # ZeroGPU allocation per call


def on_zerogpu(fn: Callable) -> Callable:
    """`spaces.GPU(fn)` where the `spaces` package exists (Hugging Face
    ZeroGPU); elsewhere `fn` unchanged."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS)(fn)


def _local_matte(provider: "Provider", image: "Image.Image") -> "Matte":
    return provider.matte(image)


# Decorated at import, as ZeroGPU requires.
local_matte = on_zerogpu(_local_matte)


class Guarded:
    """A provider that reserves its price from `budget` before a paid call
    and holds the device lock around a local forward. Report hooks:
    `on_start(provider)` is called just before the provider works."""

    def __init__(self, inner: "Provider", budget: Budget, on_start: Callable[["Provider"], None] | None = None):
        self.inner = inner
        self.id = inner.id
        self.label = inner.label
        self.kind = inner.kind
        self._budget = budget
        self._on_start = on_start

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"

    def options(self) -> Mapping[str, object]:
        return self.inner.options()

    def status(self) -> "ProviderStatus":
        return self.inner.status()

    def estimate(self) -> "Cost":
        return self.inner.estimate()

    def matte(self, image: "Image.Image") -> "Matte":
        if self.kind == "hosted":
            self._budget.reserve(self.inner)
            if self._on_start:
                self._on_start(self.inner)
            return self.inner.matte(image)
        with LOCAL_DEVICE_LOCK:
            if self._on_start:
                self._on_start(self.inner)
            return local_matte(self.inner, image)
