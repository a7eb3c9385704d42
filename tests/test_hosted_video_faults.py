"""Hosted video faults (#44): refused, accepted then failed, slow, huge result, a
result URL on a private address, a result that is not what was asked. For
each, what the ledger keeps (rmbg.money.charging's rule, as for images), what the
error says, and that a request that may have reached the vendor is never sent
twice."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

import rmbg
from rmbg.errors import (
    ProviderAuthError,
    ProviderCreditError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.common import Fault
from tests.test_hosted_video import _vendor, clip, payer_for, settled, vendor  # noqa: F401
from tests.video_clips import davis, write_clip

ACCEPTED = "accepted the request .* and may bill it"
MAY_BE_BILLED = "may have reached the provider and been billed, so it was not sent again"
ESTIMATE = {"fal": Decimal("0.042"), "runware": Decimal("0.14")}  # one billed second of the 0.5 s clip


def run(vendor, clip, payer=None, **connection):
    payer = payer or payer_for(vendor)
    return payer, lambda: rmbg.remove_video(clip, vendor.remover(**connection), payer=payer)


# --- refused: nothing billed, nothing kept ------------------------------------------


@pytest.mark.parametrize(
    "name, fault, error",
    [
        ("fal", "admin-lock", ProviderAuthError),
        ("fal", "locked", ProviderCreditError),
        ("fal", "unauthorized", ProviderAuthError),
        ("runware", "insufficient-credits", ProviderCreditError),
        ("runware", "invalid-parameter", ProviderRejectedError),
        ("runware", "unauthorized", ProviderAuthError),
    ],
)
def test_a_refused_request_is_released(name, fault, error, clip):
    vendor = _vendor(name)
    with vendor.fake:
        vendor.fake.inject(fault, op=vendor.paid_op)
        payer, call = run(vendor, clip)
        with pytest.raises(error) as caught:
            call()
        assert "may bill" not in str(caught.value) and "not sent again" not in str(caught.value)
        assert len(vendor.paid_calls()) == 1 and settled(payer.policy) == [("released", 0)]
        assert payer.policy.spent("session:test") == 0 and vendor.fake.billed == []


def test_a_rate_limited_or_unbilled_answer_is_sent_again_and_paid_once(vendor, clip):
    vendor.fake.inject("rate-limit", op=vendor.paid_op)
    if vendor.name == "fal":
        vendor.fake.inject("unavailable", op="submit")  # fal documents its 5xx as never billed
    payer, call = run(vendor, clip)
    call().close()
    sent = len(vendor.paid_calls())
    assert sent == (3 if vendor.name == "fal" else 2)
    assert settled(payer.policy) == [("settled", ESTIMATE[vendor.name])] and len(vendor.fake.billed) == 1


# --- sent, fate unknown: kept, never sent again -----------------------------------------


@pytest.mark.parametrize("fault", ["drop", "slow", "server-error"])
def test_a_request_that_may_have_arrived_is_never_sent_twice(fault, clip):
    """A dropped connection, a read timeout, a 5xx Runware does not document as unbilled
    (fal documents its own as unbilled: that one is sent again, above)."""
    vendor = _vendor("runware" if fault == "server-error" else "fal")
    with vendor.fake:
        vendor.fake.inject(Fault(fault, op=vendor.paid_op, delay=2.0))
        payer, call = run(vendor, clip, timeout=0.5)  # read timeout 0.5 s: the slow answer comes after it
        with pytest.raises((ProviderUnavailableError, ProviderTimeoutError), match=MAY_BE_BILLED):
            call()
        assert len(vendor.paid_calls()) == 1
        assert settled(payer.policy) == [("settled", ESTIMATE[vendor.name])]  # counted at its estimate
        assert not [c for c in vendor.fake.calls if "/status" in c.path or "getResponse" in c.body.decode()]


def test_fals_422_at_submit_is_kept_as_images_are(clip):
    """fal bills a 422 that used GPU time (its FAQ): the image rule keeps it, and so does video."""
    vendor = _vendor("fal")
    with vendor.fake:
        vendor.fake.inject("invalid", op="submit")
        payer, call = run(vendor, clip)
        with pytest.raises(ProviderRejectedError, match=MAY_BE_BILLED):
            call()
        assert len(vendor.paid_calls()) == 1 and settled(payer.policy) == [("settled", ESTIMATE["fal"])]


# --- accepted, then failed: charged, and said so ------------------------------------------


@pytest.mark.parametrize("name, fault", [("fal", "failed"), ("runware", "error-item"), ("runware", "timeout-provider")])
def test_accepted_then_failed_is_charged_and_said(name, fault, clip):
    vendor = _vendor(name)
    with vendor.fake:
        vendor.fake.inject(fault, op=vendor.paid_op)
        payer, call = run(vendor, clip)
        with pytest.raises(rmbg.ProviderError, match=ACCEPTED):
            call()
        assert len(vendor.paid_calls()) == 1
        assert settled(payer.policy) == [("settled", ESTIMATE[name])]  # kept at the estimate: it may be billed
        assert not [c for c in vendor.fake.calls if c.path.endswith("/cancel")]  # fal said COMPLETED: no cancel


@pytest.mark.parametrize("unreadable", [1, 2])
def test_an_unreadable_poll_is_polled_again(vendor, clip, unreadable):
    """An accepted job whose status poll once answered 200 with a page (a proxy's hiccup) was given up at
    once: cancelled on fal and counted, paid for nothing. Fewer unreadable polls in a row than the policy's
    attempts (FAST: 3) are polled again and the clip comes back, billed once."""
    vendor.fake.inject("not-json", op="status" if vendor.name == "fal" else "poll", times=unreadable)
    payer, call = run(vendor, clip)
    call().close()
    assert len(vendor.paid_calls()) == 1 and len(vendor.fake.billed) == 1
    assert settled(payer.policy) == [("settled", ESTIMATE[vendor.name])]
    assert not [c for c in vendor.fake.calls if c.path.endswith("/cancel")]


def test_a_poll_that_stays_unreadable_ends_the_call_charged(vendor, clip):
    vendor.fake.inject("not-json", op="status" if vendor.name == "fal" else "poll", times=3)
    payer, call = run(vendor, clip)
    with pytest.raises(rmbg.ProviderError, match=r"is not JSON \(content-type text/html\)"):
        call()
    assert len(vendor.paid_calls()) == 1
    assert settled(payer.policy) == [("settled", ESTIMATE[vendor.name])]  # accepted: kept at the estimate


def test_a_slow_job_times_out_is_cancelled_on_fal_and_charged(vendor, clip):
    vendor.fake.inject("stuck", op=vendor.paid_op)
    payer, call = run(vendor, clip, retry=RetryPolicy.immediate(deadline_s=1.0, poll_interval=0.05))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=ACCEPTED) as caught:
        call()
    assert time.monotonic() - started < 10
    assert settled(payer.policy) == [("settled", ESTIMATE[vendor.name])] and len(vendor.paid_calls()) == 1
    cancels = [c for c in vendor.fake.calls if c.path.endswith("/cancel")]
    if vendor.name == "fal":
        assert len(cancels) == 1 and "Cancellation was requested" in str(caught.value)
    else:
        assert cancels == [] and "Runware has no cancel: the task may still run" in str(caught.value)


# --- the result: bounded, guarded, checked ------------------------------------------------


@pytest.mark.parametrize(
    "name, fault, said",
    [
        ("fal", "huge", "over the .* MiB limit; refused before downloading it"),
        ("fal", "huge-undeclared", "over the .* MiB limit; refused"),
        ("runware", "huge", "over the .* MiB limit; refused"),
        ("fal", "private-url", "will not fetch: Refused to fetch from 10.11.12.13: .* private address"),
        ("runware", "private-url", "will not fetch: Refused to fetch from 192.168.77.1: .* private address"),
        ("fal", "no-alpha", "without transparency"),
        ("runware", "no-alpha", "without transparency"),
        ("fal", "short", "for a clip that runs past"),
        ("runware", "not-video", "not a video we can read"),
        ("fal", "wrong-type", "text/html file where a video was expected"),
        ("fal", "missing-field", "no video.url"),
        ("runware", "missing-field", "no videoURL"),
    ],
)
def test_a_bad_result_is_refused_and_still_charged(name, fault, said, clip):
    vendor = _vendor(name)
    with vendor.fake:
        vendor.fake.huge_bytes = 20 * 2**20  # over this clip's bound (16 MiB + its frames uncompressed)
        vendor.fake.inject(fault, op=vendor.paid_op)
        payer, call = run(vendor, clip)
        with pytest.raises(ProviderResponseError, match=said) as caught:
            call()
        assert "may bill it" in str(caught.value)
        assert settled(payer.policy) == [("settled", ESTIMATE[name])] and len(vendor.paid_calls()) == 1
        if fault == "huge":
            assert not [c for c in vendor.fake.calls if "/files/" in c.path] or name != "fal"


def test_a_result_longer_than_the_limits_is_refused(clip):
    """The returned video is held to RMBG_VIDEO_MAX_SECONDS / _FRAMES as an input is, on its header
    and again while it decodes."""
    from rmbg.video.limits import VideoLimits

    vendor = _vendor("fal")
    with vendor.fake:
        original = vendor.fake._output

        def four_times(rid, job):  # the vendor sends the 0.5 s clip four times over: 2 s
            job.clip.frames = job.clip.frames * 4
            job.clip.times = [i / 24 for i in range(len(job.clip.frames))]
            return original(rid, job)

        vendor.fake._output = four_times
        payer = payer_for(vendor)
        with pytest.raises(ProviderResponseError, match="returned 2.0 s of video, over the 0.5 s limit"):
            rmbg.remove_video(clip, vendor.remover(), payer=payer, limits=VideoLimits(max_seconds=0.5))
        assert settled(payer.policy) == [("settled", ESTIMATE["fal"])]


def test_a_reported_cost_that_cannot_be_read_counts_the_estimate(clip):
    vendor = _vendor("runware")
    with vendor.fake:
        vendor.fake.inject("bad-cost", op="task")
        payer, call = run(vendor, clip)
        result = call()
        assert result.cost.usd == ESTIMATE["runware"] and result.cost.source == "estimated"
        assert settled(payer.policy) == [("settled", ESTIMATE["runware"])]


@pytest.mark.parametrize("codec, container, alpha", [("mkv_vp9", "matroska", True), ("mp4_h264", "mp4", False)])
def test_the_fake_answers_each_codec_as_fal_does(tmp_path, codec, container, alpha):
    """fal's mkv_vp9 keeps the alpha (VP9 in Matroska), as webm_vp9 and mov_proresks do; its MP4s have none."""
    import av
    import numpy as np

    from tests.fakes.fal_video import CODECS
    from tests.fakes.video import cut_out, read_clip

    source = write_clip(tmp_path / "c.mp4", davis("dog", 3))
    data = cut_out(read_clip(source.read_bytes()), CODECS[codec])
    (tmp_path / "out").write_bytes(data)
    with av.open(str(tmp_path / "out")) as got:
        assert container in got.format.name.split(",")
        stream = got.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r") if stream.codec_context.name == "vp9" else None
        if decoder is not None:
            decoder.extradata = stream.codec_context.extradata
            frames = [f for packet in got.demux(stream) for f in decoder.decode(packet)]
        else:
            frames = list(got.decode(stream))
    assert len(frames) == 3 and ("a" in frames[0].format.name) == alpha
    if alpha:
        assert np.asarray(frames[0].to_ndarray(format="rgba"))[..., 3].std() > 0  # a real matte, not solid
