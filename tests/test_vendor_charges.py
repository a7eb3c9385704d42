"""Where each answer of remove.bg and Photoroom leaves the money (the charge
state machine, rmbg.money.charging), counted at their fakes: what is never sent,
refused and released, possibly billed and kept, or accepted and billed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image

from rmbg.errors import MissingCredentialsError, RmbgError
from rmbg.money.charging import Charge, metered
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from rmbg.types import format_usd
from tests.fakes.common import refused_url
from tests.fakes.photoroom import TEST_KEY as PHOTOROOM_KEY
from tests.fakes.photoroom import PhotoroomFake
from tests.fakes.removebg import TEST_KEY as REMOVEBG_KEY
from tests.fakes.removebg import RemoveBgFake

VENDORS = {"remove-bg": (RemoveBgFake, REMOVEBG_KEY), "photoroom": (PhotoroomFake, PHOTOROOM_KEY)}
# (fault, times, charge after the call, requests that reached the fake); the
# fault names are the same in both fakes except the credit error.
CASES = [
    (None, 0, Charge.ACCEPTED, 1),
    ("credit", 1, Charge.REFUSED, 1),  # 402: the vendor's refusal, documented as free
    ("rate-limit", 3, Charge.REFUSED, 3),  # refused each time: sent again, then given up
    ("server-error", 1, Charge.UNKNOWN, 1),  # a 5xx may come after processing: kept, never re-sent
    ("bad-gateway", 1, Charge.UNKNOWN, 1),
    ("drop", 1, Charge.UNKNOWN, 1),  # the request left, no answer came back
    ("not-image", 1, Charge.ACCEPTED, 1),  # a 2xx is billed even when its body is unusable
]
CREDIT_FAULT = {"remove-bg": "insufficient-credits", "photoroom": "credits-exhausted"}


def billed(fake) -> Decimal:
    return fake.credits_charged if isinstance(fake, RemoveBgFake) else Decimal(fake.images_billed)


def charge_of(provider, image) -> tuple[Charge, Exception | None]:
    with metered() as meter:
        try:
            provider.matte(image)
        except RmbgError as exc:
            return meter.state, exc
    return meter.state, None


@pytest.mark.parametrize("provider_id", list(VENDORS))
@pytest.mark.parametrize("fault, times, charge, sent", CASES)
def test_each_answer_moves_the_charge_where_the_vendor_documents_it(provider_id, fault, times, charge, sent):
    kind, key = VENDORS[provider_id]
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    with kind() as fake:
        if fault:
            fake.inject(CREDIT_FAULT[provider_id] if fault == "credit" else fault, times=times)
        provider = get_provider(provider_id, api_key=key, base_url=fake.url, retry=RetryPolicy.immediate())
        state, error = charge_of(provider, image)
        assert (state, len(fake.calls)) == (charge, sent)
        assert billed(fake) == (1 if charge is Charge.ACCEPTED else 0)  # the fake billed what the meter says
    if charge is Charge.UNKNOWN:
        assert "may have reached the provider and been billed" in str(error)
    if fault == "not-image":
        assert "accepted the request and may bill it" in str(error)
    if charge is Charge.REFUSED:
        assert "billed" not in str(error)


@pytest.mark.parametrize("provider_id", list(VENDORS))
def test_nothing_sent_costs_nothing(provider_id, monkeypatch):
    kind, key = VENDORS[provider_id]
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    unreachable = get_provider(provider_id, api_key=key, base_url=refused_url(), retry=RetryPolicy.immediate())
    assert charge_of(unreachable, image)[0] is Charge.NOT_SENT
    for env in ("REMOVEBG_API_KEY", "PHOTOROOM_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    with metered() as meter, pytest.raises(MissingCredentialsError):
        get_provider(provider_id, base_url=refused_url()).matte(image)
    assert meter.state is Charge.NOT_SENT


def test_remove_bg_credits_beyond_the_bound_are_kept_in_full(caplog):
    """A vendor reporting 1000 credits for one image: billed, so kept in full (rmbg.money.paying refuses
    remove-bg after it), logged."""
    with RemoveBgFake(report="1000") as fake:
        provider = get_provider("remove-bg", api_key=REMOVEBG_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
        matte = provider.matte(Image.new("RGB", (40, 30), (200, 30, 30)))
    assert matte.cost.usd == 1000 * provider.estimate().usd
    assert "beyond 2x the price" in matte.cost.note
    assert any("beyond 2x its price" in r.getMessage() for r in caplog.records)


def test_remove_bg_credits_of_an_impossible_amount_count_at_the_bound(caplog):
    """1e999 credits is no price: counted at the bound, printable, never called reported."""
    with RemoveBgFake(report="1e999") as fake:
        provider = get_provider("remove-bg", api_key=REMOVEBG_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
        matte = provider.matte(Image.new("RGB", (40, 30), (200, 30, 30)))
    price = provider.estimate().usd
    assert matte.cost.usd == 2 * price  # RMBG_PRICE_BOUND_X's default
    assert "impossible" in matte.cost.note and f"${format_usd(2 * price)}" in matte.cost.label()


def test_remove_bg_credits_within_the_bound_count_in_full():
    with RemoveBgFake(report="1.5") as fake:
        provider = get_provider("remove-bg", api_key=REMOVEBG_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
        matte = provider.matte(Image.new("RGB", (40, 30), (200, 30, 30)))
    assert matte.cost.usd == Decimal("1.5") * provider.estimate().usd
