"""remove-bg against the fake remove.bg API, over real sockets on 127.0.0.1:
the request it sends, what it costs (credits reported x USD per credit), and
what each documented error costs and whether it is sent again."""

from __future__ import annotations

import io
from decimal import Decimal

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import (
    InvalidRequestError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from rmbg.providers.hosted.removebg import RemoveBg
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.common import form_fields, simple_matte
from tests.fakes.fixtures import removebg_fake  # noqa: F401

KEY = "rbg-test-key"
PER_CREDIT = Decimal("0.23")  # the declared price of one credit (rmbg.registry)


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((16, 8, 48, 40), fill=(220, 30, 20))
    return img


def make(fake, sleeps=None, **config) -> RemoveBg:
    recorder = sleeps.append if sleeps is not None else (lambda s: None)
    return get_provider(
        "remove-bg", api_key=KEY, base_url=fake.url, retry=RetryPolicy.immediate(sleep=recorder), **config
    )


def assert_key_hidden(exc: Exception) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "excerpt", "")):
        assert KEY not in text


def test_one_multipart_post_with_the_documented_fields_and_the_reported_credits(removebg_fake, image):
    matte = make(removebg_fake).matte(image)

    (call,) = removebg_fake.calls
    assert (call.method, call.path) == ("POST", "/v1.0/removebg")
    assert call.headers["x-api-key"] == KEY and call.headers["content-type"].startswith("multipart/form-data")
    fields = form_fields(call)
    assert {k: v.text for k, v in fields.items() if k != "image_file"} == {
        "size": "full",
        "type": "auto",
        "format": "png",
        "channels": "rgba",
    }
    assert fields["image_file"].filename == "image.png"
    sent = Image.open(io.BytesIO(fields["image_file"].data))
    assert sent.format == "PNG" and np.array_equal(np.asarray(sent), np.asarray(image))

    assert matte.alpha.size == image.size
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    assert removebg_fake.credits_charged == 1
    assert matte.cost.usd == PER_CREDIT and matte.cost.source == "estimated"
    assert matte.cost.note == "1 credit charged (X-Credits-Charged) x $0.2300 per credit (estimated)"
    assert matte.meta == {
        "model": "remove.bg",
        "size": "full",
        "format": "png",
        "credits_charged": "1",
        "foreground_type": "product",
    }


def test_preview_costs_a_quarter_credit_and_is_scaled_up_to_the_input(removebg_fake):
    big = Image.new("RGB", (800, 600), (30, 160, 40))
    ImageDraw.Draw(big).rectangle((200, 150, 600, 450), fill=(220, 30, 20))
    provider = make(removebg_fake, size="preview")
    assert provider.estimate().usd == PER_CREDIT / 4

    matte = provider.matte(big)

    assert removebg_fake.credits_charged == Decimal("0.25")
    assert matte.cost.usd == PER_CREDIT / 4 and "0.25 credit charged" in matte.cost.note
    assert matte.alpha.size == (800, 600) and matte.meta["scaled_from"] == "577x433"
    alpha = np.asarray(matte.alpha)
    assert alpha[300, 400] == 255 and alpha[20, 20] == 0  # inside the subject, outside it


def test_price_per_credit_is_configurable(removebg_fake, image, monkeypatch):
    matte = make(removebg_fake, usd_per_credit="0.05").matte(image)
    assert matte.cost.usd == Decimal("0.05")
    monkeypatch.setenv("RMBG_REMOVEBG_USD_PER_CREDIT", "0.40")
    provider = make(removebg_fake, size="preview")
    assert provider.estimate().usd == Decimal("0.10")
    assert "0.25 credit x $0.4000 per credit" in provider.estimate().note
    monkeypatch.setenv("RMBG_REMOVEBG_USD_PER_CREDIT", "cheap")
    with pytest.raises(InvalidRequestError, match="RMBG_REMOVEBG_USD_PER_CREDIT"):
        make(removebg_fake)
    with pytest.raises(InvalidRequestError, match="remove.bg size must be one of preview, full, auto"):
        make(removebg_fake, usd_per_credit="1", size="hd")


def test_insufficient_credits_is_one_request_and_nothing_charged(removebg_fake, image):
    removebg_fake.inject("insufficient-credits")
    with pytest.raises(ProviderCreditError, match=r"HTTP 402: Insufficient credits \(insufficient_credits\)") as err:
        make(removebg_fake).matte(image)
    assert len(removebg_fake.calls) == 1 and removebg_fake.credits_charged == 0
    assert_key_hidden(err.value)


def test_rate_limit_is_sent_again_and_billed_once(removebg_fake, image):
    removebg_fake.inject("rate-limit", retry_after="2")
    sleeps: list[float] = []
    matte = make(removebg_fake, sleeps).matte(image)
    assert len(removebg_fake.calls) == 2 and sleeps == [2.0]  # Retry-After honoured
    assert removebg_fake.credits_charged == 1 and matte.cost.usd == PER_CREDIT


def test_a_lasting_rate_limit_names_the_reset_from_its_headers(removebg_fake, image):
    removebg_fake.inject("rate-limit", times=3)
    with pytest.raises(ProviderRateLimitError, match=r"rate_limit_exceeded.*The limit resets in (59|60) s"):
        make(removebg_fake).matte(image)
    assert len(removebg_fake.calls) == 3 and removebg_fake.credits_charged == 0


@pytest.mark.parametrize("fault", ["server-error", "bad-gateway", "drop"])
def test_a_request_that_may_have_been_processed_is_never_sent_again(removebg_fake, image, fault):
    removebg_fake.inject(fault, times=3)
    with pytest.raises(ProviderUnavailableError, match="may have reached the provider and been billed") as err:
        make(removebg_fake).matte(image)
    assert len(removebg_fake.calls) == 1
    assert_key_hidden(err.value)


def test_rejected_image_and_wrong_key_carry_remove_bg_reason(removebg_fake, image):
    removebg_fake.inject("unknown-foreground")
    with pytest.raises(ProviderRejectedError, match=r"Could not identify foreground in image \(unknown_foreground\)"):
        make(removebg_fake).matte(image)
    provider = get_provider(
        "remove-bg", api_key="rbg-wrong-key-123", base_url=removebg_fake.url, retry=RetryPolicy.immediate()
    )
    with pytest.raises(
        ProviderAuthError,
        match=r"API key was rejected \(HTTP 403: Invalid API Key \(auth_failed\)\)\. Check the key you entered",
    ) as err:
        provider.matte(image)
    assert "rbg-wrong-key-123" not in str(err.value)
    assert len(removebg_fake.calls) == 2 and removebg_fake.credits_charged == 0


def test_a_success_without_the_credits_header_is_costed_at_the_size_price(removebg_fake, image):
    removebg_fake.inject("no-credits-header")
    matte = make(removebg_fake).matte(image)
    assert matte.cost.usd == PER_CREDIT and matte.cost.source == "estimated"
    assert matte.cost.note.startswith("no X-Credits-Charged header") and matte.meta["credits_charged"] == "unknown"


@pytest.mark.parametrize("fault", ["not-image", "json-200"])
def test_a_billed_answer_that_is_no_image_is_refused(removebg_fake, image, fault):
    removebg_fake.inject(fault)
    with pytest.raises(ProviderResponseError):
        make(removebg_fake).matte(image)
    assert len(removebg_fake.calls) == 1 and removebg_fake.credits_charged == 1  # billed: counted, not re-sent


def test_the_fake_follows_the_documented_api(removebg_fake, image):
    """Sources, enumerations and the JSON answer, as remove.bg documents them."""
    png = io.BytesIO()
    image.save(png, format="PNG")
    headers = {"X-Api-Key": KEY}
    with httpx.Client(base_url=removebg_fake.url, headers=headers) as http:
        none = http.post("/v1.0/removebg", data={"size": "full"})
        both = http.post(
            "/v1.0/removebg", data={"image_url": "https://x.test/a.png"}, files={"image_file": png.getvalue()}
        )
        bad = http.post("/v1.0/removebg", data={"size": "huge"}, files={"image_file": png.getvalue()})
        removebg_fake.url_images["https://x.test/a.png"] = png.getvalue()
        as_json = http.post(
            "/v1.0/removebg",
            json={"image_url": "https://x.test/a.png", "size": "preview"},
            headers={"Accept": "application/json"},
        )
        keyless = httpx.post(f"{removebg_fake.url}/v1.0/removebg", files={"image_file": png.getvalue()})
    assert [r.status_code for r in (none, both, bad, keyless)] == [400, 400, 400, 403]
    assert [r.json()["errors"][0]["code"] for r in (none, both, bad)] == [
        "missing_source",
        "multiple_sources",
        "invalid_size",
    ]
    assert keyless.json()["errors"][0]["title"] == "Missing API Key"
    assert as_json.status_code == 200 and as_json.headers["x-credits-charged"] == "0.25"
    assert set(as_json.json()["data"]) == {
        "result_b64",
        "foreground_top",
        "foreground_left",
        "foreground_width",
        "foreground_height",
    }
    assert removebg_fake.credits_charged == Decimal("0.25")  # only the success was charged


def test_only_a_scaled_down_copy_of_the_input_is_scaled_up():
    from rmbg.providers.hosted.payload import fitted_alpha

    def png(size) -> bytes:
        buf = io.BytesIO()
        Image.new("RGBA", size, (255, 0, 0, 128)).save(buf, format="PNG")
        return buf.getvalue()

    alpha, scaled_from = fitted_alpha(png((400, 300)), (800, 600), "remove-bg")
    assert alpha.size == (800, 600) and scaled_from == (400, 300) and alpha.getextrema() == (128, 128)
    assert fitted_alpha(png((800, 600)), (800, 600), "remove-bg")[1] is None
    for wrong in ((400, 400), (801, 601), (1600, 1200)):  # another shape, or larger than the input
        with pytest.raises(ProviderResponseError, match="image for a 800x600 input"):
            fitted_alpha(png(wrong), (800, 600), "remove-bg")
