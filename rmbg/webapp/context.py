"""The App object: what every action of one deployment shares.

config: what the deployment allows (AppConfig, from the environment);
store: where download files are written (OutputStore);
cache: the matte cache (None: never cache; by default the process-wide one);
ledger: what visitors spent, per session and per day (rmbg.webapp.spending).
Per-visitor values never live here: they are in the Session (gr.State).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cache import DEFAULT, CacheArg, MatteCache, resolve_cache
from .config import AppConfig
from .look import OutputStore
from .spending import Ledger


@dataclass(frozen=True)
class App:
    config: AppConfig
    store: OutputStore
    cache: MatteCache | None
    ledger: Ledger

    @classmethod
    def create(cls, config: AppConfig | None = None, *, store: OutputStore | None = None,
               cache: CacheArg = DEFAULT) -> "App":
        """An App from the environment's AppConfig unless one is given."""
        config = config or AppConfig.from_env()
        return cls(config, store or OutputStore(), resolve_cache(cache), Ledger(config.cap_usd, config.daily_cap_usd))
