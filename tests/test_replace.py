"""Background replacement (fal-bria-replace, rmbg.replace_background, `rmbg replace`)
against the fake fal queue, over real sockets on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import io
from decimal import Decimal

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

import rmbg
from rmbg import registry
from rmbg.errors import (
    InvalidImageError,
    InvalidRequestError,
    MissingCredentialsError,
    ProviderAuthError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnknownProviderError,
)
from rmbg.money.pricing import price_table
from rmbg.providers.base import ProviderStatus, Replacer
from rmbg.providers.hosted.fal_replace import FalBriaReplace
from rmbg.providers.hosted.payload import png_data_uri
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.types import Cost, Generated
from tests.fakes.common import encode
from tests.fakes.fal import FalFake
from tests.fakes.fal_replace import FAKE_SEED, expected_image
from tests.fakes.fixtures import fal_fake  # noqa: F401

KEY = "fal-test-id:fal-test-secret"
ENDPOINT = "/fal-ai/bria/background/replace"
PRICE = Decimal("0.04")


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((16, 8, 48, 40), fill=(220, 30, 20))
    return img


@pytest.fixture
def ref() -> Image.Image:
    img = Image.new("RGB", (20, 10), (200, 180, 90))
    ImageDraw.Draw(img).rectangle((0, 0, 9, 9), fill=(20, 40, 160))
    return img


def make(fake, sleeps=None, key=KEY, client=None, **policy) -> FalBriaReplace:
    recorder = sleeps.append if sleeps is not None else (lambda s: None)
    return FalBriaReplace(
        api_key=key, base_url=fake.url, client=client, retry=RetryPolicy.immediate(sleep=recorder, **policy)
    )


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def posts(fake) -> list:
    return [c for c in fake.calls if c.method == "POST"]


# --- the request fal receives, and what comes back ------------------------------------------------


def test_a_prompt_request_sends_exactly_the_schema_fields(fal_fake, image):
    result = rmbg.replace_background(image, prompt="  a sunlit beach  ", provider=make(fal_fake))

    submit, *polls, answer = fal_fake.calls
    assert (submit.method, submit.path, submit.query) == ("POST", ENDPOINT, {})
    assert submit.headers["authorization"] == f"Key {KEY}" and submit.headers["content-type"] == "application/json"
    assert submit.json() == {
        "image_url": png_data_uri(image),
        "prompt": "a sunlit beach",
        "negative_prompt": "",
        "refine_prompt": True,
        "original_quality": True,
        "num_images": 1,
        "sync_mode": True,
    }
    rid = result.meta["request_id"]
    assert [(c.method, c.path, c.query) for c in polls] == [
        ("GET", f"/fal-ai/bria/requests/{rid}/status", {"logs": ["0"]})
    ] * 2
    assert (answer.method, answer.path) == ("GET", f"/fal-ai/bria/requests/{rid}")

    assert len(result.images) == 1 and same(result.images[0], expected_image(image, "a sunlit beach"))
    assert result.seed == FAKE_SEED and result.provider == "fal-bria-replace"
    assert result.cost == Cost(PRICE, "estimated", "price table")
    assert result.meta == {
        "model": "Bria background replace",
        "endpoint": "fal-ai/bria/background/replace",
        "request_id": rid,
        "original_quality": "true",
        "seed_source": "provider",
    }
    assert result.seconds > 0


def test_the_images_come_back_at_the_inputs_size_and_fast_is_never_sent(fal_fake):
    """Bria V2 on fal returns about 1 MP unless original_quality (the fake does so too) and ignores
    the deprecated `fast`: a 1600x1000 photo comes back 1600x1000; fast=False warns and is not sent."""
    photo = Image.new("RGB", (1600, 1000), (40, 90, 160))
    ImageDraw.Draw(photo).ellipse((500, 200, 1100, 900), fill=(230, 200, 40))
    with pytest.warns(DeprecationWarning, match="fast=...\\) is ignored"):
        result = rmbg.replace_background(photo, prompt="a studio", fast=False, provider=make(fal_fake))
    (body,) = [c.json() for c in posts(fal_fake)]
    assert "fast" not in body and body["original_quality"] is True
    assert [img.size for img in result.images] == [(1600, 1000)]


def test_a_reference_request_with_every_option(fal_fake, image, ref):
    result = rmbg.replace_background(
        image,
        ref_image=ref,
        negative_prompt="people",
        seed=7,
        num_images=3,
        refine_prompt=False,
        provider=make(fal_fake),
    )
    assert posts(fal_fake)[0].json() == {
        "image_url": png_data_uri(image),
        "ref_image_url": png_data_uri(ref),
        "negative_prompt": "people",
        "refine_prompt": False,
        "original_quality": True,
        "num_images": 3,
        "sync_mode": True,
        "seed": 7,
    }
    assert [same(img, expected_image(image, "", ref, 7, k)) for k, img in enumerate(result.images)] == [True] * 3
    assert result.seed == 7 and result.meta["original_quality"] == "true"
    assert result.cost == Cost(PRICE * 3, "estimated", "3 x $0.0400 per image, price table")


def test_inputs_go_through_the_loader_and_are_sent_as_rgb(fal_fake, tmp_path):
    rgba = Image.new("RGBA", (6, 4), (10, 20, 30, 128))
    path = tmp_path / "in.png"
    rgba.save(path)
    rmbg.replace_background(str(path), prompt="x", provider=make(fal_fake))
    assert posts(fal_fake)[0].json()["image_url"] == png_data_uri(rgba.convert("RGB"))


def test_file_url_results_are_downloaded_without_the_key(image):
    with FalFake(file_urls=True) as fake:
        result = rmbg.replace_background(image, prompt="a forest", num_images=2, provider=make(fake))
        downloads = [c for c in fake.calls if c.path.startswith("/files/")]
    rid = result.meta["request_id"]
    assert [(c.method, c.path) for c in downloads] == [("GET", f"/files/{rid}-0.png"), ("GET", f"/files/{rid}-1.png")]
    assert all("authorization" not in c.headers for c in downloads)
    assert [
        same(img, expected_image(image, "a forest", None, FAKE_SEED, k)) for k, img in enumerate(result.images)
    ] == [True, True]


@pytest.mark.parametrize("num_images", [1, 2, 3, 4])
def test_cost_is_the_price_times_the_images_asked_for(fal_fake, image, num_images):
    result = rmbg.replace_background(image, prompt="snow", num_images=num_images, provider=make(fal_fake))
    assert len(result.images) == num_images
    assert result.cost.usd == PRICE * num_images == rmbg.replace_estimate(num_images).usd
    assert result.cost.source == "estimated"


def test_key_and_host_from_the_environment_through_the_provider_id(fal_fake, image, monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal_fake.url)
    fal_fake.polls_before_done = 0  # COMPLETED at the first poll: no waiting with the default policy
    result = rmbg.replace_background(image, prompt="a desk")
    assert result.provider == "fal-bria-replace" and fal_fake.calls[0].headers["authorization"] == f"Key {KEY}"


def test_key_argument_is_the_key_sent_and_hidden_when_wrong(fal_fake, image, monkeypatch):
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal_fake.url)
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(ProviderAuthError) as info:
        rmbg.replace_background(image, prompt="a desk", key="wrong-id:wrong-secret-value")
    assert str(info.value).endswith("Check the key you entered.") and "wrong-secret-value" not in str(info.value)
    assert fal_fake.calls[0].headers["authorization"] == "Key wrong-id:wrong-secret-value" and len(fal_fake.calls) == 1


# --- everything is checked before anything is sent ----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (
            dict(prompt="a beach", ref_image="REF"),
            "Give either a prompt or a reference image for the new background, not both",
        ),
        (dict(), "Give a prompt (the new background in words) or a reference image; neither was given."),
        (dict(prompt=""), "The prompt is empty"),
        (dict(prompt=" \n\t "), "The prompt is empty"),
        (dict(prompt=42), "The prompt must be text, got int."),
        (dict(prompt="x", seed=-1), "seed must be a whole number from 0 to 2147483647 (or None), got -1."),
        (dict(prompt="x", seed=2147483648), "got 2147483648."),
        (dict(prompt="x", seed=1.5), "got 1.5."),
        (dict(prompt="x", seed=True), "got True."),
        (dict(prompt="x", seed="3"), "got '3'."),
        (dict(prompt="x", num_images=0), "num_images must be a whole number from 1 to 4, got 0."),
        (dict(prompt="x", num_images=5), "got 5."),
        (dict(prompt="x", num_images=True), "got True."),
        (dict(prompt="x", num_images=2.0), "got 2.0."),
        (dict(prompt="x", negative_prompt=None), "The negative prompt must be text, got NoneType."),
        (dict(prompt="x", refine_prompt=1), "refine_prompt must be True or False, got 1."),
    ],
)
def test_invalid_arguments_send_nothing(fal_fake, image, ref, kwargs, words):
    if kwargs.get("ref_image") == "REF":
        kwargs["ref_image"] = ref
    with pytest.raises(InvalidRequestError) as info:
        rmbg.replace_background(image, provider=make(fal_fake), **kwargs)
    assert words in str(info.value)
    assert fal_fake.calls == []


def test_image_limits_are_the_loaders_and_send_nothing(fal_fake, image, ref, monkeypatch):
    provider = make(fal_fake)
    with pytest.raises(InvalidImageError, match=r"64x48 = 0\.0 MP, over the limit"):
        rmbg.replace_background(image, prompt="x", provider=provider, max_pixels=64 * 48 - 1)
    with pytest.raises(InvalidImageError, match=r"20x10 = 0\.0 MP, over the limit"):  # the reference too
        rmbg.replace_background(image.resize((8, 8)), ref_image=ref, provider=provider, max_pixels=100)
    monkeypatch.setenv("RMBG_MAX_PIXELS", "150")
    with pytest.raises(InvalidImageError, match="over the limit"):
        rmbg.replace_background(image.resize((8, 8)), ref_image=ref, provider=provider)
    with pytest.raises(InvalidImageError, match="not an image we can read"):
        rmbg.replace_background(b"not an image", prompt="x", provider=provider)
    with pytest.raises(InvalidImageError, match=r"^The image is empty \(0 bytes\)\.$"):
        rmbg.replace_background(image.resize((8, 8)), ref_image=b"", provider=provider)
    assert fal_fake.calls == []


def test_a_missing_key_sends_nothing(fal_fake, image, monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="FAL_KEY"):
        rmbg.replace_background(image, prompt="x", provider=make(fal_fake, key=None))
    assert fal_fake.calls == []


@pytest.mark.parametrize(
    "provider, key, error, words",
    [
        (
            "nope",
            None,
            UnknownProviderError,
            "'nope' is not a background replacer. Background replacers: fal-bria-replace.",
        ),
        ("fal-bria", None, UnknownProviderError, "'fal-bria' is a removal provider, not a background replacer."),
        ("OBJECT", "k", InvalidRequestError, "key= goes with a provider id"),
        ("REMOVER", None, InvalidRequestError, "'fal-bria' is not a background replacer."),
    ],
)
def test_wrong_providers_send_nothing(fal_fake, image, provider, key, error, words):
    if provider == "OBJECT":
        provider = make(fal_fake)
    elif provider == "REMOVER":
        provider = rmbg.get_provider("fal-bria", api_key=KEY, base_url=fal_fake.url)
    with pytest.raises(error) as info:
        rmbg.replace_background(image, prompt="x", provider=provider, key=key)
    assert words in str(info.value)
    assert fal_fake.calls == []


# --- faults: retries and never paying twice -------------------------------------------------------------


@pytest.mark.parametrize("fault", ["rate-limit", "server-error", "unavailable", "ingress"])
def test_a_submit_refused_unbilled_is_sent_again(fal_fake, image, fault):
    sleeps: list[float] = []
    fal_fake.inject(fault, op="submit", times=2)
    result = rmbg.replace_background(image, prompt="x", provider=make(fal_fake, sleeps, max_attempts=3))
    assert len(posts(fal_fake)) == 3 and len(fal_fake.jobs) == 1  # two refusals (429 / fal's unbilled 5xx), one job
    assert sleeps == [0.0, 0.0, 0.0] and len(result.images) == 1


@pytest.mark.parametrize("op", ["status", "result"])
@pytest.mark.parametrize("fault", ["rate-limit", "server-error", "drop"])
def test_polls_and_results_are_asked_again(fal_fake, image, op, fault):
    fal_fake.inject(fault, op=op, times=2)
    result = rmbg.replace_background(image, prompt="x", provider=make(fal_fake, max_attempts=3))
    assert len(posts(fal_fake)) == 1 and same(result.images[0], expected_image(image, "x"))


def test_rate_limited_to_the_end_is_a_rate_limit_error(fal_fake, image):
    fal_fake.inject("rate-limit", op="submit", times=10)
    with pytest.raises(ProviderRateLimitError, match="after 3 attempts") as info:
        rmbg.replace_background(image, prompt="x", provider=make(fal_fake, max_attempts=3))
    assert info.value.status == 429 and len(posts(fal_fake)) == 3 and fal_fake.jobs == {}


def test_a_dropped_submit_is_never_sent_again_and_may_have_been_billed(fal_fake, image):
    fal_fake.inject("drop", op="submit", times=10)
    with pytest.raises(ProviderUnavailableError) as info:
        rmbg.replace_background(image, prompt="x", provider=make(fal_fake, max_attempts=4))
    assert str(info.value) == (
        "fal-bria-replace: dropped the connection after our request was sent "
        "(the server closed the connection without a complete answer). "
        "It may have reached the provider and been billed, so it was not sent again. "
        "$0.0400 was counted against the spending caps for it."
    )
    assert len(fal_fake.calls) == 1


def test_a_submit_that_times_out_is_never_sent_again(image):
    client = httpx.Client(timeout=httpx.Timeout(0.25))
    with FalFake() as fake:
        fake.inject("slow", op="submit", times=3, delay=5)
        with pytest.raises(ProviderTimeoutError) as info:
            rmbg.replace_background(image, prompt="x", provider=make(fake, client=client))
        assert len(fake.calls) == 1
    client.close()
    assert "did not answer in time (the answer took too long)" in str(
        info.value
    ) and "may have reached the provider and been billed" in str(info.value)


def test_the_deadline_cancels_the_queued_request(image):
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(deadline_s=2.0, poll_interval=0.5, max_poll_interval=0.5, sleep=sleep, clock=lambda: now[0])
    with FalFake(polls_before_done=10**6) as fake:
        with pytest.raises(ProviderTimeoutError, match="timed out after 2 s waiting in fal's queue") as info:
            rmbg.replace_background(
                image, prompt="x", provider=FalBriaReplace(api_key=KEY, base_url=fake.url, retry=policy)
            )
        cancel = fake.calls[-1]
        job = next(iter(fake.jobs.values()))
    assert cancel.method == "PUT" and cancel.path.endswith("/cancel") and job.cancelled
    assert cancel.path.split("/")[-2] in str(info.value) and sleeps == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    "fault, op, error, words",
    [
        ("invalid", "submit", ProviderRejectedError, "image_url: Image is too large (image_too_large)"),
        ("failed", "submit", ProviderRejectedError, "Unprocessable image (image_load_error)"),
        ("locked", "submit", rmbg.errors.ProviderCreditError, "Exhausted balance"),
        ("missing-field", "result", ProviderResponseError, "the result has no images."),
        ("not-image", "result", ProviderResponseError, "returned an unusable image (1 of 2)"),
        ("wrong-type", "result", ProviderResponseError, "returned a text/html file where an image was expected."),
        ("not-json", "result", ProviderResponseError, "the result is not JSON"),
    ],
)
def test_errors_are_not_retried_and_say_why(fal_fake, image, fault, op, error, words):
    sleeps: list[float] = []
    fal_fake.inject(fault, op=op, times=5)
    with pytest.raises(error) as info:
        rmbg.replace_background(image, prompt="x", num_images=2, provider=make(fal_fake, sleeps))
    assert words in str(info.value)
    assert len(posts(fal_fake)) == 1
    assert KEY not in str(info.value) + getattr(info.value, "excerpt", "")


class StubReplacer:
    """A replacer that answers with given files (the protocol, without inheriting)."""

    id, label, kind = "stub-replace", "Stub", "replace"

    def __init__(self, files: tuple[bytes, ...], seed: int | None = None):
        self.files, self.seed, self.requests = files, seed, []

    def status(self) -> ProviderStatus:
        return ProviderStatus("ready")

    def estimate(self, num_images: int = 1) -> Cost:
        return Cost(Decimal("0.01") * num_images, "estimated", "stub")

    def replace(self, image, request) -> Generated:
        self.requests.append((image, request))
        return Generated(self.files, self.seed, self.estimate(request.num_images), 0.0, {"endpoint": "stub"})


def test_returned_images_get_the_inputs_pixel_limit(image):
    big = encode(Image.new("RGB", (100, 100), (1, 2, 3)))
    stub = StubReplacer((big,))
    assert isinstance(stub, Replacer)
    with pytest.raises(
        ProviderResponseError,
        match=r"stub-replace: returned an unusable image \(1 of 1\): .*100x100 = 0\.0 MP, over the limit",
    ):
        rmbg.replace_background(image, prompt="x", provider=stub, max_pixels=64 * 48)
    result = rmbg.replace_background(image, prompt="x", provider=stub, max_pixels=100 * 100)
    assert same(result.images[0], Image.new("RGB", (100, 100), (1, 2, 3)))
    assert result.seed is None and result.provider == "stub-replace" and result.meta == {"endpoint": "stub"}
    sent_image, request = stub.requests[-1]
    assert same(sent_image, image) and request.prompt == "x" and request.ref is None


def test_result_encodes_with_provenance(fal_fake, image):
    result = rmbg.replace_background(image, prompt="x", seed=3, provider=make(fal_fake))
    with Image.open(io.BytesIO(result.encode(0, "png"))) as png:
        assert png.text["rmbg:provider"] == "fal-bria-replace" and png.text["rmbg:seed"] == "3"
        assert png.text["rmbg:request_id"] == result.meta["request_id"]
        assert same(png.convert("RGB"), result.images[0])


# --- the fake checks bodies as fal does --------------------------------------------------------------


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"prompt": "x"}, [{"loc": ["body", "image_url"], "msg": "Field required", "type": "missing"}]),
        (
            {"image_url": "IMG", "prompt": "x", "ref_image_url": "IMG"},
            [
                {
                    "loc": ["body"],
                    "msg": "Either ref_image_url or prompt has to be provided but not both",
                    "type": "value_error",
                }
            ],
        ),
        (
            {"image_url": "IMG", "ref_image_url": ""},
            [
                {
                    "loc": ["body"],
                    "msg": "Either ref_image_url or prompt has to be provided but not both",
                    "type": "value_error",
                }
            ],
        ),
        (
            {"image_url": "IMG", "prompt": "x", "seed": 2147483648},
            [
                {
                    "loc": ["body", "seed"],
                    "msg": "Input should be less than or equal to 2147483647",
                    "type": "less_than_equal",
                }
            ],
        ),
        (
            {"image_url": "IMG", "prompt": "x", "seed": -1},
            [
                {
                    "loc": ["body", "seed"],
                    "msg": "Input should be greater than or equal to 0",
                    "type": "greater_than_equal",
                }
            ],
        ),
        (
            {"image_url": "IMG", "prompt": "x", "num_images": 5},
            [
                {
                    "loc": ["body", "num_images"],
                    "msg": "Input should be less than or equal to 4",
                    "type": "less_than_equal",
                }
            ],
        ),
        (
            {"image_url": "IMG", "prompt": "x", "original_quality": "yes"},
            [{"loc": ["body", "original_quality"], "msg": "Input should be a valid boolean", "type": "boolean_type"}],
        ),
        (
            {"image_url": "IMG", "prompt": "x", "bg_prompt": "y"},
            [{"loc": ["body", "bg_prompt"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}],
        ),
        (
            {"image_url": "data:image/png;base64,AAAA", "prompt": "x"},
            [{"loc": ["body", "image_url"], "msg": "Could not load the image", "type": "image_load_error"}],
        ),
    ],
)
def test_the_fake_refuses_bodies_like_fal(fal_fake, image, body, detail):
    body = {k: (png_data_uri(image) if v == "IMG" else v) for k, v in body.items()}
    response = httpx.post(f"{fal_fake.url}{ENDPOINT}", json=body, headers={"Authorization": f"Key {KEY}"})
    assert response.status_code == 422 and response.json() == {"detail": detail}
    assert response.headers["x-fal-retryable"] == "false" and "x-fal-request-id" in response.headers
    assert fal_fake.jobs == {}


# --- registry, price table and the spending hook -------------------------------------------------------


@pytest.mark.uses("torch")  # default_provider() reads the local models' states: torch is asked for a GPU
def test_a_replacer_is_registered_but_never_a_removal_choice(fal_fake, image):
    assert "fal-bria-replace" in registry.list_replacers()
    assert "fal-bria-replace" not in rmbg.list_providers()
    assert registry.info("fal-bria-replace").kind == "replace"
    assert rmbg.default_provider()[0] != "fal-bria-replace"
    with pytest.raises(UnknownProviderError, match="generates new backgrounds; it does not remove them"):
        rmbg.get_provider("fal-bria-replace")
    with pytest.raises(UnknownProviderError, match="it does not remove them"):
        rmbg.remove_background(image, "fal-bria-replace", cache=None)
    assert fal_fake.calls == []


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_the_app_offers_it_neither_to_remove_nor_to_compare(monkeypatch):
    from rmbg.webapp import AppConfig, Keys, catalog
    from rmbg.webapp.catalog import default_selection

    monkeypatch.setenv("FAL_KEY", KEY)
    offered = [pid for _, pid in catalog.choices(Keys(fal=KEY), AppConfig())]
    assert offered == rmbg.list_providers() and "fal-bria" in offered and "fal-bria-replace" not in offered
    assert "fal-bria-replace" not in default_selection("u2netp", Keys(fal=KEY), AppConfig())


def test_the_replacer_builds_without_network_and_states_its_price(fal_fake, monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    replacer = registry.get_replacer("fal-bria-replace", base_url=fal_fake.url)
    assert isinstance(replacer, Replacer) and (replacer.id, replacer.kind) == ("fal-bria-replace", "replace")
    assert replacer.label == registry.info("fal-bria-replace").label
    assert replacer.status().state == "needs_key" and "FAL_KEY" in replacer.status().message
    assert registry.get_replacer("fal-bria-replace", api_key=KEY).status().ready
    assert KEY not in repr(registry.get_replacer("fal-bria-replace", api_key=KEY))
    assert replacer.estimate() == Cost(PRICE, "estimated", "price table")
    assert replacer.estimate(4) == Cost(PRICE * 4, "estimated", "4 x $0.0400 per image, price table")
    assert fal_fake.calls == []


def test_price_table_has_one_replace_entry_apart_from_removal():
    assert price_table("replace") == {"fal-bria-replace": PRICE}
    assert "fal-bria-replace" not in price_table()
    from rmbg.money.pricing import hosted_projection

    assert "fal-bria-replace" not in {row.provider for row in hosted_projection(include_references=False)}


def test_replace_estimate_is_the_hook_for_spending_caps(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)  # no key, no network: an estimate is always at hand
    assert rmbg.replace_estimate() == Cost(PRICE, "estimated", "price table")
    assert rmbg.replace_estimate(3).usd == Decimal("0.12")
    with pytest.raises(InvalidRequestError, match="num_images must be a whole number from 1 to 4, got 0"):
        rmbg.replace_estimate(0)
    with pytest.raises(UnknownProviderError, match="'fal-bria' is a removal provider"):
        rmbg.replace_estimate(1, "fal-bria")

    from rmbg.webapp.spending import Ledger
    from tests.support.ledgers import hold_exactly

    ledger = Ledger(Decimal("0.10"), Decimal("5"))
    usd = rmbg.replace_estimate(2).usd
    held = hold_exactly(ledger, "s", "fal-bria-replace", usd, server_key=False)
    assert ledger.session_spent("s") == Decimal("0.08")
    with pytest.raises(rmbg.BudgetError):  # a second request of 2 would pass the $0.10 cap
        hold_exactly(ledger, "s", "fal-bria-replace", usd, server_key=False)
    ledger.policy.settle(held, usd)


def test_the_price_is_changed_where_it_is_declared():
    declared = registry.info("fal-bria-replace")
    registry.register("fal-bria-replace", declared.factory, dataclasses.replace(declared, price_usd=Decimal("0.023")))
    try:
        assert rmbg.replace_estimate(2) == Cost(Decimal("0.046"), "estimated", "2 x $0.0230 per image, price table")
        assert registry.get_replacer("fal-bria-replace").estimate().usd == Decimal("0.023")
    finally:
        registry.register("fal-bria-replace", declared.factory, declared)
    assert rmbg.replace_estimate().usd == PRICE


def test_importing_the_replacer_module_keeps_rmbg_light():
    import subprocess
    import sys

    code = (
        "import sys, rmbg; rmbg.replace_estimate(2); "
        "print(','.join(m for m in ('httpx', 'torch', 'gradio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- `rmbg replace` end to end -------------------------------------------------------------------


def scene(path, colour) -> Image.Image:
    img = Image.new("RGB", (40, 30), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((10, 5, 30, 25), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return img


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """A started fake (COMPLETED at the first poll: no waits), FAL_KEY and the queue URL set,
    cwd = tmp with in/a.png and in/sub/b.png; yields (fake, {name: the image})."""
    from tests.fakes.fal import FalFake

    monkeypatch.chdir(tmp_path)
    images = {
        "a": scene(tmp_path / "in" / "a.png", (220, 30, 20)),
        "b": scene(tmp_path / "in" / "sub" / "b.png", (20, 30, 220)),
    }
    with FalFake(polls_before_done=0) as fake:
        monkeypatch.setenv("FAL_KEY", KEY)
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
        yield fake, images


def run_cli(*args: str) -> int:
    from rmbg.cli.main import main

    return main(["replace", *args])


def read_manifest(out) -> list[dict]:
    import csv

    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_without_yes_prints_the_estimate_and_sends_nothing(cli, tmp_path, capsys):
    fake, _ = cli
    assert run_cli("in", "-o", "out", "--prompt", "a beach", "--num-images", "2") == 2
    err = capsys.readouterr().err
    assert (
        "Estimated cost for fal-bria-replace: 2 images x $0.0800 = $0.1600 (2 x $0.0400 per image, price table)" in err
    )
    assert "This run is paid: pass --yes to accept the estimate, or --max-cost USD to cap the spending." in err
    assert fake.calls == [] and not (tmp_path / "out").exists()


def test_cli_yes_writes_every_generated_image_mirrored(cli, tmp_path, capsys):
    fake, images = cli
    assert (
        run_cli(
            "in",
            "-o",
            "out",
            "--prompt",
            "a beach",
            "-n",
            "2",
            "--seed",
            "9",
            "--negative-prompt",
            "cars",
            "--no-fast",
            "--no-refine-prompt",
            "--yes",
        )
        == 0
    )
    out = tmp_path / "out"
    names = ["a.replace-1.png", "a.replace-2.png", "sub/b.replace-1.png", "sub/b.replace-2.png"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [".rmbg-folder-id", ".rmbg-options.json", "manifest.csv", *names]
    )
    for name in names:
        stem, k = name.split(".replace-")
        with Image.open(out / name) as png:
            assert same(png.convert("RGB"), expected_image(images[stem[-1]], "a beach", None, 9, int(k[0]) - 1))
            assert png.text["rmbg:provider"] == "fal-bria-replace" and png.text["rmbg:seed"] == "9"
    bodies = sorted((c.json() for c in posts(fake)), key=lambda b: b["image_url"])
    assert len(bodies) == 2 and all(
        {k: v for k, v in b.items() if k != "image_url"}
        == {
            "prompt": "a beach",
            "negative_prompt": "cars",
            "refine_prompt": False,
            "original_quality": True,
            "num_images": 2,
            "sync_mode": True,
            "seed": 9,
        }
        for b in bodies
    )
    rows = sorted(read_manifest(out), key=lambda r: r["file"])
    assert [(r["file"], r["output"], r["provider"], r["cost_usd"], r["cost_source"], r["status"]) for r in rows] == [
        ("in/a.png", "a.replace-1.png; a.replace-2.png", "fal-bria-replace", "0.08", "estimated", "done"),
        ("in/sub/b.png", "sub/b.replace-1.png; sub/b.replace-2.png", "fal-bria-replace", "0.08", "estimated", "done"),
    ]
    assert "Done 2, skipped 0 (output exists), failed 0, not run 0 (budget)" in capsys.readouterr().out


def test_cli_reference_image_and_resume(cli, tmp_path, capsys):
    fake, images = cli
    ref = scene(tmp_path / "ref.png", (250, 250, 0))
    assert run_cli("in/a.png", "-o", "out", "--ref", "ref.png", "--yes") == 0
    assert posts(fake)[0].json()["ref_image_url"] == png_data_uri(ref) and "prompt" not in posts(fake)[0].json()
    with Image.open(tmp_path / "out" / "a.replace-1.png") as png:
        assert same(png.convert("RGB"), expected_image(images["a"], "", ref, FAKE_SEED, 0))
    capsys.readouterr()
    assert run_cli("in/a.png", "-o", "out", "--ref", "ref.png", "--yes") == 0  # resume: nothing new to pay for
    assert len(posts(fake)) == 1 and "Done 0, skipped 1 (output exists)" in capsys.readouterr().out
    assert run_cli("in/a.png", "-o", "out", "--prompt", "snow", "--yes") == 2  # other request: not silently kept
    assert "changed: prompt None -> 'snow', ref" in capsys.readouterr().err and len(posts(fake)) == 1
    assert run_cli("in/a.png", "-o", "out", "--prompt", "snow", "--yes", "--overwrite") == 0
    assert len(posts(fake)) == 2


def test_cli_max_cost_never_passes_the_cap(cli, tmp_path, capsys):
    fake, _ = cli
    assert run_cli("in", "-o", "out", "--prompt", "x", "-n", "2", "--max-cost", "0.05") == 1
    assert (
        fake.calls == []
        and "Done 0, skipped 0 (output exists), failed 0, not run 2 (budget)" in capsys.readouterr().out
    )
    assert run_cli("in", "-o", "out2", "--prompt", "x", "-n", "2", "--max-cost", "0.1") == 1
    assert len(posts(fake)) == 1
    out = capsys.readouterr().out
    assert (
        "Done 1, skipped 0 (output exists), failed 0, not run 1 (budget) in" in out
        and "cost $0.0800 (estimated)" in out
    )


def test_cli_one_bad_file_does_not_stop_the_batch(cli, tmp_path, capsys):
    fake, _ = cli
    (tmp_path / "in" / "bad.png").write_bytes(b"not a png")
    fake.inject("invalid", op="submit")  # and one image fal refuses
    assert run_cli("in", "-o", "out", "--prompt", "x", "--yes", "--jobs", "1") == 1
    out = capsys.readouterr().out
    assert "Done 1, skipped 0 (output exists), failed 2, not run 0 (budget)" in out
    assert "  in/bad.png: bad.png is not an image we can read" in out
    assert "rejected the image (HTTP 422): image_url: Image is too large (image_too_large)" in out
    assert len(posts(fake)) == 2  # the bad file was never sent


@pytest.mark.parametrize(
    "args, words",
    [
        (["--prompt", "  "], "The prompt is empty"),
        (["--prompt", "x", "-n", "5"], "num_images must be a whole number from 1 to 4, got 5."),
        (["--prompt", "x", "--seed", "-1"], "seed must be a whole number from 0 to 2147483647 (or None), got -1."),
        (["--prompt", "x", "--ref", "in/a.png"], "argument --ref: not allowed with argument --prompt"),
        ([], "one of the arguments --prompt --ref is required"),
        (["--ref", "nowhere.png"], "--ref nowhere.png: No such file: nowhere.png"),
        (["--prompt", "x", "--provider", "fal-bria"], "'fal-bria' is a removal provider, not a background replacer."),
        (["--prompt", "x", "--seed", "soon"], "argument --seed: not a whole number: 'soon'"),
    ],
)
def test_cli_mistakes_are_usage_errors_that_send_nothing(cli, tmp_path, capsys, args, words):
    fake, _ = cli
    assert run_cli("in", "-o", "out", "--yes", *args) == 2
    assert words in capsys.readouterr().err
    assert fake.calls == [] and not (tmp_path / "out").exists()


def test_cli_without_a_key_says_which_variable(cli, tmp_path, capsys, monkeypatch):
    fake, _ = cli
    monkeypatch.delenv("FAL_KEY")
    assert run_cli("in", "-o", "out", "--prompt", "x", "--yes") == 1
    assert "fal-bria-replace cannot run here: needs FAL_KEY (a fal.ai API key)." in capsys.readouterr().err
    assert fake.calls == []


def test_cli_a_second_sigint_while_a_call_is_in_flight_writes_none_of_its_images(cli, tmp_path, monkeypatch):
    """As a cut-out's (rmbg.cli.batch): a replace call given up by a second Ctrl-C has its row say "may have
    been billed" and writes nothing, even when its answer comes after; its images were written beside that
    row (write_atomic, without the batch's check). Deterministic: the answer is held until both signals
    have been handled."""
    import signal
    import threading

    from rmbg.cli import interrupts
    from rmbg.cli import replace as replace_cmd

    fake, _ = cli
    real, answered, release = replace_cmd.run_replacer, threading.Event(), threading.Event()

    def held(*args, **kwargs):
        result = real(*args, **kwargs)  # the fake's answer is here; its images are not written yet
        answered.set()
        release.wait(60)
        return result

    def sigint() -> None:  # to the main thread, which waits for the call (as Ctrl-C reaches it)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def signals() -> None:
        assert answered.wait(60)
        sigint()
        assert interrupts.stop_requested.wait(60)
        sigint()
        assert interrupts.abandoned.wait(60)
        release.set()

    monkeypatch.setattr(replace_cmd, "run_replacer", held)
    helper = threading.Thread(target=signals)
    helper.start()
    assert run_cli("in/a.png", "-o", "out", "--prompt", "a beach", "--yes", "-j", "1") == 130
    helper.join()
    for worker in [t for t in threading.enumerate() if t.name.startswith("rmbg-batch")]:
        worker.join(60)  # the abandoned call's thread, after its answer
    assert [(r["status"], r["cost_source"]) for r in read_manifest(tmp_path / "out")] == [
        ("failed", "may have been billed")
    ]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == []
