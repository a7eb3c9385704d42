"""Photoroom as it documents itself, against the fake Photoroom over real
sockets: a preview reserved at its 0.25 credit, sandbox keys (free,
watermarked, never reserved), and its published rate limit (500 images a
minute) kept on our side so that a burst waits instead of earning 429s."""

from __future__ import annotations

import threading
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import BudgetError, InvalidRequestError, ProviderRateLimitError
from rmbg.money.ledger import Account, open_ledger
from rmbg.money.payer import Paid, Payer
from rmbg.money.paying import Policy
from rmbg.providers.hosted.photoroom import SANDBOX_NOTE, Photoroom
from rmbg.providers.hosted.ratelimit import RateLimiter, shared_limiter
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.common import simple_matte
from tests.fakes.photoroom import PhotoroomFake

KEY = "pr-test-key"
SANDBOX = "sandbox_" + KEY


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it (thread-safe)."""

    def __init__(self) -> None:
        self.now, self.slept, self._lock = 1000.0, [], threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(round(seconds, 6))
            self.now += seconds


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (80, 60), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((20, 10, 60, 50), fill=(220, 30, 20))
    return img


def make(fake, key=KEY, **config) -> Photoroom:
    return get_provider("photoroom", api_key=key, base_url=fake.url, retry=RetryPolicy.immediate(), **config)


def policy(tmp_path) -> Policy:
    return Policy(open_ledger(str(tmp_path / "ledger.sqlite")))


# --- a preview is reserved at 0.25 credit -------------------------------------------------------


def test_a_cap_that_holds_two_previews_takes_two_and_refuses_the_third(tmp_path, image):
    """$0.012: at the full $0.02 not even one call would be reserved; at the preview's $0.005 two fit."""
    with PhotoroomFake() as fake:
        paying = policy(tmp_path)
        paid = Paid(make(fake, size="preview"), Payer(paying, (Account("batch:previews", Decimal("0.012")),)))
        costs = [paid.matte(image).cost.usd for _ in range(2)]
        with pytest.raises(BudgetError, match=r"costs about \$0.0050 per image"):
            paid.matte(image)
        assert costs == [Decimal("0.005")] * 2 and fake.images_billed == Decimal("0.5") and len(fake.calls) == 2
    assert paying.spent("batch:previews") == Decimal("0.010")


# --- sandbox keys: free, watermarked, never reserved ---------------------------------------------


def test_a_sandbox_key_is_free_watermarked_and_never_reserved(tmp_path, image):
    with PhotoroomFake() as fake:
        provider = make(fake, SANDBOX)
        estimate = provider.estimate()
        assert (estimate.usd, estimate.source, estimate.watermarked) == (Decimal(0), "free", True)
        paying = policy(tmp_path)
        matte = Paid(provider, Payer(paying, (Account("batch:sandbox", Decimal(0)),))).matte(image)  # a cap of $0
        assert fake.images_billed == 0 and fake.sandbox_calls == 1 and fake.balance == 100
    assert (
        matte.cost.watermarked and matte.cost.usd == 0 and matte.cost.label() == f"free, watermarked ({SANDBOX_NOTE})"
    )
    assert matte.meta["watermark"] == SANDBOX_NOTE
    assert paying.spent("batch:sandbox") == 0 and paying.ledger.holds() == []
    assert provider.options() == {"size": "full", "sandbox": True}  # cached apart from a paid key's matte
    assert make(fake).options() == {"size": "full"} and not make(fake).estimate().watermarked


def test_the_fakes_sandbox_watermark_is_visible_in_the_matte(image):
    with PhotoroomFake() as fake:
        plain = np.asarray(make(fake).matte(image).alpha)
        marked = np.asarray(make(fake, SANDBOX).matte(image).alpha)
    assert np.array_equal(plain, np.asarray(simple_matte(image)))
    band = marked[24:36]  # the middle fifth of 60 rows
    assert band.min() >= 128 and plain[24:36].min() == 0  # background turned half-opaque: a visible mark
    assert np.array_equal(marked[:24], plain[:24]) and np.array_equal(marked[36:], plain[36:])


def test_a_key_that_only_contains_sandbox_is_a_paid_key(image):
    with PhotoroomFake(keys=("my_sandbox_key",)) as fake:
        provider = make(fake, "my_sandbox_key")
        assert not provider.estimate().watermarked and provider.matte(image).cost.usd == Decimal("0.02")
        assert fake.images_billed == 1 and fake.sandbox_calls == 0


# --- the published rate limit, kept on our side -------------------------------------------------


def test_a_burst_waits_for_the_limit_instead_of_earning_429s(image):
    clock = FakeClock()
    with PhotoroomFake(rate_limit=3, clock=clock) as fake:
        limiter = RateLimiter(3, clock=clock, sleep=clock.sleep)
        provider = make(fake, rate_limiter=limiter, deadline_s=120)  # the default deadline: a minute's wait fits
        for _ in range(7):
            provider.matte(image)
        assert fake.rate_limited == 0 and len(fake.calls) == 7 and fake.images_billed == 7
    assert clock.slept == [60.0, 60.0]  # calls 4 and 7 each waited for the oldest to leave the minute


def test_without_the_limit_the_fake_answers_429_as_documented(image):
    clock = FakeClock()
    with PhotoroomFake(rate_limit=3, clock=clock) as fake:
        generous = make(fake, rate_limiter=RateLimiter(10, clock=clock, sleep=clock.sleep))
        for _ in range(3):
            generous.matte(image)
        with pytest.raises(ProviderRateLimitError, match="HTTP 429"):
            generous.matte(image)
        assert fake.rate_limited >= 1 and fake.images_billed == 3


def test_sandbox_calls_count_towards_the_same_keys_limit(image):
    clock = FakeClock()
    with PhotoroomFake(rate_limit=2, clock=clock) as fake:
        make(fake).matte(image)
        make(fake, SANDBOX).matte(image)
        with pytest.raises(ProviderRateLimitError):
            make(fake, SANDBOX).matte(image)
    assert make(fake).limiter(KEY) is make(fake, SANDBOX).limiter(SANDBOX)  # one limiter for both forms of a key


def test_a_wait_past_the_deadline_is_refused_before_anything_is_sent(image):
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    limiter.acquire("photoroom")
    with PhotoroomFake() as fake:
        provider = get_provider(
            "photoroom",
            api_key=KEY,
            base_url=fake.url,
            retry=RetryPolicy.immediate(),
            deadline_s=5,
            rate_limiter=limiter,
        )
        with pytest.raises(
            ProviderRateLimitError, match=r"could start in 60 s, after this call's deadline, so nothing"
        ):
            provider.matte(image)
        assert fake.calls == [] and clock.slept == []


def test_the_limit_is_a_setting_checked_in_words(image, monkeypatch):
    with PhotoroomFake() as fake:
        assert make(fake).limiter(KEY).limit == 500  # Photoroom's published default
        monkeypatch.setenv("RMBG_PHOTOROOM_RATE_PER_MINUTE", "1200")
        assert make(fake).limiter(KEY).limit == 1200
        for bad, said in (("0", "must be 1 or more"), ("lots", "must be a whole number")):
            monkeypatch.setenv("RMBG_PHOTOROOM_RATE_PER_MINUTE", bad)
            with pytest.raises(InvalidRequestError, match=f"RMBG_PHOTOROOM_RATE_PER_MINUTE {said}"):
                make(fake).matte(image)
        assert fake.calls == []


def test_one_limiter_per_key_and_limit_in_the_process():
    one = shared_limiter("photoroom", "key-a", 500)
    assert shared_limiter("photoroom", "key-a", 500) is one
    assert shared_limiter("photoroom", "key-b", 500) is not one
    assert shared_limiter("photoroom", "key-a", 600) is not one


def test_the_window_slides():
    clock = FakeClock()
    limiter = RateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    assert limiter.acquire("p") == 0 and clock.sleep(30) is None and limiter.acquire("p") == 0
    assert limiter.wait_needed() == 30.0  # the first call leaves the window at t=60
    assert limiter.acquire("p") == 30.0 and limiter.wait_needed() == 30.0  # now the second one, at t=90
    clock.sleep(30)
    assert limiter.wait_needed() == 0


def test_threads_in_a_burst_take_exactly_the_limit_without_waiting():
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    start, waits = threading.Barrier(5), []

    def call() -> None:
        start.wait()
        waits.append(limiter.acquire("p"))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert waits == [0.0] * 5 and limiter.wait_needed() == 60.0
    assert limiter.acquire("p") == 60.0
    with pytest.raises(ValueError, match="at least one call"):
        RateLimiter(0)
