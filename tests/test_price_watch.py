"""A vendor that reports more than the bound (issue 57, item 2): the call is counted in full, its
provider is refused after it until the operator accepts the price, and no burst of calls passes a
cap by more than one call (rmbg.money.price_watch, rmbg.money.paying). Billed is what the fake Runware
charged: the calls that reached it times the cost it reported."""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal

import pytest
from PIL import Image

from rmbg import get_provider
from rmbg.errors import BudgetError
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.payer import Paid, Payer
from rmbg.money.paying import Payment, Policy
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.runware import TEST_KEY, RunwareFake

REMBG = "runware:109@1"  # runware-rembg: $0.0013 in the price table, held at $0.0026
RAISED = 0.05


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    yield opened
    opened.close()


def posts(fake) -> int:
    return sum(c.method == "POST" for c in fake.calls)


def burst(paid: Paid, calls: int) -> list[str]:
    """`calls` threads at once, each one image; what each got ("paid" or the refusal's words)."""
    start = threading.Barrier(calls)
    image = Image.new("RGB", (24, 16), (200, 30, 30))
    got: list[str] = []

    def one() -> None:
        start.wait()
        try:
            paid.matte(image)
            got.append("paid")
        except BudgetError as exc:
            got.append(str(exc))

    threads = [threading.Thread(target=one) for _ in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def rembg(fake, ledger, cap: str, key: str = "session:v") -> Paid:
    provider = get_provider("runware-rembg", api_key=TEST_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
    return Paid(provider, Payer(Policy(ledger, wait_s=30), (Account(key, Decimal(cap)),)))


@pytest.mark.parametrize("calls", [16, 60])
def test_a_raised_price_bills_at_most_the_cap_plus_one_call(ledger, calls, caplog):
    """On 3f93ebc 16 calls at once were all sent and billed $0.80 on a $0.10 cap, counted $0.0416."""
    with RunwareFake(costs={REMBG: RAISED}) as fake:
        got = burst(rembg(fake, ledger, "0.10"), calls)
    billed = Decimal(str(RAISED)) * posts(fake)
    assert posts(fake) == got.count("paid") == 1
    assert billed <= Decimal("0.10") + Decimal(str(RAISED))
    assert ledger.spent("session:v") == billed  # counted in full, as billed
    refusal = next(words for words in got if words != "paid")
    assert refusal == (
        "runware-rembg now reports $0.0500 per image, above the price we reserve ($0.0026); refused until the "
        "operator accepts it (RMBG_ACCEPT_PRICE=runware-rembg=0.05). Nothing was sent."
    )
    assert any(r.getMessage().endswith("RMBG_ACCEPT_PRICE=runware-rembg=0.05") for r in caplog.records)


def test_a_provider_priced_by_another_process_still_goes_alone_in_this_one(ledger):
    """The ledger knows runware-rembg's price (another process settled a call at $0.0013); this
    process has not confirmed it, so its first call goes alone and catches the raise."""
    held = ledger.reserve("runware-rembg", (Account("day:old"),), Decimal("0.0026"), probe=False)
    ledger.settle(held.id, Decimal("0.0013"))
    assert ledger.priced("runware-rembg")
    with RunwareFake(costs={REMBG: RAISED}) as fake:
        got = burst(rembg(fake, ledger, "0.10"), 16)
    assert posts(fake) == got.count("paid") == 1


def test_the_refusal_lasts_across_policies_until_the_operator_accepts_the_price(ledger, monkeypatch):
    with RunwareFake(costs={REMBG: RAISED}) as fake:
        burst(rembg(fake, ledger, "1"), 1)
        with pytest.raises(BudgetError, match="refused until the operator accepts it"):
            rembg(fake, ledger, "1", "session:other").matte(Image.new("RGB", (8, 8)))
        monkeypatch.setenv("RMBG_ACCEPT_PRICE", "runware-rembg=0.01")  # less than reported: still refused
        with pytest.raises(BudgetError, match="refused until the operator accepts it"):
            rembg(fake, ledger, "1", "session:other").matte(Image.new("RGB", (8, 8)))
        assert posts(fake) == 1
        monkeypatch.setenv("RMBG_ACCEPT_PRICE", "runware-rembg=0.05")
        # accepted: held at the new price's bound ($0.10 each), so 8 at once stay within $0.30
        got = burst(rembg(fake, ledger, "0.30", "session:after"), 8)
    assert 3 <= got.count("paid") == posts(fake) - 1 < 8
    assert ledger.spent("session:after") == Decimal("0.05") * got.count("paid") <= Decimal("0.30")


@pytest.mark.parametrize("reported", ["0.00294", "0.0031415", "12.505", "7"])
def test_the_setting_a_refusal_advises_accepts_the_price(ledger, monkeypatch, reported):
    """The advice quoted the price rounded as the sentence shows it ($0.0029 for $0.00294): below what was
    reported, so an operator who set exactly that stayed refused for ever."""
    with RunwareFake(costs={REMBG: float(reported)}) as fake:
        burst(rembg(fake, ledger, "100"), 1)
        with pytest.raises(BudgetError, match="refused until the operator accepts it") as refused:
            rembg(fake, ledger, "100", "session:other").matte(Image.new("RGB", (8, 8)))
        advice = re.search(r"\((RMBG_ACCEPT_PRICE)=(\S+)\)\. Nothing was sent\.$", str(refused.value))
        assert advice is not None and advice[2] == f"runware-rembg={reported}"
        monkeypatch.setenv(advice[1], advice[2])
        assert burst(rembg(fake, ledger, "100", "session:after"), 1) == ["paid"]
    assert posts(fake) == 2


def test_a_malformed_accepted_price_is_refused_with_a_sentence(ledger, monkeypatch):
    monkeypatch.setenv("RMBG_ACCEPT_PRICE", "runware-rembg")
    payment = Payment("runware-rembg", Decimal("0.0013"), (Account("day:x", Decimal("1")),))
    with pytest.raises(BudgetError, match="RMBG_ACCEPT_PRICE takes provider=USD pairs"):
        Policy(ledger).pay(payment, lambda: Decimal("0.0013"), lambda usd: usd)


def test_a_price_within_the_bound_confirms_and_runs_in_parallel(ledger, caplog):
    caplog.set_level(logging.WARNING)
    with RunwareFake(costs={REMBG: 0.0025}) as fake:  # within 2 x $0.0013
        got = burst(rembg(fake, ledger, "1"), 8)
    assert got == ["paid"] * 8 and posts(fake) == 8
    assert ledger.spent("session:v") == Decimal("0.02")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_several_providers_raised_at_once_pass_the_cap_by_one_call_at_most(ledger):
    """The Benchmark's case: three Runware models each raised to $0.20 ($0.002-$0.018 in the table),
    their first calls at once on a $0.30 day cap. On 3f93ebc every first call went together and
    the rest followed at the bound: $5.20 billed on the $0.30 cap."""
    models = {"runware-rembg": REMBG, "runware-bria": "bria:2@1", "runware-birefnet-massive": "runware:112@8"}
    day = (Account("day:bench", Decimal("0.30")),)
    with RunwareFake(costs={model: 0.20 for model in models.values()}) as fake:
        providers = [
            Paid(get_provider(pid, api_key=TEST_KEY, base_url=fake.url, retry=RetryPolicy.immediate()),
                 Payer(Policy(ledger, wait_s=30), day))
            for pid in models
        ]  # fmt: skip
        start = threading.Barrier(12)

        def one(paid: Paid) -> None:
            start.wait()
            try:
                paid.matte(Image.new("RGB", (24, 16), (200, 30, 30)))
            except BudgetError:
                pass

        threads = [threading.Thread(target=one, args=(providers[n % 3],)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    billed = Decimal("0.20") * posts(fake)
    assert billed <= Decimal("0.30") + Decimal("0.20")
    assert ledger.spent("day:bench") == billed


def test_an_unconfirmed_price_goes_one_call_at_a_time_per_vendor_image_and_video_alike(ledger, tmp_path):
    """fal.ai's first image call holds up a fal.ai clip (one key, one vendor that reprices its models
    together), not a Runware call; the clip's payment names its vendor (rmbg.video.hosted.payment_for)."""
    from rmbg.money.ledger import Hold, Wait
    from rmbg.providers.hosted.video_job import VideoJob
    from rmbg.video.hosted import payment_for
    from rmbg.video.providers import get_video_provider

    policy, cap = Policy(ledger), (Account("day:x", Decimal("5")),)
    fal_video, job = get_video_provider("fal-bria-video", api_key="k"), VideoJob(tmp_path, "video/mp4", 2, 2)
    clip = payment_for(fal_video, job, Payer(policy, cap))
    assert (clip.provider, clip.vendor) == ("fal-bria-video", "FAL_KEY")
    image = policy.try_reserve(Payment("fal-bria", Decimal("0.018"), cap))
    assert isinstance(image, Hold)
    assert policy.try_reserve(clip) == Wait("probe")
    assert isinstance(policy.try_reserve(Payment("runware-rembg", Decimal("0.0013"), cap)), Hold)  # another vendor
    policy.settle(image, Decimal("0.018"))  # fal-bria's price confirmed: the clip goes
    assert isinstance(policy.try_reserve(clip), Hold)
