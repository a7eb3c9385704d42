"""Words about vendors' money and doors (issue 57, item 9): an oversized billed body says it may
have been billed; fal's accepted-then-failed clip is not "rejected the image"; a result cap is a
rounded size; under RMBG_COMMERCIAL_ONLY=1 the video doors name the licence."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import LicenceError, ProviderRejectedError, ProviderResponseError
from rmbg.money.charging import MAY_BE_BILLED
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.payer import Paid
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from rmbg.video.hosted import Payer
from rmbg.video.providers import get_video_provider, video_provider
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.fakes.photoroom import TEST_KEY as PHOTOROOM_KEY
from tests.fakes.photoroom import PhotoroomFake
from tests.fakes.removebg import TEST_KEY as REMOVEBG_KEY
from tests.fakes.removebg import RemoveBgFake
from tests.test_hosted_video import clip  # noqa: F401  (a 0.5 s clip)


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    yield opened
    opened.close()


def noise() -> Image.Image:
    """A photo whose cut-out PNG is some kB (a flat one compresses under any small cap)."""
    return Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize(
    "pid, fake, key, module",
    [("remove-bg", RemoveBgFake, REMOVEBG_KEY, "removebg"), ("photoroom", PhotoroomFake, PHOTOROOM_KEY, "photoroom")],
)
def test_an_oversized_billed_body_says_it_may_have_been_billed(ledger, monkeypatch, pid, fake, key, module):
    """On 3f93ebc the message ended "refused." and said nothing of the money."""
    import importlib

    monkeypatch.setattr(importlib.import_module(f"rmbg.providers.hosted.{module}"), "MAX_RESULT_BYTES", 100)
    with fake() as server:
        provider = get_provider(pid, api_key=key, base_url=server.url, retry=RetryPolicy.immediate())
        with pytest.raises(ProviderResponseError, match="MiB limit; refused") as caught:
            Paid(provider, Payer(Policy(ledger), (Account("session:o", Decimal("1")),))).matte(noise())
        assert sum(c.method == "POST" for c in server.calls) == 1
    assert MAY_BE_BILLED in str(caught.value)
    assert [h.state for h in ledger.holds(None)] == ["settled"]  # kept at its estimate


def test_an_accepted_then_failed_clip_is_not_called_a_rejected_image(ledger, clip):  # noqa: F811
    with FalVideoFake() as fake:
        fake.inject("failed", op="submit")
        remover = get_video_provider("fal-bria-video", api_key=FAL_KEY, base_url=fake.url)
        with pytest.raises(ProviderRejectedError) as caught:
            rmbg.remove_video(clip, remover, payer=Payer(Policy(ledger), (Account("day:w", None),)))
    words = str(caught.value)
    assert "rejected the image" not in words
    assert "took the request, then its job failed (HTTP 422)" in words and "may bill it" in words


def test_a_result_cap_is_a_rounded_size(ledger, clip):  # noqa: F811
    from rmbg.providers.hosted.video_job import mib

    assert (mib(21_480_000), mib(16 * 2**20), mib(4 * 2**30)) == ("20.5 MiB", "16 MiB", "4096 MiB")
    with FalVideoFake() as fake:
        fake.huge_bytes = 30 * 2**20
        fake.inject("huge", op="submit")
        remover = get_video_provider("fal-bria-video", api_key=FAL_KEY, base_url=fake.url)
        with pytest.raises(ProviderResponseError) as caught:
            rmbg.remove_video(clip, remover, payer=Payer(Policy(ledger), (Account("day:w", None),)))
    assert re.search(r"over the \d+(\.\d)? MiB limit; refused before downloading it", str(caught.value))


@pytest.mark.parametrize("pid", ["rmbg-1.4", "rmbg-2.0"])
def test_the_video_doors_name_the_licence_under_commercial_only(monkeypatch, pid):
    """On 3f93ebc: "'rmbg-1.4' does not run on video", as if the model did not exist."""
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "1")
    with pytest.raises(LicenceError, match="non-commercial") as caught:
        video_provider(pid)
    assert "does not run on video" not in str(caught.value) and "RMBG_COMMERCIAL_ONLY=1" in str(caught.value)
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "0")
    assert video_provider(pid).id == pid
