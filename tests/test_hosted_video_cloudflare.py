"""Cloudflare Workers AI's bria/v-rmbg-3.0 (rmbg.providers.hosted.cloudflare_video) against its fake
(tests/fakes/cloudflare_video.py, built from Cloudflare's model and errors pages): the request is the
model page's, the clip comes back with its alpha as a local run's would, the money is reserved before
anything is sent and settled by the charge rules, errors are worded in Cloudflare's own terms, a
request that may have reached Cloudflare is never sent twice, and the token is in no message."""

from __future__ import annotations

import base64
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import (
    BudgetError,
    MissingCredentialsError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from rmbg.video.decode import frames, probe
from rmbg.video.limits import VideoLimits
from rmbg.video.providers import clip_estimate, get_video_provider, hosted_video_info
from tests.fakes.cloudflare_video import ACCOUNT, TEST_KEY, TOKEN, CloudflareVideoFake
from tests.fakes.common import Fault, simple_matte
from tests.test_hosted_video import FAST, Vendor, clip, payer_for, settled  # noqa: F401
from tests.video_clips import Threshold, davis, decoded, write_clip

PID = "cloudflare-bria-video"
ONE_SECOND = Decimal("0.0225")  # the 0.5 s clip: one billed second
MAY_BE_BILLED = "may have reached the provider and been billed, so it was not sent again"


class Cloudflare(Vendor):
    def paid_calls(self) -> list:
        return [c for c in self.fake.calls if c.method == "POST" and c.path.endswith("/ai/run")]


@pytest.fixture
def cf():
    with CloudflareVideoFake() as fake:
        yield Cloudflare("cloudflare", PID, fake, TEST_KEY, "run")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """2.5 s at 8 frames a second (20 frames): 3 billed seconds, as the 60 frames at 24 of test_hosted_video."""
    return write_clip(tmp_path_factory.mktemp("clips") / "dog2.5s.mp4", davis("dog", 20), rate=8)


def call(vendor, clip, **connection):
    payer = payer_for(vendor)
    return payer, lambda: rmbg.remove_video(clip, vendor.remover(**connection), payer=payer)


def test_a_clip_comes_back_with_its_alpha_as_a_local_run_would(cf, clip, tmp_path):
    out = tmp_path / "out.webm"
    payer = payer_for(cf)
    result = rmbg.remove_video(clip, cf.remover(), output=out, payer=payer)  # webm asked: Cloudflare sends ProRes
    local = rmbg.remove_video(clip, Threshold(), smooth=False)
    assert (result.frames, result.duration, result.size) == (local.frames, local.duration, local.size)
    assert result.provider == PID and result.meta["request_id"].endswith("-SJC")
    info = probe(clip, VideoLimits())
    for frame, alpha in zip(frames(info, VideoLimits()), result.mattes(), strict=True):
        want = np.asarray(simple_matte(Image.fromarray(frame.rgb)), dtype=float)
        assert np.abs(alpha - want).mean() < 1.5  # ProRes 4444 keeps the alpha nearly exactly
    written, _ = decoded(out, alpha=True)
    assert len(written) == 12 and written[0].shape == (120, 214, 4)
    assert result.cost.usd == ONE_SECOND and settled(payer.policy) == [("settled", ONE_SECOND)]
    result.close()
    local.close()


def test_the_request_is_the_model_pages(cf, clip):
    rmbg.remove_video(clip, cf.remover(), payer=payer_for(cf)).close()
    (paid,) = cf.paid_calls()
    assert paid.path == f"/accounts/{ACCOUNT}/ai/run" and paid.headers["authorization"] == f"Bearer {TOKEN}"
    body = paid.json()
    assert body["model"] == "bria/v-rmbg-3.0" and set(body) == {"model", "input"}
    given = body["input"]
    head, _, data = given.pop("video").partition(",")
    assert head == "data:video/mp4;base64" and base64.b64decode(data) == clip.read_bytes()
    assert given == {"background_color": "Transparent", "output_container_and_codec": "mov_proresks",
                     "preserve_audio": False}  # fmt: skip
    results = [c for c in cf.fake.calls if c.method == "GET"]
    assert len(results) == 1 and "authorization" not in results[0].headers  # no token to the result host


def test_the_account_comes_from_the_key_the_argument_or_the_environment(cf, clip, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    token_only = get_video_provider(PID, api_key=TOKEN, base_url=cf.fake.url, retry=FAST)
    assert token_only.status().state == "needs_key" and "needs CLOUDFLARE_ACCOUNT_ID" in token_only.status().message
    assert cf.remover().status().state == "ready"  # ACCOUNT_ID:API_TOKEN in one key
    with pytest.raises(MissingCredentialsError, match="CLOUDFLARE_ACCOUNT_ID") as caught:
        rmbg.remove_video(clip, token_only, payer=payer_for(cf))
    assert TOKEN not in str(caught.value) and cf.fake.calls == []
    named = get_video_provider(PID, api_key=TOKEN, account_id=ACCOUNT, base_url=cf.fake.url, retry=FAST)
    assert named.status().state == "ready"
    rmbg.remove_video(clip, named, payer=payer_for(cf), cache=None).close()  # sent each time: the path is the test
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    remover = get_video_provider(PID, base_url=cf.fake.url, retry=FAST)
    assert remover.status().state == "ready"
    rmbg.remove_video(clip, remover, payer=payer_for(cf), cache=None).close()
    assert [c.path for c in cf.paid_calls()] == [f"/accounts/{ACCOUNT}/ai/run"] * 2


def test_the_host_is_read_from_the_vendors_declared_setting(cf, clip, monkeypatch):
    from rmbg.settings_declared import SETTINGS

    (declared,) = [s for s in SETTINGS if s.name == "RMBG_CLOUDFLARE_URL"]
    assert declared.default == "https://api.cloudflare.com/client/v4" == get_video_provider(PID).base_url
    monkeypatch.setenv("RMBG_CLOUDFLARE_URL", cf.fake.url)
    rmbg.remove_video(clip, get_video_provider(PID, api_key=TEST_KEY, retry=FAST), payer=payer_for(cf)).close()
    assert len(cf.paid_calls()) == 1


def test_no_token_sends_nothing_and_says_which_variable(cf, clip, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    payer = payer_for(cf)
    with pytest.raises(MissingCredentialsError, match="set the environment variable CLOUDFLARE_API_TOKEN"):
        rmbg.remove_video(clip, get_video_provider(PID, base_url=cf.fake.url), payer=payer)
    assert cf.fake.calls == [] and settled(payer.policy) == [("released", 0)]


def test_the_enveloped_answer_is_read_too(clip):
    with CloudflareVideoFake(envelope=True) as fake:
        vendor = Cloudflare("cloudflare", PID, fake, TEST_KEY, "run")
        result = rmbg.remove_video(clip, vendor.remover(), payer=payer_for(vendor))
        assert result.frames == 12 and result.cost.usd == ONE_SECOND
        result.close()


# --- money -------------------------------------------------------------------------


def test_billed_seconds_times_price_is_held_before_sending_and_settled(cf, long_clip):
    payer = payer_for(cf)
    result = rmbg.remove_video(long_clip, cf.remover(), payer=payer)
    ((payment, hold, seen_then),) = payer.policy.reserved
    assert seen_then == 0 and payment.estimate == Decimal("0.0675")  # 2.5 s -> 3 billed s x $0.0225
    assert "3 s at $0.0225/s" in payment.unit and hold.usd == Decimal("0.1350")
    assert result.cost.usd == Decimal("0.0675") == Decimal(str(cf.fake.usd_billed))
    assert settled(payer.policy) == [("settled", Decimal("0.0675"))]
    result.close()


def test_a_cap_refuses_before_anything_is_sent(cf, long_clip):
    payer = payer_for(cf, session=Decimal("0.05"))
    with pytest.raises(BudgetError):
        rmbg.remove_video(long_clip, cf.remover(), payer=payer)
    assert cf.fake.calls == [] and settled(payer.policy) == []


def test_the_listing_and_the_estimate_come_from_the_declaration():
    row = hosted_video_info(PID)
    assert (row.usd_per_second, row.max_seconds, row.key_env) == (Decimal("0.0225"), 60.0, "CLOUDFLARE_API_TOKEN")
    assert row.price_text == "$0.0225/s of video" and row.licence.name == "Cloudflare terms"
    assert clip_estimate(PID, 4.2).usd == Decimal("0.1125")  # 5 billed seconds
    remover = get_video_provider(PID)
    assert (remover.usd_per_second, remover.max_seconds, remover.label) == (row.usd_per_second, 60.0, row.label)
    with pytest.raises(rmbg.UnknownProviderError, match="takes whole clips, not images: use rmbg.remove_video"):
        rmbg.get_provider(PID)


# --- errors: refused (released), may have run (kept, never sent twice) ---------------------


@pytest.mark.parametrize(
    "fault, error, said",
    [
        ("unauthorized", ProviderAuthError, "API key was rejected \\(HTTP 401: 10000: Authentication error\\)"),
        ("forbidden", ProviderAuthError, "may not use bria/v-rmbg-3.0 \\(5018: The account is not allowed"),
        ("account-limited", ProviderCreditError, "used up its Workers AI allocation \\(3036: You have used up"),
        ("refused", ProviderRejectedError, "rejected the clip \\(HTTP 400\\): The input video failed content"),
        ("too-large", ProviderRejectedError, "rejected the clip \\(HTTP 413\\): 3006: Request is too large"),
    ],
)
def test_a_refusal_is_released_and_worded(cf, clip, fault, error, said):
    cf.fake.inject(fault, op="run", times=5)
    payer, run = call(cf, clip)
    with pytest.raises(error, match=said) as caught:
        run()
    assert "not sent again" not in str(caught.value) and TOKEN not in str(caught.value)
    assert settled(payer.policy) == [("released", 0)] and cf.fake.billed == []
    assert len(cf.paid_calls()) == (3 if fault == "account-limited" else 1)  # a 429 is refused before it runs


def test_the_token_is_in_no_message_even_when_cloudflare_quotes_it(cf, clip):
    cf.fake.inject("echo-key", op="run")
    payer, run = call(cf, clip)
    with pytest.raises(ProviderRejectedError, match="rejected the clip \\(HTTP 400\\): Bad request with") as caught:
        run()
    said = f"{caught.value} {caught.value.excerpt}"
    assert TOKEN not in said and TOKEN[:8] not in said and TOKEN[-8:] not in said
    assert settled(payer.policy) == [("released", 0)]


def test_a_token_for_another_account_is_refused_and_released(cf, clip):
    payer = payer_for(cf)
    other = get_video_provider(PID, api_key=f"{'f' * 32}:{TOKEN}", base_url=cf.fake.url, retry=FAST)
    with pytest.raises(ProviderAuthError, match="HTTP 403: 10000: Authentication error\\). Check the key you entered"):
        rmbg.remove_video(clip, other, payer=payer)
    assert len(cf.paid_calls()) == 1 and settled(payer.policy) == [("released", 0)]


def test_out_of_capacity_is_sent_again_and_paid_once(cf, clip):
    cf.fake.inject("out-of-capacity", op="run", retry_after="0")
    payer, run = call(cf, clip)
    run().close()
    assert len(cf.paid_calls()) == 2 and settled(payer.policy) == [("settled", ONE_SECOND)]
    assert cf.fake.billed == [1]


def test_out_of_capacity_every_time_is_a_rate_limit_released(cf, clip):
    cf.fake.inject("out-of-capacity", op="run", times=5)
    payer, run = call(cf, clip)
    with pytest.raises(ProviderRateLimitError, match="rate limited \\(HTTP 429\\) after 3 attempts"):
        run()
    assert settled(payer.policy) == [("released", 0)]


@pytest.mark.parametrize(
    "fault, error",
    [
        ("server-error", ProviderUnavailableError),
        ("unavailable", ProviderUnavailableError),
        ("timeout", ProviderTimeoutError),  # 3007: the inference may have run
        ("drop", ProviderUnavailableError),
        ("slow", ProviderTimeoutError),
    ],
)
def test_a_request_that_may_have_run_is_kept_and_never_sent_twice(cf, clip, fault, error):
    cf.fake.inject(Fault(fault, op="run", delay=2.0))
    payer, run = call(cf, clip, timeout=0.5)  # the slow answer comes after the 0.5 s read timeout
    with pytest.raises(error, match=MAY_BE_BILLED):
        run()
    assert len(cf.paid_calls()) == 1 and settled(payer.policy) == [("settled", ONE_SECOND)]


@pytest.mark.parametrize(
    "fault, said",
    [
        ("failed-state", "the run ended 'Failed', not Completed"),
        ("unsuccessful", "the run failed: Inference failed"),
        ("not-json", "the answer is not JSON \\(content-type text/html\\)"),
        ("missing-field", "the result has no video URL"),
        ("no-alpha", "without transparency"),
        ("not-video", "not a video we can read"),
        ("wrong-type", "text/html file where a video was expected"),
        ("private-url", "will not fetch: Refused to fetch from 10.11.12.13: .* private address"),
        ("huge", "over the .* MiB limit; refused"),
        ("short", "for a clip that runs past"),
    ],
)
def test_a_bad_answer_or_result_is_refused_and_still_charged(cf, clip, fault, said):
    cf.fake.huge_bytes = 20 * 2**20  # over this clip's bound (16 MiB + its frames uncompressed)
    cf.fake.inject(fault, op="run")
    payer, run = call(cf, clip)
    with pytest.raises(ProviderResponseError, match=said) as caught:
        run()
    assert "billed" in str(caught.value) or "may bill" in str(caught.value)
    assert len(cf.paid_calls()) == 1 and settled(payer.policy) == [("settled", ONE_SECOND)]


def test_a_clip_over_60_s_is_refused_before_anything_is_paid(cf, tmp_path):
    long = write_clip(tmp_path / "long.mp4", [np.full((32, 32, 3), i, np.uint8) for i in range(61)], rate=1)
    payer = payer_for(cf)
    with pytest.raises(rmbg.InvalidRequestError, match="up to 60 s; this one is 61.0 s"):
        rmbg.remove_video(long, cf.remover(), payer=payer, limits=VideoLimits(max_seconds=120))
    assert cf.fake.calls == [] and payer.policy.reserved == []


# --- the web app: the visitor's key box -------------------------------------------------


def test_the_video_tab_runs_it_with_the_visitors_one_box_key(cf, tmp_path):
    """A visitor pastes ACCOUNT_ID:API_TOKEN in the Cloudflare key box; the server shares no key of its own."""
    pytest.importorskip("gradio")
    from rmbg.webapp import AppConfig, Keys
    from rmbg.webapp.catalog import SessionKeyMissing, key_slot
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.video.clips import Upload
    from rmbg.webapp.video.compare import compare
    from tests.test_video_side_by_side import counting_model

    clip6 = write_clip(tmp_path / "dog.mp4", davis("dog", 6))
    config = AppConfig(provider_config={PID: {"base_url": cf.fake.url}}, cap_usd=Decimal("1"), allow_server_keys=False)
    app = App.create(config, store=OutputStore(tmp_path / "out"), cache=None)
    assert key_slot(PID) == "cloudflare"
    with counting_model() as model:
        with pytest.raises(SessionKeyMissing, match="paste your Cloudflare key"):
            compare(app, Upload(clip6, clip6.name), ["threshold", PID], Keys(), session_id="v")
        assert model.calls == 0 and cf.fake.calls == []
        compare(app, Upload(clip6, clip6.name), ["threshold", PID], Keys(cloudflare=TEST_KEY), session_id="v")
    assert model.calls == 6 and len(cf.paid_calls()) == 1
    assert app.ledger.session_spent("v") == ONE_SECOND


# --- the command line: the operator's two variables ------------------------------------


def test_rmbg_video_runs_it_on_the_operators_token_and_account(cf, clip, tmp_path, monkeypatch, capsys):
    from rmbg.cli.main import main
    from rmbg.cli.video import uncertain_marker

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("RMBG_CLOUDFLARE_URL", cf.fake.url)
    out = tmp_path / "out.webm"
    run = ["video", str(clip), "-o", str(out), "--provider", PID]
    assert main(run) == 2 and cf.fake.calls == []  # a paid run needs --yes or --max-cost
    assert "1 clip(s), 1 billed s x $0.0225/s = $0.0225" in capsys.readouterr().err
    cf.fake.inject("server-error", op="run")
    assert main([*run, "--yes"]) == 1 and uncertain_marker(out).exists()
    assert main([*run, "--yes"]) == 1 and len(cf.paid_calls()) == 1  # may have been billed: not sent again
    assert main([*run, "--yes", "--retry-uncertain"]) == 0
    frames_, _ = decoded(out, alpha=True)
    assert len(cf.paid_calls()) == 2 and len(frames_) == 12 and frames_[0][..., 3].std() > 20
    assert TOKEN not in capsys.readouterr().err
