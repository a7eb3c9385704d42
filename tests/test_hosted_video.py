"""Hosted video (#44): fal's bria/video/background-removal/v3 and Runware's bria:51@1
against their fakes (tests/fakes/fal_video.py, runware_video.py): the requests
follow each vendor's schema, the result is the same VideoResult a local run
gives, and the money goes through rmbg.money.paying: billed seconds x price,
reserved against the caps before anything is sent, settled by the charge rules."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import BudgetError, MissingCredentialsError
from rmbg.money.ledger import Account
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.video import VideoStopped
from rmbg.video.decode import frames, probe
from rmbg.video.hosted import Payer
from rmbg.video.limits import VideoLimits
from rmbg.video.providers import clip_estimate, get_video_provider, list_video_providers
from tests.fakes.common import simple_matte
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware_video import RunwareVideoFake
from tests.video_clips import Threshold, davis, decoded, write_clip

FAST = RetryPolicy.immediate(max_attempts=3, deadline_s=20.0)


@dataclass
class Vendor:
    name: str
    pid: str
    fake: object
    key: str
    paid_op: str  # the fake's name for the paid request, for faults

    def remover(self, **connection):
        connection.setdefault("retry", FAST)
        return get_video_provider(self.pid, api_key=self.key, base_url=self.fake.url, **connection)

    def paid_calls(self) -> list:
        if self.name == "fal":
            return [c for c in self.fake.calls if c.method == "POST" and c.path.endswith("/v3")]
        return [c for c in self.fake.calls if c.path == "/v1" and _task_type(c) == "removeBackground"]


def _task_type(call) -> str | None:
    """A Runware request's task type; None for a body cut off as the client's deadline ended it (a poll
    sent as the time ran out: no vendor runs a request it did not receive whole)."""
    try:
        return call.json()[0].get("taskType")
    except ValueError:
        return None


def _vendor(name: str):
    if name == "fal":
        return Vendor("fal", "fal-bria-video", FalVideoFake(), FAL_KEY, "submit")
    return Vendor("runware", "runware-bria-video", RunwareVideoFake(), RUNWARE_KEY, "task")


@pytest.fixture(params=["fal", "runware"])
def vendor(request):
    v = _vendor(request.param)
    with v.fake:
        yield v


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", davis("dog", 12))  # 0.5 s: 1 billed second


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "dog60.mp4", davis("dog", 60))  # 2.5 s: 3 billed seconds


class Spy(Policy):
    """The rule as it is, noting how many requests the fake had seen when each hold was reserved."""

    def __init__(self, fake):
        super().__init__()
        self.fake, self.reserved = fake, []

    def reserve(self, payment, **kw):
        hold = super().reserve(payment, **kw)
        self.reserved.append((payment, hold, len(self.fake.calls)))
        return hold


def payer_for(vendor, session=Decimal("5"), day=Decimal("10")):
    accounts = (Account("session:test", session), Account("day:test", day))
    return Payer(Spy(vendor.fake), accounts)


def settled(policy: Policy) -> list:
    return [(row.state, row.final) for row in policy.ledger.holds(state=None)]


# --- the result ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt, tolerance", [("webm", 12.0), ("mov", 1.5)])
def test_a_clip_comes_back_as_a_local_run_would(vendor, clip, tmp_path, fmt, tolerance):
    out = tmp_path / "out.webm"
    result = rmbg.remove_video(clip, vendor.remover(), output=out, hosted_format=fmt, payer=payer_for(vendor))
    local = rmbg.remove_video(clip, Threshold(), smooth=False)
    assert (
        (result.frames, result.duration, result.size)
        == (local.frames, local.duration, local.size)
        == (12, pytest.approx(0.5), (214, 120))
    )
    assert result.provider == vendor.pid and not result.smooth  # a video model's mattes are kept as they are
    assert result.meta["request_id"] and result.seconds.total >= result.seconds.model > 0
    info = probe(clip, VideoLimits())
    for frame, alpha in zip(frames(info, VideoLimits()), result.mattes(), strict=True):
        want = np.asarray(simple_matte(Image.fromarray(frame.rgb)), dtype=float)
        assert np.abs(alpha - want).mean() < tolerance  # the vendor's alpha, through its codec
    written, _ = decoded(out, alpha=True)
    assert len(written) == 12 and written[0].shape == (120, 214, 4)
    again = result.save(tmp_path / "again.mov")  # saved again from the stored mattes: nothing is sent
    assert again.exists() and len(vendor.paid_calls()) == 1
    result.close()
    local.close()


def test_the_requests_follow_the_vendors_schema(vendor, clip):
    rmbg.remove_video(clip, vendor.remover(), hosted_format="mov", payer=payer_for(vendor)).close()
    (paid,) = vendor.paid_calls()
    sent = clip.read_bytes()
    if vendor.name == "fal":
        assert paid.headers["authorization"] == f"Key {FAL_KEY}"
        body = paid.json()
        assert body["output_container_and_codec"] == "mov_proresks" and body["preserve_audio"] is False
        head, _, data = body["video_url"].partition(",")
        assert head == "data:video/mp4;base64" and base64.b64decode(data) == sent
        assert set(body) == {"video_url", "output_container_and_codec", "preserve_audio"}
        polls = [c for c in vendor.fake.calls if c.path.endswith("/status")]
        assert polls and all(c.headers["authorization"] == f"Key {FAL_KEY}" for c in polls)
    else:
        upload = next(c for c in vendor.fake.calls if c.json()[0]["taskType"] == "mediaStorage")
        stored = upload.json()[0]
        assert stored["operation"] == "upload" and stored["media"].startswith("data:video/mp4;base64,")
        assert base64.b64decode(stored["media"].partition(",")[2]) == sent
        (task,) = paid.json()
        assert task["inputs"]["video"] in vendor.fake.media  # the stored clip's mediaUUID
        assert {k: task[k] for k in ("taskType", "model", "outputType", "outputFormat", "deliveryMethod")} == {
            "taskType": "removeBackground", "model": "bria:51@1", "outputType": "URL", "outputFormat": "MOV",
            "deliveryMethod": "async",
        }  # fmt: skip
        assert task["settings"] == {"rgba": [0, 0, 0, 0]} and task["includeCost"] is True
        assert paid.headers["authorization"] == f"Bearer {RUNWARE_KEY}"
    downloads = [c for c in vendor.fake.calls if c.method == "GET" and not c.path.endswith("/status")]
    results = [c for c in downloads if c.path.startswith(("/files/", "/video/"))]
    assert results and all("authorization" not in c.headers for c in results)  # no key to the result host


def test_a_large_clip_goes_up_through_fals_storage(clip):
    with FalVideoFake() as fake:
        remover = get_video_provider("fal-bria-video", api_key=FAL_KEY, base_url=fake.url, retry=FAST)
        remover.rest_url = fake.url
        remover.data_uri_max = 0  # every clip is "large"
        rmbg.remove_video(clip, remover, payer=Payer(Policy(), (Account("day:t", None),))).close()
        token, upload, submit = fake.calls[:3]
        assert (token.path, token.query["storage_type"], token.headers["authorization"]) == (
            "/storage/auth/token",
            ["fal-cdn-v3"],
            f"Key {FAL_KEY}",
        )
        assert upload.path == "/files/upload" and upload.body == clip.read_bytes()
        assert upload.headers["authorization"].startswith("Bearer ") and FAL_KEY not in upload.headers["authorization"]
        assert submit.json()["video_url"].startswith(f"{fake.url}/files/")


# --- money -------------------------------------------------------------------------


@pytest.mark.parametrize("name, cost", [("fal", Decimal("0.126")), ("runware", Decimal("0.42"))])
def test_billed_seconds_times_price_is_held_before_sending_and_settled(name, cost, long_clip):
    vendor = _vendor(name)
    with vendor.fake:
        payer = payer_for(vendor)
        result = rmbg.remove_video(long_clip, vendor.remover(), payer=payer)
        ((payment, hold, seen_then),) = payer.policy.reserved
        assert seen_then == 0  # reserved before any request reached the vendor
        assert payment.estimate == cost and hold.usd == 2 * cost  # 3 billed s (2.5 s rounded up) x price, held 2x
        assert "3 s at $" in payment.unit and set(hold.accounts) == {"session:test", "day:test"}
        assert result.cost.usd == cost == Decimal(str(vendor.fake.usd_billed))  # the vendor's bill
        assert settled(payer.policy) == [("settled", cost)]
        assert payer.policy.spent("session:test") == payer.policy.spent("day:test") == cost
        result.close()


def test_a_cap_refuses_before_anything_is_sent(vendor, long_clip):
    payer = payer_for(vendor, session=Decimal("0.05"))  # less than the clip's estimate
    with pytest.raises(BudgetError, match="session has spent \\$0.*cap"):
        rmbg.remove_video(long_clip, vendor.remover(), payer=payer)
    assert vendor.fake.calls == [] and settled(payer.policy) == []
    day = payer_for(vendor, day=Decimal("0.01"))
    with pytest.raises(BudgetError):
        rmbg.remove_video(long_clip, vendor.remover(), payer=day)
    assert vendor.fake.calls == [] and settled(day.policy) == []


def test_the_vendors_longest_clip_is_checked_before_anything_is_paid(tmp_path):
    long = write_clip(tmp_path / "long.mp4", [np.full((32, 32, 3), i, np.uint8) for i in range(31)], rate=1)
    vendor = _vendor("runware")  # Runware takes 30 s at most
    with vendor.fake:
        payer = payer_for(vendor)
        with pytest.raises(rmbg.InvalidRequestError, match="up to 30 s; this one is 31.0 s"):
            rmbg.remove_video(long, vendor.remover(), payer=payer)
        assert vendor.fake.calls == [] and payer.policy.reserved == []


def test_no_key_and_a_stop_send_nothing(vendor, clip):
    payer = payer_for(vendor)
    remover = get_video_provider(vendor.pid, base_url=vendor.fake.url, retry=FAST)
    with pytest.raises(MissingCredentialsError):
        rmbg.remove_video(clip, remover, payer=payer)
    stop = type("Stop", (), {"is_set": staticmethod(lambda: True)})()
    with pytest.raises(VideoStopped):
        rmbg.remove_video(clip, vendor.remover(), payer=payer, stop=stop)
    assert vendor.fake.calls == [] and all(state == "released" for state, _ in settled(payer.policy))
    assert payer.policy.spent("session:test") == 0


def test_a_stop_once_the_clip_is_paid_for_still_writes_its_result(vendor, clip, tmp_path):
    import threading

    stop = threading.Event()
    result = rmbg.remove_video(
        clip, vendor.remover(), output=tmp_path / "o.webm", payer=payer_for(vendor), stop=stop,
        progress=lambda done, total: stop.set() if done >= 1 else None,
    )  # fmt: skip
    assert stop.is_set() and result.frames == 12 and (tmp_path / "o.webm").exists()
    result.close()


def test_an_unknown_id_lists_the_video_providers(clip):
    with pytest.raises(rmbg.UnknownProviderError, match="Video providers: .*u2netp.*fal-bria-video, runware-bria"):
        rmbg.remove_video(clip, "fal-video")


def test_the_library_pays_on_the_operators_day_by_default(monkeypatch, clip):
    monkeypatch.setenv("RMBG_DAILY_CAP_USD", "0.01")
    vendor = _vendor("fal")
    with vendor.fake:
        with pytest.raises(BudgetError, match="daily budget"):
            rmbg.remove_video(clip, vendor.remover())
        assert vendor.fake.calls == []


# --- the listing the app's Video tab reads --------------------------------------------


def test_video_providers_are_listed_with_their_price_per_second():
    rows = {row.id: row for row in list_video_providers()}
    assert rows["fal-bria-video"].usd_per_second == Decimal("0.042")
    assert rows["runware-bria-video"].usd_per_second == Decimal("0.14")
    assert rows["fal-bria-video"].kind == "hosted" and rows["fal-bria-video"].key_env == "FAL_KEY"
    assert rows["runware-bria-video"].max_seconds == 30 and rows["fal-bria-video"].max_seconds == 60
    assert rows["u2netp"].kind == "local" and rows["u2netp"].usd_per_second is None and "sam2" not in rows
    assert (
        rows["cloudflare-bria-video"].usd_per_second == Decimal("0.0225")
        and rows["cloudflare-bria-video"].max_seconds == 60
    )
    assert [row.id for row in rows.values() if row.kind == "hosted"] == [
        "fal-bria-video", "runware-bria-video", "cloudflare-bria-video"
    ]  # fmt: skip
    assert rows["fal-bria-video"].price_text == "$0.042/s of video"
    assert clip_estimate("fal-bria-video", 4.2).usd == Decimal("0.210")  # 5 billed seconds
    assert clip_estimate("runware-bria-video", 5.0).usd == Decimal("0.70")  # a whole second is not rounded up


# --- a clip as a phone films it, or larger than the processing size ----------------------


def test_a_rotated_clip_and_a_scaled_one_get_the_vendors_alpha_upright_and_fitted(tmp_path):
    """The fake, as a vendor may, ignores the rotate tag and answers at the file's full size:
    its alpha is turned as our frames are and scaled to the size we process."""
    rotated = write_clip(tmp_path / "r.mp4", davis("dog", 6), rotation=90)
    vendor = _vendor("fal")
    with vendor.fake:
        result = rmbg.remove_video(rotated, vendor.remover(), payer=payer_for(vendor))
        info = probe(rotated, VideoLimits())
        assert result.size == (120, 214) and info.rotation % 180 == 90
        for frame, alpha in zip(frames(info, VideoLimits()), result.mattes(), strict=True):
            want = np.asarray(simple_matte(Image.fromarray(frame.rgb)), dtype=float)
            assert alpha.shape == (214, 120) and np.abs(alpha - want).mean() < 12
        small = VideoLimits(max_long=107, max_short=60)
        scaled = rmbg.remove_video(write_clip(tmp_path / "s.mp4", davis("dog", 6)), vendor.remover(),
                                   payer=payer_for(vendor), limits=small)  # fmt: skip
        assert scaled.size == (107, 60) and next(scaled.mattes()).shape == (60, 107) and scaled.note
        result.close()
        scaled.close()
