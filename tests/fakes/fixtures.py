"""pytest fixtures for the fake provider servers.

Use them from any test module with
    from tests.fakes.fixtures import fal_fake, runware_fake, removebg_fake, photoroom_fake  # noqa: F401
    from tests.fakes.fixtures import fal_video_fake, runware_video_fake, cloudflare_video_fake  # noqa: F401  (video)

Each fixture yields a started server (function scope, a fresh one per test):
  .url        base URL, e.g. "http://127.0.0.1:54321"; pass it as base_url=
              (or set RMBG_FAL_QUEUE_URL / RMBG_RUNWARE_URL)
  .calls      list of tests.fakes.common.Call (method, path, query, headers, body)
  .inject(f)  queue a fault: inject("rate-limit", op="submit", times=2, retry_after="1")
  .key        a key the fake accepts (fal: "fal-test-id:fal-test-secret", Runware: "rw-test-key",
              remove.bg: "rbg-test-key", Photoroom: "pr-test-key", Cloudflare: "ACCOUNT_ID:API_TOKEN")
"""

from __future__ import annotations

import pytest

from .cloudflare_video import TEST_KEY as CLOUDFLARE_TEST_KEY
from .cloudflare_video import CloudflareVideoFake
from .fal import TEST_KEY as FAL_TEST_KEY
from .fal import FalFake
from .fal_video import FalVideoFake
from .photoroom import TEST_KEY as PHOTOROOM_TEST_KEY
from .photoroom import PhotoroomFake
from .removebg import TEST_KEY as REMOVEBG_TEST_KEY
from .removebg import RemoveBgFake
from .runware import TEST_KEY as RUNWARE_TEST_KEY
from .runware import RunwareFake
from .runware_video import RunwareVideoFake


@pytest.fixture
def fal_fake():
    with FalFake() as fake:
        fake.key = FAL_TEST_KEY
        yield fake


@pytest.fixture
def runware_fake():
    with RunwareFake() as fake:
        fake.key = RUNWARE_TEST_KEY
        yield fake


@pytest.fixture
def removebg_fake():
    with RemoveBgFake() as fake:
        fake.key = REMOVEBG_TEST_KEY
        yield fake


@pytest.fixture
def photoroom_fake():
    with PhotoroomFake() as fake:
        fake.key = PHOTOROOM_TEST_KEY
        yield fake


@pytest.fixture
def fal_video_fake():
    with FalVideoFake() as fake:
        fake.key = FAL_TEST_KEY
        yield fake


@pytest.fixture
def runware_video_fake():
    with RunwareVideoFake() as fake:
        fake.key = RUNWARE_TEST_KEY
        yield fake


@pytest.fixture
def cloudflare_video_fake():
    with CloudflareVideoFake() as fake:
        fake.key = CLOUDFLARE_TEST_KEY
        yield fake
