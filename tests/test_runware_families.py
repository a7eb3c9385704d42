"""Runware's error codes read by family, as runware-sdk sorts them (issue 57, item 8): a refusal
of the key, the balance or the content is released (not billed) and worded for what it is; a
failure on Runware's side is kept as "may have been billed". On 3f93ebc the codes below that were
not in rmbg's exact list kept their hold, and a content refusal said "Try again later"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image

from rmbg.errors import (
    ProviderAuthError,
    ProviderCreditError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.payer import Paid, Payer
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.providers.hosted.runware_errors import family
from rmbg.registry import get_provider
from tests.fakes.runware import TASK_CODES, TEST_KEY, RunwareFake

REFUSALS = [
    ("content-policy", ProviderRejectedError, "content policy"),
    ("sensitive", ProviderRejectedError, "content policy"),
    ("image-blocked", ProviderRejectedError, "content policy"),
    ("token-expired", ProviderAuthError, "the API key was rejected"),
    ("account-suspended", ProviderAuthError, "the API key was rejected"),
    ("revoked-key", ProviderAuthError, "the API key was rejected"),
    ("low-balance", ProviderCreditError, "out of credit"),
    ("monthly-quota", ProviderCreditError, "out of credit"),
]


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    yield opened
    opened.close()


def paid(fake, ledger) -> Paid:
    provider = get_provider("runware-bria", api_key=TEST_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
    return Paid(provider, Payer(Policy(ledger), (Account("session:r", Decimal("1")),)))


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize("fault, error, words", REFUSALS)
def test_a_refusal_is_released_and_worded_for_what_it_is(ledger, fault, error, words, status):
    with RunwareFake(task_error_status=status) as fake:
        fake.inject(fault)
        with pytest.raises(error, match=words) as info:
            paid(fake, ledger).matte(Image.new("RGB", (16, 16), (200, 30, 30)))
        assert len(fake.calls) == 1  # never sent again
    assert TASK_CODES[fault][0] in str(info.value)
    assert "Try again later" not in str(info.value) and "may have been billed" not in str(info.value)
    assert [h.state for h in ledger.holds(None)] == ["released"] and ledger.spent("session:r") == 0


@pytest.mark.parametrize("fault", ["no-server", "model-unavailable"])
def test_a_failure_on_runwares_side_may_have_been_billed(ledger, fault):
    with RunwareFake() as fake:
        fake.inject(fault)
        with pytest.raises(ProviderUnavailableError, match="Try again later") as info:
            paid(fake, ledger).matte(Image.new("RGB", (16, 16), (200, 30, 30)))
    assert "may have been billed" in str(info.value) or "not sent again" in str(info.value)
    assert [h.state for h in ledger.holds(None)] == ["settled"] and ledger.spent("session:r") == Decimal("0.018")


@pytest.mark.parametrize(
    "code, kind",
    [
        ("forbidden", "auth"), ("authenticationFailed", "auth"), ("invalidCredentials", "auth"),
        ("expiredApiKey", "auth"), ("insufficientCredits", "quota"), ("quotaExceeded", "quota"),
        ("lowBalance", "quota"), ("paymentRequired", "quota"), ("providerContentPolicyViolation", "safety"),
        ("unsafeContentDetected", "safety"), ("moderationFailed", "safety"), ("nsfwContentDetected", "safety"),
        ("processingFailed", "provider"), ("taskFailed", "provider"), ("uploadFailed", "provider"),
        ("providerError", "provider"), ("internalServerError", "serverError"), ("timeoutProvider", "timeout"),
        ("rateLimitExceeded", "rateLimit"), ("invalidImage", "validation"), ("somethingNew", None),
    ],
)  # fmt: skip
def test_codes_are_sorted_into_the_sdks_families(code, kind):
    assert family(code) == kind
