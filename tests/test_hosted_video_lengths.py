"""A hosted clip is priced by what it contains, never by its header (issue 57, item 1): a 59 s
Matroska whose Duration says 1.0 s, and a browser-style WebM with no Duration at all, are held,
capped and settled as what the fake vendors bill for them (whole seconds of decoded frames).
On 3f93ebc the 59 s clip was held and counted as 1 s while the vendor billed 59."""

from __future__ import annotations

import struct
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from rmbg.errors import BudgetError, InvalidRequestError
from rmbg.money.ledger import Account
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.video.decode import probe
from rmbg.video.hosted import Payer, clip_seconds
from rmbg.video.limits import VideoLimits
from rmbg.video.providers import get_video_provider
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware_video import RunwareVideoFake

FAST = RetryPolicy.immediate(max_attempts=3, deadline_s=60.0)
DURATION = b"\x44\x89\x88"  # Matroska's Duration element: its id and an 8-byte float (milliseconds)


def clip(path: Path, seconds: int, *, fmt: str, codec: str, options: dict | None = None, fps: int = 2) -> Path:
    """`seconds` of 32x32 frames at `fps` (a different grey each, a red square in the middle)."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=fps, options={"deadline": "realtime", "cpu-used": "8"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(seconds * fps):
            rgb = np.full((32, 32, 3), 40 + i % 50, np.uint8)
            rgb[10:22, 10:22] = (220, 30, 30)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def lying_mkv(path: Path, seconds: int, says_ms: float = 1000.0) -> Path:
    """A Matroska clip of `seconds` whose Duration is rewritten to `says_ms`."""
    clip(path, seconds, fmt="matroska", codec="libvpx-vp9")
    data = path.read_bytes()
    at = data.index(DURATION) + len(DURATION)
    path.write_bytes(data[:at] + struct.pack(">d", says_ms) + data[at + 8 :])
    return path


def browser_webm(path: Path, seconds: int) -> Path:
    """A WebM written as a browser records one: live, so no Duration and no cues."""
    return clip(path, seconds, fmt="webm", codec="libvpx-vp9", options={"live": "1"})


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    yield opened
    opened.close()


def test_the_clips_lie_as_described(tmp_path):
    lie = probe(lying_mkv(tmp_path / "lie59.mkv", 59), VideoLimits())
    assert lie.seconds == pytest.approx(1.0) and clip_seconds(lie) == pytest.approx(59.0)
    silent = probe(browser_webm(tmp_path / "rec.webm", 29), VideoLimits())
    assert silent.seconds is None and clip_seconds(silent) == pytest.approx(29.0)


def test_a_59_s_clip_whose_header_says_1_s_is_held_and_counted_as_59_s(tmp_path, ledger):
    source = lying_mkv(tmp_path / "lie59.mkv", 59)
    with FalVideoFake() as fake:
        remover = get_video_provider("fal-bria-video", api_key=FAL_KEY, base_url=fake.url, retry=FAST)
        payer = Payer(Policy(ledger), (Account("session:v", Decimal("10")),))
        result = rmbg.remove_video(source, remover, payer=payer)
        billed = Decimal(str(fake.usd_billed))
    assert fake.billed == [59] and billed == Decimal("2.478")
    assert ledger.spent("session:v") == billed
    [hold] = ledger.holds(None)
    assert hold.usd == 2 * billed  # held at the bound of 59 s before anything was sent
    assert result.cost.usd == billed and result.duration == pytest.approx(59.0)
    result.close()


@pytest.mark.parametrize("make", [lying_mkv, browser_webm])
def test_a_clip_over_the_cap_by_its_content_is_refused_before_anything_is_sent(tmp_path, ledger, make):
    source = make(tmp_path / f"clip{'.mkv' if make is lying_mkv else '.webm'}", 59)
    with FalVideoFake() as fake:
        remover = get_video_provider("fal-bria-video", api_key=FAL_KEY, base_url=fake.url, retry=FAST)
        payer = Payer(Policy(ledger), (Account("session:v", Decimal("0.10")),))
        with pytest.raises(BudgetError, match="59 s at"):
            rmbg.remove_video(source, remover, payer=payer)
    assert fake.calls == [] and fake.billed == [] and ledger.spent("session:v") == 0


def test_a_browser_webm_with_no_duration_is_settled_at_what_runware_reports(tmp_path, ledger):
    source = browser_webm(tmp_path / "rec.webm", 29)
    with RunwareVideoFake() as fake:
        remover = get_video_provider("runware-bria-video", api_key=RUNWARE_KEY, base_url=fake.url, retry=FAST)
        payer = Payer(Policy(ledger), (Account("day:v", Decimal("10")),))
        result = rmbg.remove_video(source, remover, payer=payer)
    assert fake.billed == [29] and ledger.spent("day:v") == Decimal("4.06") == result.cost.usd
    assert [h.usd for h in ledger.holds(None)] == [Decimal("8.12")]  # 29 s x $0.14, at the bound
    result.close()


def test_a_clip_longer_than_runware_takes_is_refused_whatever_its_header_says(tmp_path, ledger):
    source = lying_mkv(tmp_path / "lie59.mkv", 59)
    with RunwareVideoFake() as fake:
        remover = get_video_provider("runware-bria-video", api_key=RUNWARE_KEY, base_url=fake.url, retry=FAST)
        with pytest.raises(InvalidRequestError, match="up to 30 s; this one is 59.0 s"):
            rmbg.remove_video(source, remover, payer=Payer(Policy(ledger), (Account("day:v", None),)))
    assert fake.calls == [] and ledger.holds(None) == []


def test_the_command_line_estimates_and_caps_by_the_clips_content(tmp_path, monkeypatch, capsys):
    """`rmbg video lie59.mkv -p fal-bria-video --max-cost 0.10`: on 3f93ebc estimated at 1 s and
    sent (billed $2.478); now estimated at 59 s and refused with nothing sent."""
    from rmbg.cli.main import main

    source = lying_mkv(tmp_path / "lie59.mkv", 59)
    monkeypatch.setenv("RMBG_LEDGER", str(tmp_path / "ledger.sqlite3"))
    with FalVideoFake(polls_before_done=0) as fake:
        monkeypatch.setenv("FAL_KEY", FAL_KEY)
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
        out = tmp_path / "out.webm"
        assert main(["video", str(source), "-o", str(out), "-p", "fal-bria-video", "--max-cost", "0.10"]) == 1
    err = capsys.readouterr().err
    assert "1 clip(s), 59 billed s x $0.042/s = $2.48 " in err and "would be passed" in err
    assert fake.calls == [] and fake.billed == [] and not out.exists()
