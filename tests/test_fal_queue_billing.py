"""fal never bills queue time (issue 57, item 8): a request cancelled while fal still reported it
IN_QUEUE is released, not counted as "may have been billed"; one cancelled once it ran is kept.
On 3f93ebc a stuck-queue clip kept $0.084 "may have been billed" while the fake billed nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image

import rmbg
from rmbg.errors import ProviderTimeoutError
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.payer import Paid
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from rmbg.video.hosted import Payer
from rmbg.video.providers import get_video_provider
from tests.fakes.fal import TEST_KEY, FalFake
from tests.fakes.fal_video import FalVideoFake
from tests.test_hosted_video import clip  # noqa: F401  (a 0.5 s clip: one billed second)

SHORT = RetryPolicy.immediate(deadline_s=1.0, poll_interval=0.05)


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    yield opened
    opened.close()


def cancels(fake) -> int:
    return sum(c.method == "PUT" and c.path.endswith("/cancel") for c in fake.calls)


@pytest.mark.parametrize("fault, state, kept", [("queued", "released", "0"), ("stuck", "settled", "0.018")])
def test_an_image_cancelled_in_the_queue_is_released(ledger, fault, state, kept):
    with FalFake() as fake:
        fake.inject(fault, op="status", times=10**9)  # never moves: polls are not paced here (SHORT)
        provider = get_provider("fal-bria", api_key=TEST_KEY, base_url=fake.url, retry=SHORT)
        with pytest.raises(ProviderTimeoutError) as caught:
            Paid(provider, Payer(Policy(ledger), (Account("session:f", Decimal("1")),))).matte(Image.new("RGB", (8, 8)))
        assert cancels(fake) == 1
    assert [(h.state, h.final) for h in ledger.holds(None)] == [(state, Decimal(kept))]
    words = str(caught.value)
    if fault == "queued":
        assert (
            "still waiting in fal's queue (request " in words
            and "was removed from it, so fal does not bill it" in words
        )
        assert "may bill" not in words
    else:
        assert "accepted the request" in words and "may bill it" in words


def test_a_clip_stuck_in_the_queue_is_released(ledger, clip):  # noqa: F811
    with FalVideoFake() as fake:
        fake.inject("queued", op="submit")
        remover = get_video_provider("fal-bria-video", api_key=TEST_KEY, base_url=fake.url, retry=SHORT)
        with pytest.raises(ProviderTimeoutError, match="does not bill it"):
            rmbg.remove_video(clip, remover, payer=Payer(Policy(ledger), (Account("session:v", Decimal("1")),)))
        assert cancels(fake) == 1 and fake.billed == []
    assert [h.state for h in ledger.holds(None)] == ["released"] and ledger.spent("session:v") == 0
