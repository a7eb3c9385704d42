"""Photoroom's sandbox quota, counted on our side (issue 57, item 8): 100 calls a day and 1,000 a
month per sandbox key. A batch stops with words at the quota, before the vendor refuses; on
3f93ebc a batch of 150 met the fake's refusal midway, unexplained."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from PIL import Image

from rmbg.cli.main import main
from rmbg.errors import ProviderCreditError
from rmbg.money.ledger import open_ledger
from rmbg.providers.hosted import sandbox_quota
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.providers.hosted.sandbox_quota import SandboxBook
from rmbg.registry import get_provider
from tests.fakes.common import refused_url
from tests.fakes.photoroom import PhotoroomFake

SANDBOX = "sandbox_pr-test-key"


def at(day: int, month: int = 11) -> float:
    return datetime(2026, month, day, 12, tzinfo=timezone.utc).timestamp()


def test_a_batch_of_150_stops_at_the_days_100_with_words(tmp_path, monkeypatch, capsys):
    import time
    from types import SimpleNamespace

    from rmbg.providers.hosted import photoroom

    # the calls counted on one day whenever the run is (a run across midnight UTC counts a new day's 100)
    clock = SimpleNamespace(time=lambda: at(26), perf_counter=time.perf_counter, monotonic=time.monotonic)
    monkeypatch.setattr(photoroom, "time", clock)
    (tmp_path / "in").mkdir()
    for n in range(105):
        Image.new("RGB", (8, 8), (n, 200 - n, 30)).save(tmp_path / "in" / f"{n:03}.png")
    with PhotoroomFake() as fake:
        monkeypatch.setenv("PHOTOROOM_API_KEY", SANDBOX)
        monkeypatch.setenv("RMBG_PHOTOROOM_URL", fake.url)
        code = main(["remove", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", "photoroom", "--jobs", "4"])
    out = capsys.readouterr().out
    assert code == 1 and fake.sandbox_calls == 100 and fake.sandbox_refused == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 100
    assert "Done 100" in out and "this sandbox key has made its 100 calls today (UTC)" in out


def test_the_month_counts_across_days_and_processes(tmp_path):
    book = open_ledger().book(SandboxBook)
    for day in range(1, 11):
        assert all(book.take(SANDBOX, now=at(day)) is None for _ in range(100))
    assert book.take(SANDBOX, now=at(11)) == ("month", 1000)
    assert book.calls(SANDBOX, now=at(10)) == (100, 1000)
    assert book.take(SANDBOX, now=at(1, month=12)) is None  # a new month
    assert book.take("sandbox_another-key", now=at(11)) is None  # each key its own quota


def test_a_call_that_never_left_is_given_back(tmp_path):
    provider = get_provider("photoroom", api_key=SANDBOX, base_url=refused_url(), retry=RetryPolicy.immediate())
    with pytest.raises(Exception, match="could not be reached"):
        provider.matte(Image.new("RGB", (8, 8)))
    assert open_ledger().book(SandboxBook).calls(SANDBOX) == (0, 0)


def test_a_call_counted_before_midnight_that_never_left_is_given_back_to_its_own_day(monkeypatch):
    """Counted at 23:59:59.5 UTC, refused by the network half a second later: the call goes back to the day
    (and month) it was counted in. It went to the next day's count (none there to give back), leaving the
    first day one call short of its 100."""
    import time
    from types import SimpleNamespace

    from rmbg.providers.hosted import photoroom

    before, after = at(26) + 12 * 3600 - 0.5, at(26) + 12 * 3600 + 0.5  # either side of 27 Nov, 00:00 UTC
    clock = SimpleNamespace(time=lambda: before, perf_counter=time.perf_counter, monotonic=time.monotonic)
    monkeypatch.setattr(photoroom, "time", clock)  # when the provider counts the call
    later = iter([before])  # the quota book's own clock: the count, then past midnight
    monkeypatch.setattr(sandbox_quota, "time", SimpleNamespace(time=lambda: next(later, after)))
    provider = get_provider("photoroom", api_key=SANDBOX, base_url=refused_url(), retry=RetryPolicy.immediate())
    with pytest.raises(Exception, match="could not be reached"):
        provider.matte(Image.new("RGB", (8, 8)))
    book = open_ledger().book(SandboxBook)
    assert book.calls(SANDBOX, now=before) == (0, 0)
    assert book.calls(SANDBOX, now=after) == (0, 0)


def test_the_refusal_is_a_credit_error_naming_the_quota():
    error = sandbox_quota.full_words("photoroom", "month", 1000)
    assert isinstance(error, ProviderCreditError)
    assert "made its 1,000 calls this month (UTC)" in str(error) and "nothing was sent" in str(error)
