"""The web app launched on 127.0.0.1 for a test, and the config it runs with:
RMBG-1.4 on deterministic tiny weights, the hosted providers on the fake servers."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rmbg.models.specs import RMBG_14  # noqa: E402
from rmbg.webapp import AppConfig  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.hfcache import HFCache, deterministic_state, read_keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cat.jpg"  # 451x300
RMBG14_KEYS = ROOT / "tests" / "fixtures" / "rmbg-1.4.keys.tsv"
TINY_RMBG14 = {"backend": "torch", "device": "cpu", "input_size": (64, 64)}

# The /remove values after image and provider, in the page's order (raw REST calls); a key per vendor (rmbg.vendors).
LOOK_VALUES = [
    "transparent",
    "#ffffff",
    None,
    False,
    "png",
    100,
    None,
    None,
    None,
    None,
    None,
    False,
    False,
    "none",
    "5%",
    "center",
    False,
    "",
    "",
    "none",
    0.8,
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(config: AppConfig):
    """The app from app.build_demo(config), launched on 127.0.0.1; yields its URL. (Those functions are
    rmbg.webapp.page's, imported from there: `import app` would build app.py's own page too, seconds of
    CPU for a page no test opens.)"""
    from rmbg.webapp.page import build_demo

    with serve_demo(build_demo(config)) as url:
        yield url


@contextlib.contextmanager
def serve_demo(demo):
    """A page already built (rmbg.webapp.page.build_demo), launched on 127.0.0.1 as serve() launches
    one; yields its URL. For a test file that also calls the page's events in the process."""
    from rmbg.webapp.launch import serve as start
    from rmbg.webapp.page import launch_kwargs

    port = free_port()
    # ready once its page answers, however loaded the machine (not gradio's 3-second check)
    start(demo, block=False, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs(demo))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def hub_cache(root: Path):
    """Point huggingface_hub at an (initially empty) cache folder."""
    import huggingface_hub.constants as constants

    previous = constants.HF_HUB_CACHE
    constants.HF_HUB_CACHE = str(root)
    try:
        yield HFCache(root)
    finally:
        constants.HF_HUB_CACHE = previous


@contextlib.contextmanager
def calibrated(root: Path, seconds: dict[str, float]):
    """While open, a model cache of its own at `root` (RMBG_CACHE_DIR) whose CPU calibration holds
    `seconds` for a 1 MP photo of each model named (rmbg.providers.local.calibration): the page's
    default model then follows these numbers instead of a measurement of this CPU (about 25 s of CPU
    on 2 cores for RMBG-1.4, and a default that changes with the machine's load)."""
    from rmbg.providers.local import calibration
    from rmbg.providers.local.pinned import ENV_CACHE

    previous = os.environ.get(ENV_CACHE)
    os.environ[ENV_CACHE] = str(root)
    try:
        for model_id, took in seconds.items():
            calibration.store(model_id, calibration.config_of(model_id), took)
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_CACHE, None)
        else:
            os.environ[ENV_CACHE] = previous


def add_tiny_rmbg14(cache: HFCache) -> None:
    cache.add_state(
        RMBG_14.repo_id, RMBG_14.revision, RMBG_14.filename, deterministic_state(read_keys(RMBG14_KEYS), seed=0)
    )


def app_config(fal: FalFake, runware: RunwareFake, **overrides) -> AppConfig:
    providers = {
        "rmbg-1.4": TINY_RMBG14,
        "fal-bria": {"base_url": fal.url},
        "fal-bria-replace": {"base_url": fal.url},
        "runware-bria": {"base_url": runware.url},
        "runware-rembg": {"base_url": runware.url},
    }
    return AppConfig(provider_config=providers, **overrides)


def submits(fal: FalFake) -> int:
    """How many jobs were submitted to the fake fal server (its POSTs)."""
    return sum(1 for call in fal.calls if call.method == "POST")
