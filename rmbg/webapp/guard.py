"""Running a provider for the app: under the spending cap, one local model
at a time, and on ZeroGPU hardware inside `spaces.GPU`.

`Guarded` wraps a provider without changing its id or options, so the matte
cache still recognises it: a cached matte never reaches `matte()`, so it is
never charged and never checked against the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..providers.local.device import LOCAL_DEVICE_LOCK
from .spending import Ledger

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


def _local_matte(provider: Provider, image: Image.Image) -> Matte:
    return provider.matte(image)


# Decorated at import, as ZeroGPU requires.
local_matte = on_zerogpu(_local_matte)


class Payer:
    """Who pays for a hosted call: the ledger, the visitor's session, and
    whether the server's own key (not the visitor's) is spent."""

    def __init__(self, ledger: Ledger, session_id: str, server_key: bool):
        self.ledger, self.session_id, self.server_key = ledger, session_id, server_key


class Guarded:
    """A provider that reserves its price with the ledger before a paid call
    and settles it after (rmbg.webapp.spending), and holds the device lock
    around a local forward. `on_start(provider)` is called just before the
    provider works."""

    def __init__(self, inner: Provider, payer: Payer, on_start: Callable[[Provider], None] | None = None):
        self.inner = inner
        self.id = inner.id
        self.label = inner.label
        self.kind = inner.kind
        self._payer = payer
        self._on_start = on_start

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"

    def options(self) -> Mapping[str, object]:
        return self.inner.options()

    def status(self) -> ProviderStatus:
        return self.inner.status()

    def estimate(self) -> Cost:
        return self.inner.estimate()

    def matte(self, image: Image.Image) -> Matte:
        if self.kind == "hosted":
            return self._paid(image)
        with LOCAL_DEVICE_LOCK:
            if self._on_start:
                self._on_start(self.inner)
            return local_matte(self.inner, image)

    def _paid(self, image: Image.Image) -> Matte:
        payer = self._payer

        def call() -> Matte:
            if self._on_start:
                self._on_start(self.inner)
            return self.inner.matte(image)

        # counted when it returns, whatever happens to the result later
        return payer.ledger.pay(
            payer.session_id,
            self.id,
            self.inner.estimate().usd,
            call,
            lambda matte: matte.cost.usd,
            server_key=payer.server_key,
        )
