"""Running a provider for the app: under the spending cap, one local model
at a time, and on ZeroGPU hardware inside `spaces.GPU`.

`Guarded` wraps a provider without changing its id or options, so the matte
cache still recognises it: a cached matte never reaches `matte()`, so it is
never charged and never checked against the cap.

ZeroGPU runs each `spaces.GPU` call in a worker process forked from the app's
(kept while idle), its arguments and result pickled across. A provider object
holding a loaded model does not pickle, so the call sends the provider's
Recipe (rmbg.webapp.catalog: its id and config) and the worker builds it
again; the models the app had loaded came with the fork, and those the worker
loads stay loaded in it. Edge refinement and SAM 2 picking go there too
(`Guarded.refine_matte`), the refiner pickled before its model loads. Each
call waits for an allocation in ZeroGPU's queue, so a clip's frames go in
groups (`frames_per_call`, one allocation a group: rmbg.video.pipeline), not
one allocation a frame. The locks a forked child inherits held are freed in
it (rmbg.providers.local.pool, rmbg.threads).

Each GPU function asks ZeroGPU for a duration computed from its own arguments
(rmbg.webapp.zerogpu: the photos, the model, whether the worker holds it
yet), not a fixed two minutes: ZeroGPU refuses a call whose ask is more than
the visitor has left. A refusal becomes zerogpu.GpuRefused (a visitor's
words, the CPU alternative); `Guarded(..., on_cpu=True)` is that
alternative: the local model runs here, in the app's own process, on its CPU,
outside spaces.GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..cache import payer_scope
from ..refine import Refiner, refine_matte
from .catalog import Recipe, recipe
from .zerogpu import mark_held, mattes_seconds, model_of, refine_seconds, refusal_of

if TYPE_CHECKING:
    from PIL import Image

    from ..money.payer import Payer
    from ..providers.base import Provider, ProviderStatus
    from ..types import Cost, Matte
    from .catalog import Keys
    from .context import App

ZEROGPU_FRAMES = 16  # a clip's frames per ZeroGPU allocation (about 100 MB of 1080p frames each way)


def on_zerogpu(fn: Callable, duration: Callable[..., int]) -> Callable:
    """`spaces.GPU(fn, duration=duration)` where the `spaces` package exists (Hugging Face
    ZeroGPU; it calls `duration` with each call's own arguments for its ask); elsewhere `fn`
    unchanged."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _local_mattes(provider: Provider | Recipe, images: list[Image.Image]) -> list[Matte]:
    if isinstance(provider, Recipe):
        provider = provider.build()
    return [provider.matte(image) for image in images]


def _local_refine(refiner: Refiner, image: Image.Image, matte: Matte) -> Matte:
    return refine_matte(refiner, image, matte)


# Decorated at import, as ZeroGPU requires. On ZeroGPU the call runs in a worker process forked
# from the app's, its arguments and result pickled across: a Recipe, not the provider object.
local_mattes = on_zerogpu(_local_mattes, mattes_seconds)
local_refine = on_zerogpu(_local_refine, refine_seconds)
ZEROGPU = local_mattes is not _local_mattes


def through_zerogpu(gpu_function: Callable, *args: object) -> Any:
    """gpu_function(*args), a `spaces.GPU` function: ZeroGPU's refusal (quota spent, no GPU, an
    ask over its maximum) raised as zerogpu.GpuRefused, a visitor's words; anything else as it came."""
    try:
        return gpu_function(*args)
    except Exception as exc:
        refused = refusal_of(exc)
        if refused is None:
            raise
        raise refused from None


def payer(app: App, session_id: str, keys: Keys, provider: Provider) -> Payer | None:
    """Who pays for this visitor's call of a hosted provider (rmbg.money.payer.Payer, the one wrapper): their own
    key, or (where allowed) the server's, on the accounts of rmbg.webapp.spending. None for any other: a local
    model pays nothing, so a free click names no account and builds no payer."""
    if provider.kind != "hosted":
        return None
    return app.ledger.payer(session_id, server_key=not keys.for_provider(provider.id))


class Guarded:
    """The one provider wrapper of the app's doors (Remove, Compare, REST,
    MCP, Benchmark, progressive results): a hosted call is paid through
    rmbg.money.paying's rule on the payer's accounts (rmbg.webapp.spending); a local
    model takes the device lock itself, around each forward, wherever it runs
    (rmbg.providers.local.pool). `on_start(provider)` is called just
    before the provider works; `last` keeps the last alpha it made (the
    Benchmark's gallery) when `keep_last`."""

    def __init__(
        self,
        inner: Provider,
        payer: Payer | None,
        on_start: Callable[[Provider], None] | None = None,
        on_cpu: bool = False,
    ):
        self.inner = inner
        self.on_cpu = on_cpu  # a local model here, outside spaces.GPU (the CPU alternative on ZeroGPU)
        self.id = inner.id
        self.label = inner.label
        self.kind = inner.kind
        self._payer = payer
        self._on_start = on_start
        self.keep_last = False
        self.last: Image.Image | None = None
        self.pays_itself = True  # rmbg.money.payer.Paid and `evaluate` do not pay for it again

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"

    def options(self) -> Mapping[str, object]:
        return self.inner.options()

    def key_scope(self) -> str:
        return payer_scope(self.inner)

    def status(self) -> ProviderStatus:
        return self.inner.status()

    def estimate(self) -> Cost:
        return self.inner.estimate()

    @property
    def frames_per_call(self) -> int:
        """A clip's frames per `mattes` call (rmbg.video.pipeline): a group for a local model on
        ZeroGPU (one GPU allocation each, not one a frame), else one."""
        return ZEROGPU_FRAMES if self._on_gpu else 1

    @property
    def _on_gpu(self) -> bool:
        return ZEROGPU and self.kind == "local" and not self.on_cpu

    def matte(self, image: Image.Image) -> Matte:
        return self.mattes([image])[0]

    def mattes(self, images: list[Image.Image]) -> list[Matte]:
        """One matte per image: a hosted provider paid call by call; a local model all of them in one
        local_mattes call (one ZeroGPU allocation), each forward under the pool's device lock."""
        self.last = None
        if self.kind == "hosted":
            made = [self._paid(image) for image in images]
        else:
            if self._on_start:
                self._on_start(self.inner)
            made = self._local(images)
        if self.keep_last:
            self.last = made[-1].alpha
        return made

    def _local(self, images: list[Image.Image]) -> list[Matte]:
        if not self._on_gpu:
            return _local_mattes(self.inner, images)
        sent = recipe(self.inner)
        made: list[Matte] = through_zerogpu(local_mattes, sent, images)
        mark_held(model_of(sent))  # the worker keeps it loaded for the next call
        return made

    def refine_matte(self, refiner: Refiner, image: Image.Image, matte: Matte) -> Matte:
        """Edge refinement or SAM 2 picking of this provider's matte (rmbg.api): on ZeroGPU in
        the GPU worker, as the local models run (the refiner goes there pickled, its model
        loaded in the worker); elsewhere here, where it always ran."""
        if not ZEROGPU or self.on_cpu:
            return refine_matte(refiner, image, matte)
        refined: Matte = through_zerogpu(local_refine, refiner, image, matte)
        for step in str(refiner.id).split("+"):
            mark_held(step)
        return refined

    def _paid(self, image: Image.Image) -> Matte:
        payer = self._payer
        if payer is None:  # guard.payer gives every hosted provider one
            raise TypeError(f"Guarded({self.id!r}) is a hosted provider with no payer")

        def call() -> Matte:
            if self._on_start:
                self._on_start(self.inner)
            return self.inner.matte(image)

        # counted when it returns, whatever happens to the result later
        return payer.pay(payer.payment(self.id, self.inner.estimate().usd), call, lambda matte: matte.cost.usd)
