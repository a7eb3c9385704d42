"""runware-bria and runware-rembg against the fake Runware API, over real sockets."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from decimal import Decimal

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import (
    MissingCredentialsError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from rmbg.providers.base import Provider
from rmbg.providers.hosted.payload import png_data_uri
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.providers.hosted.runware import RembgSettings, runware_bria, runware_rembg
from rmbg.registry import get_provider
from tests.fakes.common import simple_matte
from tests.fakes.fixtures import runware_fake  # noqa: F401
from tests.fakes.runware import RunwareFake

KEY = "rw-test-key"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (240, 240, 235))
    ImageDraw.Draw(img).rectangle((12, 10, 50, 38), fill=(20, 60, 200))
    ImageDraw.Draw(img).ellipse((20, 16, 30, 26), fill=(150, 150, 200))  # soft edge values in the matte
    return img


def make(fake, factory=runware_bria, sleeps=None, key=KEY, max_attempts=3, **config):
    recorder = sleeps.append if sleeps is not None else (lambda s: None)
    policy = RetryPolicy.immediate(max_attempts=max_attempts, sleep=recorder)
    return factory(api_key=key, base_url=fake.url, retry=policy, **config)


def assert_key_hidden(exc: Exception, provider=None) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "excerpt", ""), repr(provider)):
        assert KEY not in text


def test_bria_request_is_exact(runware_fake, image):
    matte = make(runware_fake).matte(image)
    (call,) = runware_fake.calls
    assert (call.method, call.path) == ("POST", "/v1")
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.headers["content-type"] == "application/json"
    (task,) = call.json()
    assert UUID4.match(task["taskUUID"])
    assert task == {
        "taskType": "removeBackground",
        "taskUUID": task["taskUUID"],
        "model": "bria:2@1",
        "inputs": {"image": png_data_uri(image)},
        "outputType": "base64Data",
        "outputFormat": "PNG",
        "includeCost": True,
        "deliveryMethod": "sync",
    }
    assert matte.alpha.mode == "L" and matte.alpha.size == image.size
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    assert matte.cost.usd == Decimal("0.018") and matte.cost.source == "reported"
    assert matte.meta["model"] == "bria:2@1" and matte.meta["request_id"] == task["taskUUID"]
    assert UUID4.match(matte.meta["image_uuid"])


def test_rembg_sends_its_options_and_a_fresh_uuid_per_task(runware_fake, image):
    provider = make(runware_fake, runware_rembg)
    provider.matte(image)
    tuned = make(
        runware_fake,
        runware_rembg,
        post_process_mask=True,
        alpha_matting=True,
        alpha_matting_foreground_threshold=200,
        alpha_matting_background_threshold=20,
        alpha_matting_erode_size=5,
    )
    matte = tuned.matte(image)
    first, second = (call.json()[0] for call in runware_fake.calls)
    assert first["model"] == second["model"] == "runware:109@1"
    assert first["settings"] == {
        "postProcessMask": False,
        "alphaMatting": False,
        "alphaMattingForegroundThreshold": 240,
        "alphaMattingBackgroundThreshold": 10,
        "alphaMattingErodeSize": 10,
    }
    assert second["settings"] == {
        "postProcessMask": True,
        "alphaMatting": True,
        "alphaMattingForegroundThreshold": 200,
        "alphaMattingBackgroundThreshold": 20,
        "alphaMattingErodeSize": 5,
    }
    assert first["taskUUID"] != second["taskUUID"] and all(UUID4.match(t["taskUUID"]) for t in (first, second))
    assert "rgba" not in second["settings"] and "returnOnlyMask" not in second["settings"]
    assert set(np.unique(np.asarray(matte.alpha))) <= {0, 255}  # the fake binarises with postProcessMask
    assert matte.cost.usd == Decimal("0.0013") and matte.cost.source == "reported"
    assert tuned.options()["alphaMattingErodeSize"] == 5 and provider.options() != tuned.options()


def test_bria_never_sends_settings(image):
    with RunwareFake(settings_on_bria="reject", result_task_type="imageBackgroundRemoval") as fake:
        matte = make(fake).matte(image)  # also: the old taskType of the docs' examples is still accepted
        assert "settings" not in fake.calls[0].json()[0]
    assert matte.alpha.size == image.size


@pytest.mark.parametrize("output", ["URL", "dataURI"])
def test_other_output_forms_are_read(image, output):
    with RunwareFake(force_output_type=output) as fake:
        matte = make(fake).matte(image)
        calls = fake.calls
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    if output == "URL":
        assert calls[1].method == "GET" and calls[1].path.startswith("/image/")
        assert "authorization" not in calls[1].headers


def test_protocol_status_and_missing_key(runware_fake, monkeypatch):
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    for pid in ("runware-bria", "runware-rembg"):
        provider = get_provider(pid, base_url=runware_fake.url)
        assert isinstance(provider, Provider) and provider.kind == "hosted" and provider.id == pid
        assert provider.status().state == "needs_key" and "RUNWARE_API_KEY" in provider.status().message
        with pytest.raises(MissingCredentialsError, match="RUNWARE_API_KEY"):
            provider.matte(Image.new("RGB", (8, 8)))
    assert runware_fake.calls == []
    assert get_provider("runware-bria").estimate().usd == Decimal("0.018")
    assert get_provider("runware-rembg").estimate().usd == Decimal("0.0013")


def test_key_and_url_from_environment(runware_fake, image, monkeypatch):
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.setenv("RMBG_RUNWARE_URL", runware_fake.url)
    provider = get_provider("runware-bria", retry=RetryPolicy.immediate())
    assert provider.status().ready and KEY not in repr(provider)
    provider.matte(image)
    assert runware_fake.calls[0].headers["authorization"] == f"Bearer {KEY}"


def test_wrong_key(runware_fake, image):
    provider = make(runware_fake, key="rw-wrong-secret")
    with pytest.raises(ProviderAuthError, match="Check the key you entered") as info:
        provider.matte(image)
    assert info.value.status == 401 and "invalidApiKey" in str(info.value)
    assert "rw-wrong-secret" not in str(info.value) + repr(info.value) + info.value.excerpt + repr(provider)
    assert len(runware_fake.calls) == 1


@pytest.mark.parametrize(
    "fault, error, status, words",
    [
        ("insufficient-credits", ProviderCreditError, 402, "out of credit"),
        (
            "invalid-parameter",
            ProviderRejectedError,
            400,
            "Invalid value for outputQuality (invalidParameter, parameter outputQuality)",
        ),
        ("forbidden", ProviderAuthError, 403, "not allowed"),
        ("unauthorized", ProviderAuthError, 401, "Check the key you entered"),
    ],
)
def test_errors_that_are_never_retried(runware_fake, image, fault, error, status, words):
    sleeps: list[float] = []
    runware_fake.inject(fault, times=5)
    with pytest.raises(error) as info:
        make(runware_fake, sleeps=sleeps).matte(image)
    assert info.value.status == status and words in str(info.value)
    assert len(runware_fake.calls) == 1 and sleeps == []
    assert_key_hidden(info.value)


def test_rate_limit_is_retried_with_the_same_task(runware_fake, image):
    sleeps: list[float] = []
    runware_fake.inject("rate-limit", times=2)
    matte = make(runware_fake, sleeps=sleeps).matte(image)
    assert matte.cost.source == "reported" and sleeps == [0.0, 0.0]
    uuids = [call.json()[0]["taskUUID"] for call in runware_fake.calls]
    assert len(uuids) == 3 and len(set(uuids)) == 1  # the same task, sent again


def test_rate_limit_gives_up(runware_fake, image):
    runware_fake.inject("rate-limit", times=10)
    with pytest.raises(ProviderRateLimitError, match="after 4 attempts") as info:
        make(runware_fake, max_attempts=4).matte(image)
    assert info.value.status == 429 and len(runware_fake.calls) == 4
    assert_key_hidden(info.value)


@pytest.mark.parametrize("fault, status", [("server-error", 500), ("unavailable", 503)])
def test_a_server_error_on_the_paid_call_is_never_sent_twice(runware_fake, image, fault, status):
    """Runware does not document 5xx answers as unbilled: the task may have run."""
    runware_fake.inject(fault, times=10)
    with pytest.raises(ProviderUnavailableError) as info:
        make(runware_fake, max_attempts=4).matte(image)
    assert info.value.status == status and len(runware_fake.calls) == 1
    assert str(info.value).endswith("It may have reached the provider and been billed, so it was not sent again.")
    assert_key_hidden(info.value)


def test_a_dropped_connection_after_the_request_is_never_sent_twice(runware_fake, image):
    runware_fake.inject("drop", times=10)
    with pytest.raises(ProviderUnavailableError, match="dropped the connection after our request was sent") as info:
        make(runware_fake, max_attempts=4).matte(image)
    assert len(runware_fake.calls) == 1 and "may have reached the provider and been billed" in str(info.value)


def test_retry_after_and_backoff_through_the_policy(runware_fake, image):
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_attempts=4, base_delay=0.5, max_delay=8, jitter=0.5, random=lambda: 1.0, sleep=sleeps.append
    )
    runware_fake.inject("rate-limit")
    runware_fake.inject("rate-limit", retry_after="3")
    runware_fake.inject("rate-limit")
    runware_bria(api_key=KEY, base_url=runware_fake.url, retry=policy).matte(image)
    # backoff 0.5 x 1.5 (jitter); then max(1.0 x 1.5, Retry-After 3); then 2.0 x 1.5
    assert sleeps == [0.75, 3.0, 3.0]


def test_deadline_stops_retrying(runware_fake, image):
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=10, deadline_s=5, sleep=sleeps.append)
    runware_fake.inject("rate-limit", retry_after="6", times=10)
    with pytest.raises(ProviderRateLimitError, match="rate limited .* asks to wait 6 s"):  # not "timed out"
        runware_bria(api_key=KEY, base_url=runware_fake.url, retry=policy).matte(image)
    assert sleeps == [] and len(runware_fake.calls) == 1


@pytest.mark.parametrize(
    "fault, error, words",
    [
        ("timeout-provider", ProviderTimeoutError, "did not respond within the timeout window (timeoutProvider)"),
        ("error-item", ProviderUnavailableError, "Inference failed (inferenceError)"),
    ],
)
@pytest.mark.parametrize("status", [200, 400])
def test_task_errors_by_code(image, fault, error, words, status):
    with RunwareFake(task_error_status=status) as fake:
        fake.inject(fault)
        with pytest.raises(error, match=re.escape(words)) as info:
            make(fake).matte(image)
        assert len(fake.calls) == 1
    if fault == "timeout-provider":  # all tasks failed: the fake answers `status`
        assert info.value.status == (None if status == 200 else 400)


def test_partial_success_uses_our_item(runware_fake, image):
    runware_fake.inject("partial")
    matte = make(runware_fake).matte(image)
    assert matte.alpha.size == image.size and matte.cost.usd == Decimal("0.018")


@pytest.mark.parametrize(
    "fault, words",
    [
        ("not-json", "not JSON"),
        ("missing-field", "no image"),
        ("other-uuid", "no result for our task"),
        ("not-image", "not an image"),
        ("wrong-size", "64x49 image for a 64x48 input"),
        ("no-alpha", "without transparency"),
    ],
)
def test_malformed_answers(runware_fake, image, fault, words):
    runware_fake.inject(fault)
    with pytest.raises(ProviderResponseError, match=words) as info:
        make(runware_fake).matte(image)
    assert isinstance(info.value, ProviderHTTPError)
    assert_key_hidden(info.value)


@pytest.mark.parametrize("fault, note", [("no-cost", "no cost reported"), ("bad-cost", "unreadable cost")])
def test_missing_cost_falls_back_to_the_price_table(runware_fake, image, fault, note):
    runware_fake.inject(fault)
    cost = make(runware_fake, runware_rembg).matte(image).cost
    assert cost.usd == Decimal("0.0013") and cost.source == "estimated" and note in cost.note


@pytest.mark.parametrize("field", ["alpha_matting_foreground_threshold", "alpha_matting_erode_size"])
@pytest.mark.parametrize("value", [0, 256, 2.5, True])
def test_rembg_settings_are_validated(field, value):
    with pytest.raises(ValueError, match=field):
        RembgSettings(**{field: value})


# --- the fake itself follows the spec ---------------------------------------------


def _post(fake, tasks, **headers):
    return httpx.post(f"{fake.url}/v1", json=tasks, headers={"Authorization": f"Bearer {KEY}", **headers})


def test_fake_defaults_to_jpg_without_alpha(runware_fake, image):
    task = {
        "taskType": "removeBackground",
        "taskUUID": str(uuid.uuid4()),
        "model": "bria:2@1",
        "inputs": {"image": png_data_uri(image)},
        "outputType": "dataURI",
    }
    item = _post(runware_fake, [task]).json()["data"][0]
    assert item["imageDataURI"].startswith("data:image/jpeg;base64,") and "cost" not in item
    assert item["taskType"] == "removeBackground" and item["taskUUID"] == task["taskUUID"]  # the current name


def test_fake_auth_task_validation_and_async_polling(image):
    with RunwareFake(async_polls=1) as fake:
        auth = {"taskType": "authentication", "apiKey": KEY}
        task = {
            "taskType": "removeBackground",
            "taskUUID": str(uuid.uuid4()),
            "model": "runware:109@1",
            "inputs": {"image": png_data_uri(image)},
            "outputFormat": "PNG",
            "deliveryMethod": "async",
        }
        ack = httpx.post(f"{fake.url}/v1", json=[auth, task])
        assert ack.status_code == 200 and ack.json() == {"data": []}
        poll = [auth, {"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
        states = [httpx.post(f"{fake.url}/v1", json=poll).json()["data"][0]["status"] for _ in range(3)]
        assert states == ["processing", "success", "success"]
        bad = _post(fake, [{**task, "taskUUID": "not-a-uuid", "deliveryMethod": "sync"}])
        assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "taskUUID"
        assert _post(fake, {"not": "an array"}).json()["errors"][0]["code"] == "invalidPayload"
        assert httpx.post(f"{fake.url}/v1", json=[task]).status_code == 401


def test_fake_runs_as_a_module():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.runware", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.post(f"{url}/v1", json=[])
        assert response.status_code == 401 and response.json()["errors"][0]["code"] == "invalidApiKey"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_keys_are_trimmed_and_unsendable_keys_refused(runware_fake, image, monkeypatch):
    monkeypatch.setenv("RUNWARE_API_KEY", f"  {KEY}\n")  # pasted with a newline
    make(runware_fake, key=None).matte(image)
    assert runware_fake.calls[0].headers["authorization"] == f"Bearer {KEY}"
    bad = "rw-s\u00e9cret-key"
    with pytest.raises(ProviderAuthError, match="cannot be sent") as info:
        make(runware_fake, key=bad).matte(image)
    assert bad not in str(info.value) + repr(info.value) and len(runware_fake.calls) == 1


def test_remove_background_through_runware_is_billed_once(runware_fake, image):
    import rmbg

    provider = make(runware_fake, runware_rembg)
    first = rmbg.remove_background(image, provider, background="#ffffff")
    second = rmbg.remove_background(image, provider, mask_only=True)
    assert first.provider == "runware-rembg" and first.cost.source == "reported" and not first.cached
    assert second.cached and second.cost.source == "free" and len(runware_fake.calls) == 1
    assert first.image.mode == "RGB" and second.image.mode == "L" and first.meta["model"] == "runware:109@1"
    assert np.array_equal(np.asarray(second.alpha), np.asarray(simple_matte(image)))
