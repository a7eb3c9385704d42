"""fal-bria against the fake fal queue, over real sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
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
from rmbg.providers.hosted.fal import FalBria
from rmbg.providers.hosted.payload import png_data_uri
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.common import simple_matte
from tests.fakes.fal import FalFake
from tests.fakes.fixtures import fal_fake  # noqa: F401

KEY = "fal-test-id:fal-test-secret"
ENDPOINT = "/fal-ai/bria/background/remove"


class FakeClock:
    """A clock that only moves when the policy sleeps: deadlines without waiting."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((16, 8, 48, 40), fill=(220, 30, 20))
    return img


def make(fake, sleeps=None, key=KEY, **policy) -> FalBria:
    recorder = sleeps.append if sleeps is not None else (lambda s: None)
    return FalBria(api_key=key, base_url=fake.url, retry=RetryPolicy.immediate(sleep=recorder, **policy))


def assert_key_hidden(exc: Exception, provider=None) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "excerpt", ""), repr(provider)):
        assert KEY not in text and "fal-test-secret" not in text


def test_happy_path_sends_exact_requests(fal_fake, image):
    provider = make(fal_fake)
    matte = provider.matte(image)

    submit, *polls, result = fal_fake.calls
    assert (submit.method, submit.path, submit.query) == ("POST", ENDPOINT, {})
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.headers["content-type"] == "application/json"
    assert submit.json() == {"image_url": png_data_uri(image), "sync_mode": True}
    sent = Image.open(io.BytesIO(base64.b64decode(submit.json()["image_url"].split(",", 1)[1])))
    assert sent.format == "PNG" and np.array_equal(np.asarray(sent), np.asarray(image))

    rid = matte.meta["request_id"]
    assert [(c.method, c.path, c.query) for c in polls] == [
        ("GET", f"/fal-ai/bria/requests/{rid}/status", {"logs": ["0"]})
    ] * 2  # 202 IN_PROGRESS, then 200 COMPLETED
    assert (result.method, result.path) == ("GET", f"/fal-ai/bria/requests/{rid}")
    assert all(c.headers["authorization"] == f"Key {KEY}" for c in fal_fake.calls)

    assert matte.alpha.mode == "L" and matte.alpha.size == image.size
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    assert matte.cost.usd == Decimal("0.018") and matte.cost.source == "estimated"
    assert matte.meta == {"model": "Bria RMBG 2.0", "endpoint": "fal-ai/bria/background/remove", "request_id": rid}
    assert matte.seconds > 0


def test_file_url_result_is_fetched_without_the_key(image):
    with FalFake(file_urls=True) as fake:
        matte = make(fake).matte(image)
        download = fake.calls[-1]
    assert download.path == f"/files/{matte.meta['request_id']}.png"
    assert "authorization" not in download.headers
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))


def test_provider_protocol_status_and_registry(fal_fake, monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    provider = get_provider("fal-bria", base_url=fal_fake.url)  # no key: builds fine
    assert isinstance(provider, Provider) and provider.kind == "hosted" and provider.id == "fal-bria"
    status = provider.status()
    assert status.state == "needs_key" and "FAL_KEY" in status.message
    assert provider.estimate().usd == Decimal("0.018")
    assert provider.options() == {"endpoint": "fal-ai/bria/background/remove"}
    with pytest.raises(MissingCredentialsError, match="FAL_KEY"):
        provider.matte(Image.new("RGB", (8, 8)))
    assert fal_fake.calls == []  # status() and the missing key never touch the network
    assert get_provider("fal-bria", api_key=KEY).status().state == "ready"


def test_key_and_url_from_environment(fal_fake, image, monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal_fake.url)
    provider = FalBria(retry=RetryPolicy.immediate())
    assert provider.status().ready and KEY not in repr(provider)
    provider.matte(image)
    assert fal_fake.calls[0].headers["authorization"] == f"Key {KEY}"


def test_an_endpoints_user_name_and_password_stay_out_of_the_repr(monkeypatch):
    """RMBG_FAL_QUEUE_URL through a proxy that asks for a password: the repr (logs, tracebacks) names the host."""
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", "https://proxy-user:pr0xy-s3cret@proxy.example:8443/fal")
    shown = repr(FalBria(api_key=KEY))
    assert "pr0xy-s3cret" not in shown and "proxy-user" not in shown and KEY not in shown
    assert "base_url='https://proxy.example:8443/fal'" in shown


def test_wrong_key_is_an_auth_error_without_retry(fal_fake, image):
    provider = make(fal_fake, key="wrong-id:wrong-secret-value")
    with pytest.raises(ProviderAuthError) as info:
        provider.matte(image)
    assert info.value.status == 401 and str(info.value).endswith("Check the key you entered.")
    assert "No user found" in str(info.value)
    assert "wrong-secret-value" not in str(info.value) + repr(provider)
    assert len(fal_fake.calls) == 1


def test_a_wrong_key_from_the_environment_names_the_variable(fal_fake, image, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "wrong-id:wrong-secret-value")
    provider = make(fal_fake, key=None)
    with pytest.raises(ProviderAuthError) as info:
        provider.matte(image)
    assert str(info.value).endswith("Check FAL_KEY.")


@pytest.mark.parametrize(
    "fault, error, status, words",
    [
        ("locked", ProviderCreditError, 403, "Exhausted balance"),
        ("admin-lock", ProviderAuthError, 403, "Admin lock"),
        ("invalid", ProviderRejectedError, 422, "image_url: Image is too large (image_too_large)"),
        ("start-timeout", ProviderTimeoutError, 504, "timed out before it started"),
        ("unauthorized", ProviderAuthError, 401, "Check the key you entered."),
    ],
)
def test_errors_that_are_never_retried(fal_fake, image, fault, error, status, words):
    sleeps: list[float] = []
    fal_fake.inject(fault, op="submit", times=5)
    with pytest.raises(error) as info:
        make(fal_fake, sleeps).matte(image)
    assert info.value.status == status and words in str(info.value)
    assert len(fal_fake.calls) == 1 and sleeps == []
    assert_key_hidden(info.value)


@pytest.mark.parametrize("fault", ["rate-limit", "server-error", "unavailable", "ingress", "request-timeout"])
@pytest.mark.parametrize("op", ["submit", "status", "result"])
def test_transient_errors_are_retried(fal_fake, image, fault, op):
    sleeps: list[float] = []
    fal_fake.inject(fault, op=op, times=2)
    matte = make(fal_fake, sleeps, max_attempts=3).matte(image)
    assert matte.alpha.size == image.size
    assert sleeps == [0.0, 0.0, 0.0]  # two retries and one poll wait, all zero through the policy
    assert len(fal_fake.calls) == 4 + 2


@pytest.mark.parametrize(
    "fault, error, status",
    [
        ("rate-limit", ProviderRateLimitError, 429),
        ("server-error", ProviderUnavailableError, 500),
        ("unavailable", ProviderUnavailableError, 503),
        ("ingress", ProviderUnavailableError, 502),
        ("request-timeout", ProviderTimeoutError, 408),
    ],
)
def test_transient_errors_give_up_after_max_attempts(fal_fake, image, fault, error, status):
    fal_fake.inject(fault, op="submit", times=10)
    with pytest.raises(error) as info:
        make(fal_fake, max_attempts=3).matte(image)
    assert info.value.status == status and "after 3 attempts" in str(info.value)
    assert len(fal_fake.calls) == 3
    assert_key_hidden(info.value)


def test_retry_after_is_honoured_through_the_policy(fal_fake, image):
    sleeps: list[float] = []
    fal_fake.inject("rate-limit", op="submit", retry_after="7")
    fal_fake.inject("unavailable", op="status", retry_after="2")
    make(fal_fake, sleeps, deadline_s=60).matte(image)
    assert sleeps == [7.0, 2.0, 0.0]  # Retry-After 7 (submit), Retry-After 2 (1st poll), one poll wait


def test_retry_after_beyond_the_cap_gives_up_at_once(fal_fake, image):
    fal_fake.inject("rate-limit", op="submit", retry_after="120", times=3)
    with pytest.raises(ProviderRateLimitError, match="wait 2 min") as info:
        make(fal_fake, max_retry_after=30).matte(image)
    assert len(fal_fake.calls) == 1 and info.value.status == 429


@pytest.mark.parametrize(
    "retry_after, words, sent",
    [
        ("25", "(HTTP 429). The provider asks to wait 25 s. Try again later.", 1),  # within the cap, past 20 s left
        ("Wed, 21 Oct 2099 07:28:00 GMT", "(HTTP 429). The provider asks to wait more than a day. Try again later.", 1),
        ("1e400", "(HTTP 429). The provider asks to wait more than a day. Try again later.", 1),
        (
            "soon <b>please</b>",
            "(HTTP 429) after 3 attempts. Try again later.",
            3,
        ),  # no wait read: backed off, unquoted
    ],
)
def test_a_rate_limit_that_outlasts_the_call_is_said_as_one(fal_fake, image, retry_after, words, sent):
    """A Retry-After past the call's deadline was "timed out after 20 s" (nothing had timed out), and its date
    form was quoted as a number of seconds ("asks to wait Wed, 21 Oct 2099 07:28:00 GMT s")."""
    fal_fake.inject("rate-limit", op="submit", retry_after=retry_after, times=3)
    sleeps: list[float] = []
    with pytest.raises(ProviderRateLimitError) as info:
        make(fal_fake, sleeps, deadline_s=20, max_retry_after=60).matte(image)
    assert str(info.value) == f"fal-bria: rate limited {words}"
    assert len(fal_fake.calls) == sent and len(sleeps) == sent - 1  # a wait the call cannot afford: not sent again


def test_deadline_cancels_the_queued_request(image):
    clock = FakeClock()
    policy = RetryPolicy(deadline_s=2.0, poll_interval=0.5, max_poll_interval=0.5, sleep=clock.sleep, clock=clock)
    with FalFake(polls_before_done=10**6) as fake:
        with pytest.raises(ProviderTimeoutError) as info:
            FalBria(api_key=KEY, base_url=fake.url, retry=policy).matte(image)
        cancel = fake.calls[-1]
        job = next(iter(fake.jobs.values()))
    rid = cancel.path.split("/")[-2]
    assert (cancel.method, cancel.path) == ("PUT", f"/fal-ai/bria/requests/{rid}/cancel")
    assert cancel.headers["authorization"] == f"Key {KEY}"
    assert job.cancelled and rid in str(info.value) and "2 s" in str(info.value)
    assert clock.sleeps == [0.5, 0.5, 0.5]  # the 4th wait would pass the deadline


def test_read_timeouts_retry_polls_then_cancel(image):
    client = httpx.Client(timeout=httpx.Timeout(0.25))
    with FalFake() as fake:
        fake.inject("slow", op="status", times=2, delay=5)
        provider = FalBria(api_key=KEY, base_url=fake.url, client=client, retry=RetryPolicy.immediate(max_attempts=2))
        with pytest.raises(ProviderTimeoutError, match="did not answer in time"):
            provider.matte(image)
        methods = [(c.method, c.path.rsplit("/", 1)[-1]) for c in fake.calls]
    assert methods[1:] == [("GET", "status"), ("GET", "status"), ("PUT", "cancel")]
    client.close()


def test_a_slow_submit_is_not_sent_twice(image):
    # a read timeout the fake's held answer outlasts (it is let go when the fake stops), long enough for a
    # loaded machine's fake to take the request in; connecting may take long too (a connect timeout is "not
    # sent", and sent again)
    client = httpx.Client(timeout=httpx.Timeout(2.0, connect=30.0))
    with FalFake() as fake:
        fake.inject("slow", op="submit", times=3, delay=60)
        with pytest.raises(ProviderTimeoutError):
            FalBria(api_key=KEY, base_url=fake.url, client=client, retry=RetryPolicy.immediate()).matte(image)
    client.close()
    assert len(fake.calls) == 1  # counted once the fake has answered all it was sent: never repeated


def test_failed_request_reports_the_providers_reason(fal_fake, image):
    fal_fake.inject("failed", op="submit")
    with pytest.raises(ProviderRejectedError, match=r"Unprocessable image \(image_load_error\)") as info:
        make(fal_fake).matte(image)
    assert info.value.status == 422


@pytest.mark.parametrize(
    "fault, op, words",
    [
        ("not-json", "submit", "not JSON"),
        ("not-json", "status", "not JSON"),
        ("missing-field", "submit", "no status_url"),
        ("missing-field", "status", "unknown queue status"),
        ("missing-field", "result", "no image.url"),
        ("not-image", "result", "not an image"),
        ("wrong-size", "result", "65x48 image for a 64x48 input"),
        ("no-alpha", "result", "without transparency"),
        ("foreign-url", "submit", "another host"),
    ],
)
def test_malformed_answers_are_response_errors(fal_fake, image, fault, op, words):
    # an unreadable status poll is polled again, up to the policy's attempts in a row (retry.Misses)
    fal_fake.inject(fault, op=op, times=3 if (fault, op) == ("not-json", "status") else 1)
    with pytest.raises(ProviderResponseError, match=words) as info:
        make(fal_fake).matte(image)
    assert isinstance(info.value, ProviderHTTPError)
    assert_key_hidden(info.value)


def test_one_unreadable_status_poll_is_polled_again_not_cancelled(fal_fake, image):
    """One status poll answered 200 with a page (a proxy's hiccup) cancelled an accepted, billed job."""
    fal_fake.inject("not-json", op="status", times=2)
    assert make(fal_fake).matte(image).alpha.size == image.size
    assert [c.method for c in fal_fake.calls].count("PUT") == 0  # no cancel
    assert sum(c.path.endswith("/status") for c in fal_fake.calls) == 4  # 2 unreadable, 1 in the queue, done


def test_unreachable_host_is_unavailable_after_retries(image):
    sleeps: list[float] = []
    with FalFake() as fake:
        url = fake.url
    with pytest.raises(ProviderUnavailableError, match="could not be reached") as info:
        FalBria(api_key=KEY, base_url=url, retry=RetryPolicy.immediate(sleep=sleeps.append)).matte(image)
    assert sleeps == [0.0, 0.0] and info.value.status is None


def test_fake_runs_as_a_module():
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.fal", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.put(f"{url}/fal-ai/bria/requests/0000/cancel", headers={"Authorization": f"Key {KEY}"})
        assert response.status_code == 404 and response.json() == {"status": "NOT_FOUND"}
        assert "x-fal-request-id" in response.headers
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- shared HTTP helpers (rmbg.providers.hosted.http) ----------------------------------------


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header(header, seconds):
    from rmbg.providers.hosted.http import retry_after_seconds

    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(header, now=now) == seconds


@pytest.mark.parametrize(
    "draw, waits", [(0.0, [0.25, 0.5, 1.0, 1.5]), (0.5, [0.5, 1.0, 2.0, 3.0]), (1.0, [0.75, 1.5, 3.0, 4.5])]
)
def test_backoff_doubles_with_jitter_and_a_cap(draw, waits):
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.5, random=lambda: draw)
    assert [policy.wait(n, None) for n in (1, 2, 3, 4)] == waits
    assert policy.wait(1, 10.0) == 10.0 and policy.wait(4, 1.0) == waits[3]


def test_scrub_removes_keys_and_auth_values():
    from rmbg.providers.hosted.payload import excerpt, scrub

    text = f"bad key {KEY}; Authorization: Key abcdef:123456 / Bearer sk-live-0123456789"
    clean = scrub(text, [KEY])
    assert KEY not in clean and "abcdef:123456" not in clean and "sk-live" not in clean
    assert clean == "bad key ***; Authorization: Key *** / Bearer ***"
    assert len(excerpt("x" * 1000)) == 300


def test_a_dropped_submit_is_never_sent_twice(fal_fake, image):
    fal_fake.inject("drop", op="submit", times=10)
    with pytest.raises(ProviderUnavailableError) as info:
        make(fal_fake, max_attempts=4).matte(image)
    assert str(info.value) == (
        "fal-bria: dropped the connection after our request was sent "
        "(the server closed the connection without a complete answer). "
        "It may have reached the provider and been billed, so it was not sent again."
    )
    assert [c.method for c in fal_fake.calls] == ["POST"]


def test_a_dropped_poll_is_simply_asked_again(fal_fake, image):
    fal_fake.inject("drop", op="status", times=1)
    assert make(fal_fake, max_attempts=3).matte(image).alpha.size == image.size
    assert [c.method for c in fal_fake.calls].count("POST") == 1


def test_an_html_error_page_is_reduced_to_its_text(fal_fake, image):
    fal_fake.inject("ingress", op="submit", times=10)
    with pytest.raises(ProviderUnavailableError) as info:
        make(fal_fake, max_attempts=2).matte(image)
    assert "<" not in str(info.value) and "502 Bad Gateway nginx" in str(info.value) + info.value.excerpt


# --- result downloads: type and size checked (FalQueue.download) ----------------------------


@pytest.mark.parametrize("file_urls", [False, True])
def test_a_result_not_typed_as_an_image_is_refused(image, file_urls):
    with FalFake(file_urls=file_urls) as fake:
        fake.inject("wrong-type", op="result")
        with pytest.raises(ProviderResponseError, match=r"returned a text/html file where an image was expected\."):
            make(fake).matte(image)


@pytest.mark.parametrize("file_urls", [False, True])
def test_an_oversized_result_is_refused_and_not_fetched_again(image, file_urls, monkeypatch):
    from rmbg.providers.hosted import fal

    monkeypatch.setattr(fal, "MAX_DOWNLOAD_BYTES", 200)
    with FalFake(file_urls=file_urls) as fake:
        with pytest.raises(
            ProviderResponseError,
            match=r"over the 0\.000190735 MiB limit; refused\. The provider "
            r"accepted the request \(request [0-9a-f-]+\) and may bill it\.$",
        ):
            make(fake, max_attempts=3).matte(image)
        files = [c for c in fake.calls if c.path.startswith("/files/")]
    assert len(files) == (1 if file_urls else 0)
