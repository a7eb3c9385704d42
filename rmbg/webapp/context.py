"""The App object: what every action of one deployment shares.

config: what the deployment allows (AppConfig, from the environment);
store: where download files are written (OutputStore);
cache: the matte cache (None: never cache; by default the process-wide one);
ledger: what visitors spent, per session and per day (rmbg.webapp.spending);
recent: the last results of every session, byte-bounded (rmbg.webapp.recent);
warm: local providers (id and options: warm_key) that have run in this process, whose
model is loaded (the progress text says "loads the model" only before that);
videos: the clips kept for re-encoding, every session's, bounded on disk, and
runs: the video runs in progress with their Stop flags (rmbg.webapp.shelf);
slots, compare_slots, benchmark_slots, video_slots: each door's work slots, a paid
call's wait outside them (rmbg.webapp.slots).
The matte cache and `recent` share config.memory_mb, so memory stays flat
however many sessions come and go.
Per-visitor values never live here: they are in the Session (gr.State).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cache import DEFAULT, CacheArg, MatteCache, options_key, resolve_cache
from ..providers.base import Provider
from .config import AppConfig
from .look import OutputStore
from .pricebook import PriceBook
from .recent import Recent, image_bytes
from .shelf import Runs, Shelf
from .slots import BENCHMARK, COMPARE, VIDEO, Slots
from .spending import Ledger

SESSION_IDLE_S = 3600  # as the page's gr.State (app.SESSION_TTL_S): an idle identity's total is forgotten


@dataclass(frozen=True)
class App:
    config: AppConfig
    store: OutputStore
    cache: MatteCache | None
    ledger: Ledger
    recent: Recent
    warm: set[str] = field(default_factory=set)
    book: PriceBook = field(default_factory=PriceBook)  # what providers cost here, for the projection
    videos: Shelf = field(default_factory=Shelf)
    runs: Runs = field(default_factory=Runs)
    slots: Slots = field(default_factory=Slots)  # the page's, its API's and MCP's cut-outs (REST has its own)
    compare_slots: Slots = field(default_factory=lambda: Slots(COMPARE))  # each door's own (rmbg.webapp.slots)
    benchmark_slots: Slots = field(default_factory=lambda: Slots(BENCHMARK))
    video_slots: Slots = field(default_factory=lambda: Slots(VIDEO))  # the Video tab's (POST /api/video has its own)

    @classmethod
    def create(
        cls, config: AppConfig | None = None, *, store: OutputStore | None = None, cache: CacheArg = DEFAULT
    ) -> App:
        """An App from the environment's AppConfig unless one is given."""
        config = config or AppConfig.from_env()
        budget = config.memory_mb * 1024 * 1024
        matte_cache = resolve_cache(cache)
        if cache == DEFAULT and matte_cache is not None:  # the process's cache is the app's: bound it
            matte_cache.limit(budget * 2 // 5)
        ledger = Ledger(config.cap_usd, config.daily_cap_usd, idle_s=SESSION_IDLE_S)
        return cls(config, store or OutputStore(), matte_cache, ledger, Recent(budget - budget * 2 // 5, kept_bytes))


def kept_bytes(value: object) -> int:
    """Bytes of what the store keeps: a result's source and matte (the rendered
    image is dropped before storing), or every result of a comparison."""
    results = getattr(value, "results", None)
    if results is not None:  # a comparison: one source, one matte per provider
        source = getattr(value, "source", None)
        return (image_bytes(source) if source is not None else 0) + sum(image_bytes(r.alpha) for r in results.values())
    return image_bytes(value.source) + image_bytes(value.alpha)  # type: ignore[attr-defined]


def warm_key(provider: Provider) -> str:
    """What `App.warm` holds of a local provider that has run: its id and options."""
    return f"{provider.id} {options_key(provider.options())}"
