"""What a deployment of the app allows, read once from the environment.

Server-side API keys (FAL_KEY, RUNWARE_API_KEY set by whoever runs the app)
are spent by visitors only when the owner says so:
  RMBG_ALLOW_SERVER_KEYS=1  visitors may use them;
  RMBG_ALLOW_SERVER_KEYS=0  never;
  unset                     only when the app is private: not a Hugging Face
                            Space (no SPACE_ID) and bound to a loopback
                            address (GRADIO_SERVER_NAME unset or localhost).
RMBG_SESSION_CAP_USD caps what one browser session may spend on hosted calls,
so a runaway comparison stops; RMBG_DAILY_CAP_USD caps what all visitors
together may spend of the server's own keys per UTC day (rmbg.webapp.spending).
Their defaults, as every default read here, are the ones rmbg.settings_declared
declares (read with rmbg.settings.declared_number): written once. RMBG_TRUSTED_PROXIES names the proxies whose
X-Forwarded-For header is believed (rmbg.webapp.identity); RMBG_HF_REPOS,
RMBG_PUBLIC and RMBG_VISITOR_DOWNLOADS which model downloads visitors may
start (rmbg.webapp.downloads).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..licences import commercial_only
from ..money.pricing import REFERENCE_MONTHLY_VOLUME
from ..settings import declared_number
from ..settings import of as settings_of
from .downloads import repo_list
from .identity import trusted_proxies

DEFAULT_CAP_USD = declared_number("RMBG_SESSION_CAP_USD")
DEFAULT_DAILY_CAP_USD = declared_number("RMBG_DAILY_CAP_USD")
LOOPBACK = frozenset({"", "127.0.0.1", "localhost", "::1"})
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class AppConfig:
    """Deployment settings; per-user values never live here.

    provider_config: extra constructor config per provider id, e.g.
        {"rmbg-1.4": {"device": "cpu"}} (tests use small input sizes).
    allow_server_keys: visitors may spend the server's own API keys.
    cap_usd: most a browser session may spend on hosted calls (USD).
    daily_cap_usd: most all visitors together may spend of the server's own
        keys per UTC day (USD).
    monthly_volume: default images per month of the cost projection.
    max_preview_side: longest side (px) of the on-page preview; the
        download is always full size.
    memory_mb: what the app keeps of all sessions' pixels (MiB): 40 % for
        the matte cache, 60 % for recent results (RMBG_APP_MEMORY_MB).
    downloads_mb: most the download files may take on disk (MiB), beside
        gradio's hourly pruning (RMBG_DOWNLOADS_MB).
    uploads_mb: most visitors' uploads may take on disk (MiB) in gradio's
        upload folder (RMBG_UPLOADS_MB; rmbg.webapp.upload_room).
    trusted_proxies: addresses or networks whose X-Forwarded-For is believed
        (RMBG_TRUSTED_PROXIES; rmbg.webapp.identity); empty: nobody's.
    hf_repos: Hub repositories visitors may name as hf:OWNER/REPO ("*": any;
        RMBG_HF_REPOS); public: a public deployment (RMBG_PUBLIC, else a Space
        or a non-loopback address); visitor_downloads: declared models whose
        weights visitors may cause to download there (RMBG_VISITOR_DOWNLOADS;
        None: the default model only). See rmbg.webapp.downloads.
    bench_max_s: the longest a Benchmark run takes new provider calls (RMBG_BENCH_MAX_SECONDS);
        then it scores what it has, as after Stop.
    """

    provider_config: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    allow_server_keys: bool = False
    cap_usd: Decimal = DEFAULT_CAP_USD
    daily_cap_usd: Decimal = DEFAULT_DAILY_CAP_USD
    monthly_volume: int = REFERENCE_MONTHLY_VOLUME
    max_preview_side: int = 1600
    memory_mb: int = int(declared_number("RMBG_APP_MEMORY_MB"))
    downloads_mb: int = int(declared_number("RMBG_DOWNLOADS_MB"))
    uploads_mb: int = int(declared_number("RMBG_UPLOADS_MB"))
    trusted_proxies: tuple[str, ...] = ()
    hf_repos: tuple[str, ...] = ()
    public: bool = False
    visitor_downloads: tuple[str, ...] | None = None
    bench_max_s: float = float(declared_number("RMBG_BENCH_MAX_SECONDS"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AppConfig:
        env = os.environ if environ is None else environ
        commercial_only(env)  # a bad RMBG_COMMERCIAL_ONLY stops the launch, named, rather than each call
        ledger_setting(env)  # so does an RMBG_LEDGER that names no ledger (nothing is created)
        values: dict[str, Any] = {
            "allow_server_keys": server_keys_allowed(env),
            "cap_usd": cap_from_env(env),
            "daily_cap_usd": cap_from_env(env, "RMBG_DAILY_CAP_USD"),
            "memory_mb": int(cap_from_env(env, "RMBG_APP_MEMORY_MB")),
            "downloads_mb": int(cap_from_env(env, "RMBG_DOWNLOADS_MB")),
            "uploads_mb": int(cap_from_env(env, "RMBG_UPLOADS_MB")),
            "trusted_proxies": trusted_proxies(env),
            "hf_repos": repo_list(env),
            "public": public_deployment(env),
            "visitor_downloads": repo_list(env, "RMBG_VISITOR_DOWNLOADS") or None,
            "bench_max_s": float(cap_from_env(env, "RMBG_BENCH_MAX_SECONDS")),
        }
        values.update(overrides)
        return cls(**values)

    def config_for(self, provider_id: str) -> dict[str, object]:
        return dict(self.provider_config.get(provider_id, {}))


def ledger_setting(environ: Mapping[str, str]) -> None:
    """RMBG_LEDGER checked before the app starts (rmbg.money.ledger.check_setting): LedgerSettingError
    when it names no ledger; a damaged ledger is logged, and the app starts for free work."""
    from ..money.ledger import check_setting

    damaged = check_setting(settings_of(environ).raw("RMBG_LEDGER"))
    if damaged:
        logging.getLogger(__name__).error("%s Local models still run.", damaged)


def is_public(environ: Mapping[str, str]) -> bool:
    """A Space, or a server listening on a non-loopback address."""
    if environ.get("SPACE_ID"):
        return True
    return environ.get("GRADIO_SERVER_NAME", "").strip().lower() not in LOOPBACK


def public_deployment(environ: Mapping[str, str]) -> bool:
    """RMBG_PUBLIC (1 or 0) when set, else is_public()."""
    said = settings_of(environ).flag("RMBG_PUBLIC")
    return is_public(environ) if said is None else said


def server_keys_allowed(environ: Mapping[str, str]) -> bool:
    """See the module docstring for the rule."""
    said = settings_of(environ).flag("RMBG_ALLOW_SERVER_KEYS")
    return not is_public(environ) if said is None else said


def cap_from_env(environ: Mapping[str, str], name: str = "RMBG_SESSION_CAP_USD") -> Decimal:
    """A USD amount (or MiB, or seconds) of 0 or more, its declared default when unset; ValueError
    naming the variable otherwise."""
    return settings_of(environ).decimal(name)
