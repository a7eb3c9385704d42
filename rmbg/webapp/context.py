"""The App object: what every action of one deployment shares.

config: what the deployment allows (AppConfig, from the environment);
store: where download files are written (OutputStore);
cache: the matte cache (None: never cache; by default the process-wide one);
ledger: what visitors spent, per session and per day (rmbg.webapp.spending);
book: what providers have really cost on this server, for the projection (PriceBook);
recent: the last results of every session, byte-bounded (rmbg.webapp.recent);
warm: local providers (id and options: warm_key) that have run in this process, whose
model is loaded (the progress text says "loads the model" only before that);
built: those local providers themselves, kept built for the next click (Built);
videos: the clips kept for re-encoding, every session's, bounded on disk, and
runs: the video runs in progress with their Stop flags (rmbg.webapp.shelf);
slots, compare_slots, benchmark_slots, video_slots: each door's work slots, a paid
call's wait outside them (rmbg.webapp.slots).
The matte cache and `recent` share config.memory_mb, so memory stays flat
however many sessions come and go.
Per-visitor values never live here: they are in the Session (gr.State).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import median

from .. import provider_table
from ..cache import DEFAULT, CacheArg, MatteCache, options_key, resolve_cache
from ..providers.base import Provider
from ..result import Result
from ..settings import Settings, current
from ..video.answers import default_answers
from .config import AppConfig
from .look import OutputStore
from .recent import Recent, image_bytes
from .shelf import Runs, Shelf
from .slots import BENCHMARK, COMPARE, VIDEO, Slots, waiting_outside
from .spending import Ledger

SESSION_IDLE_S = 3600  # as the page's gr.State (app.SESSION_TTL_S): an idle identity's total is forgotten
KEPT_BUILT = 64  # hf:OWNER/REPO ids are open-ended: past this, the one kept longest is let go (built again if asked)
RUNS_KEPT = 25  # a local model's model times the PriceBook keeps
MAX_PROVIDERS = 256  # hf:OWNER/REPO ids are open-ended: the PriceBook forgets the oldest past this

Stamp = tuple[int, Settings]


def built_from() -> Stamp:
    """What a provider, or a price row, is made from besides the App's config: the provider table's version
    (register() and unregister() change it) and the RMBG_* settings (rmbg.settings.current: the same object
    until a variable changes). A kept one made under another stamp is made again."""
    return provider_table.version, current()


class Built:
    """The local providers the Remove click built and ran, kept built for the next click (the model itself
    lives in rmbg.providers.local.pool): a warm click builds nothing, so its licence, download and Hub
    checks (rmbg.webapp.catalog) are not made again for a provider that passed them under the same stamp
    (built_from). Keyed by provider id and whether it runs on the CPU (rmbg.webapp.zerogpu.on_cpu_config);
    a local model takes no visitor key. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, bool], tuple[Stamp, Provider]] = OrderedDict()

    def get(self, provider_id: str, on_cpu: bool) -> tuple[Provider | None, Stamp]:
        """(the kept provider, or None when there is none made under the stamp of now; that stamp)."""
        stamp = built_from()
        with self._lock:
            kept = self._kept.get((provider_id, on_cpu))
        return (kept[1] if kept is not None and kept[0] == stamp else None), stamp

    def keep(self, provider_id: str, on_cpu: bool, provider: Provider, stamp: Stamp) -> bool:
        """Keep a local provider built under `stamp` (get's) that has run; True when kept (never closed then)."""
        if provider.kind != "local":
            return False
        with self._lock:
            self._kept[(provider_id, on_cpu)] = (stamp, provider)
            self._kept.move_to_end((provider_id, on_cpu))
            while len(self._kept) > KEPT_BUILT:
                self._kept.popitem(last=False)
        return True


class PriceBook:
    """What providers have really cost on this server, shared by every session: the monthly projection under a
    result reads it (rmbg.webapp.costs), so every visitor sees the same figure for the same model (not one per
    session), and a hosted provider is projected at the price its vendor reported here rather than at the figure
    the caps reserve. Kept per process, bounded: the last reported price of each hosted provider, and each local
    model's last RUNS_KEPT model times (the projection uses their median, so one slow image does not move it).
    Nothing here is money that must last: the money is in the ledger. Thread-safe: observe() after each run,
    reported() and timings() for the projection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reported: OrderedDict[str, Decimal] = OrderedDict()
        self._runs: OrderedDict[str, tuple[deque[float], str]] = OrderedDict()

    def observe(self, result: Result, kind: str) -> None:
        """Record one run: a hosted provider's reported price, a local model's seconds (not a cached matte's)."""
        with self._lock:
            if kind == "hosted" and result.cost.source == "reported":
                self._keep(self._reported, result.provider, result.cost.usd)
            elif kind == "local" and not result.cached:
                device = str(result.meta.get("device", "cpu"))
                runs, seen_on = self._runs.get(result.provider, (deque(maxlen=RUNS_KEPT), device))
                if seen_on != device:  # another device: its own figure
                    runs = deque(maxlen=RUNS_KEPT)
                runs.append(float(result.seconds.model))
                self._keep(self._runs, result.provider, (runs, device))

    @staticmethod
    def _keep(table: OrderedDict, key: str, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_PROVIDERS:
            table.popitem(last=False)

    def reported(self) -> dict[str, Decimal]:
        """provider id -> the last price its vendor reported on this server."""
        with self._lock:
            return dict(self._reported)

    def timings(self) -> dict[str, tuple[float, str, int]]:
        """provider id -> (median model seconds, device, runs) on this server."""
        with self._lock:
            return {pid: (median(runs), device, len(runs)) for pid, (runs, device) in self._runs.items() if runs}


@dataclass(frozen=True)
class App:
    config: AppConfig
    store: OutputStore
    cache: MatteCache | None
    ledger: Ledger
    recent: Recent
    warm: set[str] = field(default_factory=set)
    built: Built = field(default_factory=Built)  # the local providers a click ran, kept built
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
        if matte_cache is not None:  # a request waiting for another's call of its matte: outside its slot
            matte_cache.flights.wait_aside = waiting_outside
        default_answers().flights.wait_aside = waiting_outside  # likewise for a clip's hosted answer
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
