"""photoroom against the fake Photoroom API, over real sockets on 127.0.0.1:
the request, the price per successful image, and what each error costs."""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import (
    InvalidRequestError,
    MissingCredentialsError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from rmbg.providers.hosted.photoroom import Photoroom
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.common import form_fields, simple_matte
from tests.fakes.fixtures import photoroom_fake  # noqa: F401

KEY = "pr-test-key"


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((16, 8, 48, 40), fill=(220, 30, 20))
    return img


def make(fake, sleeps=None, **config) -> Photoroom:
    recorder = sleeps.append if sleeps is not None else (lambda s: None)
    return get_provider(
        "photoroom", api_key=KEY, base_url=fake.url, retry=RetryPolicy.immediate(sleep=recorder), **config
    )


def test_one_multipart_post_and_the_price_of_one_image(photoroom_fake, image):
    matte = make(photoroom_fake).matte(image)

    (call,) = photoroom_fake.calls
    assert (call.method, call.path, call.headers["x-api-key"]) == ("POST", "/v1/segment", KEY)
    fields = form_fields(call)
    assert {k: v.text for k, v in fields.items() if k != "image_file"} == {
        "size": "full",
        "format": "png",
        "channels": "rgba",
    }
    sent = Image.open(io.BytesIO(fields["image_file"].data))
    assert sent.format == "PNG" and np.array_equal(np.asarray(sent), np.asarray(image))
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    assert photoroom_fake.images_billed == 1
    assert matte.cost.usd == Decimal("0.02") and matte.cost.source == "estimated"
    assert matte.cost.note == "price table; Photoroom reports no cost"
    assert matte.meta == {"model": "Photoroom Remove Background", "size": "full"}


def test_preview_is_scaled_up_and_costed_at_its_quarter_credit(photoroom_fake):
    big = Image.new("RGB", (1000, 500), (30, 160, 40))
    ImageDraw.Draw(big).rectangle((300, 100, 700, 400), fill=(220, 30, 20))
    provider = make(photoroom_fake, size="preview")
    assert provider.estimate().usd == Decimal("0.005")  # 0.25 credit x $0.02 (Photoroom's FAQ)
    matte = provider.matte(big)
    assert matte.alpha.size == (1000, 500) and matte.meta["scaled_from"] == "707x353"
    assert matte.cost.usd == Decimal("0.005") and photoroom_fake.images_billed == Decimal("0.25")
    assert matte.cost.note == "preview: 0.25 credit x $0.0200 per image; Photoroom reports no cost"
    assert np.asarray(matte.alpha)[250, 500] == 255


def test_price_per_image_is_configurable(photoroom_fake, image, monkeypatch):
    assert make(photoroom_fake, usd_per_image="0.015").matte(image).cost.usd == Decimal("0.015")
    monkeypatch.setenv("RMBG_PHOTOROOM_USD_PER_IMAGE", "0.1")
    assert make(photoroom_fake).estimate().usd == Decimal("0.1")
    preview = make(photoroom_fake, size="preview").estimate()
    assert preview.usd == Decimal("0.025") and preview.note == "preview: 0.25 credit x $0.1000 per image (configured)"
    monkeypatch.setenv("RMBG_PHOTOROOM_USD_PER_IMAGE", "-1")
    with pytest.raises(InvalidRequestError, match="RMBG_PHOTOROOM_USD_PER_IMAGE"):
        make(photoroom_fake)


def test_credits_exhausted_reads_the_documented_body_and_costs_nothing(photoroom_fake, image):
    photoroom_fake.inject("credits-exhausted")
    with pytest.raises(ProviderCreditError, match="HTTP 402: API credits exhausted"):
        make(photoroom_fake).matte(image)
    assert len(photoroom_fake.calls) == 1 and photoroom_fake.images_billed == 0


def test_rate_limit_is_sent_again_and_billed_once(photoroom_fake, image):
    photoroom_fake.inject("rate-limit", times=2, retry_after="1")
    sleeps: list[float] = []
    make(photoroom_fake, sleeps).matte(image)
    assert len(photoroom_fake.calls) == 3 and sleeps == [1.0, 1.0] and photoroom_fake.images_billed == 1


@pytest.mark.parametrize("fault", ["server-error", "bad-gateway", "drop"])
def test_a_request_that_may_have_been_processed_is_never_sent_again(photoroom_fake, image, fault):
    photoroom_fake.inject(fault, times=3)
    with pytest.raises(ProviderUnavailableError, match="may have reached the provider and been billed"):
        make(photoroom_fake).matte(image)
    assert len(photoroom_fake.calls) == 1


def test_wrong_or_missing_key(photoroom_fake, image, monkeypatch):
    wrong = get_provider(
        "photoroom", api_key="pr-wrong-key-456", base_url=photoroom_fake.url, retry=RetryPolicy.immediate()
    )
    with pytest.raises(ProviderAuthError, match="HTTP 403: Invalid API key") as err:
        wrong.matte(image)
    assert "pr-wrong-key-456" not in str(err.value) and "pr-wrong-key-456" not in err.value.excerpt
    monkeypatch.delenv("PHOTOROOM_API_KEY", raising=False)
    keyless = get_provider("photoroom", base_url=photoroom_fake.url)
    assert keyless.status().state == "needs_key" and "PHOTOROOM_API_KEY" in keyless.status().message
    with pytest.raises(MissingCredentialsError, match="PHOTOROOM_API_KEY"):
        keyless.matte(image)
    assert len(photoroom_fake.calls) == 1 and photoroom_fake.images_billed == 0


@pytest.mark.parametrize("fault", ["not-image", "json-200"])
def test_an_answer_that_is_no_image_is_refused_and_not_sent_again(photoroom_fake, image, fault):
    photoroom_fake.inject(fault)
    with pytest.raises(ProviderResponseError):
        make(photoroom_fake).matte(image)
    assert len(photoroom_fake.calls) == 1 and photoroom_fake.images_billed == 1
