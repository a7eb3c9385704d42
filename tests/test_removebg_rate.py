"""remove.bg's rate limit, weighted by megapixels (issue 57, item 8): 500 images a minute at 1 MP,
20 at 25 MP. Our side waits its turn (one limiter per key in the process) instead of sending what
the vendor refuses; the fake counts by the same rule, on the same clock, and answers 429 past it.
On 3f93ebc nothing was spaced: a batch of large images met 429s."""

from __future__ import annotations

import pytest
from PIL import Image

from rmbg.errors import ProviderRateLimitError
from rmbg.providers.hosted.ratelimit import RateLimiter
from rmbg.providers.hosted.removebg import RemoveBg, megapixel_weight
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.removebg import TEST_KEY, RemoveBgFake
from tests.test_photoroom_documented import FakeClock

LONG = RetryPolicy.immediate(deadline_s=600.0)  # the fake clock's minutes fit in the call's deadline


@pytest.mark.parametrize(
    "size, weight", [((625, 400), 1), ((1200, 800), 1), ((1600, 1200), 2), ((4000, 2500), 10), ((6250, 4000), 25)]
)
def test_an_image_weighs_its_megapixels_rounded_up(size, weight):
    assert megapixel_weight(*size) == weight


def test_twenty_images_of_25_mp_a_minute():
    clock = FakeClock()
    limiter = RateLimiter(500, 60.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire("remove-bg", weight=25) for _ in range(20)] == [0.0] * 20
    assert limiter.wait_needed(25) == 60.0 and limiter.wait_needed(1) == 60.0
    assert limiter.acquire("remove-bg", weight=25) == 60.0  # the first twenty have left the window
    assert [limiter.acquire("remove-bg", weight=25) for _ in range(19)] == [0.0] * 19
    with pytest.raises(ProviderRateLimitError, match="remove.bg's rate limit"):
        limiter.acquire("remove-bg", most_s=10.0, what="remove.bg's rate limit", weight=25)


def test_a_batch_of_large_images_waits_its_turn_and_meets_no_429():
    """A limit of 10 a minute (at 1 MP) and images of 2.5 MP (three each): three a minute go."""
    clock = FakeClock()
    image = Image.new("RGB", (2000, 1250), (200, 30, 30))
    with RemoveBgFake(rate_limit=10, clock=clock) as fake:
        limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
        provider = RemoveBg(api_key=TEST_KEY, base_url=fake.url, size="preview", rate_limiter=limiter, retry=LONG)
        for _ in range(7):
            provider.matte(image)
        assert fake.rate_limited == 0 and sum(c.method == "POST" for c in fake.calls) == 7
    assert clock.slept == [60.0, 60.0]  # the 4th and the 7th waited for the window


def test_without_our_limiter_the_fake_refuses_as_remove_bg_does():
    """The fake's own count, so the test above means something: the 4th image in a minute is a 429."""
    clock = FakeClock()
    with RemoveBgFake(rate_limit=10, clock=clock) as fake:
        unlimited = RateLimiter(10**6, 60.0, clock=clock, sleep=clock.sleep)
        provider = RemoveBg(api_key=TEST_KEY, base_url=fake.url, size="preview", rate_limiter=unlimited, retry=LONG)
        image = Image.new("RGB", (2000, 1250), (200, 30, 30))
        for _ in range(3):
            provider.matte(image)
        with pytest.raises(ProviderRateLimitError):
            provider.matte(image)
        assert fake.rate_limited >= 1
