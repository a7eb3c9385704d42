"""One clip through one hosted video service is one paid call (rmbg.video.answers): the same clip asked
for again (another format, another background, a client that retried) or while its first call is still
out (a double click, two visitors) is written from the service's kept answer at no new charge, against
the vendors' fakes counting their paid requests. Before, each was a paid call of its own: three identical
clips at once, three times the clip's seconds."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

import rmbg
from rmbg.cache import payer_scope
from rmbg.errors import ProviderError
from rmbg.video.answers import VideoAnswers, clip_digest, default_answers
from rmbg.video.providers import get_video_provider
from tests.test_hosted_video import FAST, _vendor, payer_for, settled
from tests.test_hosted_video import clip as clip  # noqa: F401  (the module's 12-frame clip fixture)
from tests.test_hosted_video import vendor as vendor  # noqa: F401  (fal and runware, each on its fake)
from tests.video_clips import davis, write_clip

PRICE = {"fal": Decimal("0.042"), "runware": Decimal("0.14")}  # one billed second of the 0.5 s clip


def held(vendor, gate: threading.Event, entered: threading.Event):
    """The vendor's remover, its paid call held until `gate` is set (`entered` says it is out)."""
    base = type(vendor.remover())

    class Held(base):  # type: ignore[misc, valid-type]
        def remove(self, job, folder):
            entered.set()
            assert gate.wait(60)
            return super().remove(job, folder)

    return Held(api_key=vendor.key, base_url=vendor.fake.url, retry=FAST)


def waiting(key, count: int) -> int:
    """The callers waiting for the answer under `key`, once `count` do (a state, not a time; at most 60 s)."""
    deadline = time.monotonic() + 60
    while default_answers().waiters(key) < count and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    return default_answers().waiters(key)


def key_of(remover, clip: Path) -> tuple[str, str, str, str]:
    return (clip_digest(clip), remover.id, payer_scope(remover), "webm")


def test_the_same_clip_again_is_written_from_the_kept_answer_at_no_charge(vendor, clip, tmp_path):
    payer = payer_for(vendor)
    first = rmbg.remove_video(clip, vendor.remover(), output=tmp_path / "a.webm", payer=payer)
    again = rmbg.remove_video(clip, vendor.remover(), output=tmp_path / "b.mov", payer=payer)  # another format
    assert len(vendor.paid_calls()) == 1
    assert first.cost.usd == PRICE[vendor.name] and again.cost.usd == 0 and again.cost.source == "free"
    assert "kept from an earlier call: no new charge" in again.cost.note
    assert payer.policy.spent("session:test") == PRICE[vendor.name]
    assert [state for state, _ in settled(payer.policy)] == ["settled"]
    assert again.frames == first.frames == 12 and again.meta == first.meta
    for a, b in zip(first.mattes(), again.mattes(), strict=True):
        assert np.array_equal(a, b)  # the same answer, read the same way
    assert (tmp_path / "b.mov").stat().st_size > 0
    first.close()
    again.close()


def test_without_the_cache_or_with_another_clip_the_clip_is_sent(clip, tmp_path):
    vendor = _vendor("fal")  # the key is the vendor's alike: one vendor is enough here
    with vendor.fake:
        payer = payer_for(vendor)
        rmbg.remove_video(clip, vendor.remover(), payer=payer).close()  # kept
        rmbg.remove_video(clip, vendor.remover(), payer=payer, cache=None).close()  # sent though it is kept
        other = write_clip(tmp_path / "other.mp4", davis("dog", 12)[::-1])  # other bytes, same length
        rmbg.remove_video(other, vendor.remover(), payer=payer).close()
        rmbg.remove_video(clip, vendor.remover(), payer=payer, hosted_format="mov").close()  # another answer asked
        assert len(vendor.paid_calls()) == 4
    assert payer.policy.spent("session:test") == 4 * PRICE["fal"]


def test_three_identical_clips_at_once_make_one_paid_call(vendor, clip, tmp_path):
    gate, entered = threading.Event(), threading.Event()
    remover = held(vendor, gate, entered)
    payer = payer_for(vendor)
    results: dict[int, object] = {}

    def run(n: int) -> None:
        results[n] = rmbg.remove_video(clip, remover, output=tmp_path / f"{n}.webm", payer=payer)

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    assert entered.wait(60)  # the first is out at the vendor
    threads += [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for t in threads[1:]:
        t.start()
    assert waiting(key_of(remover, clip), 2) == 2  # the two others wait for it: nothing reserved for them
    assert len(payer.policy.ledger.holds(state=None)) == 1
    gate.set()
    for t in threads:
        t.join(120)
    costs = sorted(results[n].cost.usd for n in range(3))  # type: ignore[attr-defined]
    assert costs == [0, 0, PRICE[vendor.name]]
    assert len(vendor.paid_calls()) == 1 and payer.policy.spent("session:test") == PRICE[vendor.name]
    assert [(tmp_path / f"{n}.webm").stat().st_size > 0 for n in range(3)] == [True] * 3
    for n in range(3):
        results[n].close()  # type: ignore[attr-defined]


def test_a_failed_first_call_leaves_the_next_caller_to_make_its_own(clip, tmp_path):
    from tests.fakes.fal import TEST_KEY
    from tests.fakes.fal_video import FalVideoFake

    with FalVideoFake() as fake:
        remover = get_video_provider("fal-bria-video", api_key=TEST_KEY, base_url=fake.url, retry=FAST)
        fake.inject("admin-lock", op="submit", times=1)  # refused: nothing billed, nothing kept
        with pytest.raises(ProviderError):
            rmbg.remove_video(clip, remover, payer=payer_for_fake(fake))
        fake.inject("no-alpha", op="submit", times=1)  # accepted, answered without alpha: charged, not kept
        with pytest.raises(ProviderError):
            rmbg.remove_video(clip, remover, payer=payer_for_fake(fake))
        done = rmbg.remove_video(clip, remover, payer=payer_for_fake(fake))
        kept = rmbg.remove_video(clip, remover, payer=payer_for_fake(fake))
        paid = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/v3")]
    assert len(paid) == 3  # the refused call, the bad answer, the good one; the fourth run sent nothing
    assert done.cost.usd == PRICE["fal"] and kept.cost.usd == 0
    done.close()
    kept.close()


def payer_for_fake(fake):
    return payer_for(type("V", (), {"fake": fake})())


def test_the_kept_answers_are_bounded_and_linked_for_each_reader(tmp_path, caplog):
    answers = VideoAnswers(max_bytes=10)
    folder = tmp_path / "in"
    folder.mkdir()
    for n, size in enumerate((6, 4, 5)):
        (folder / f"{n}.webm").write_bytes(bytes([n]) * size)
    keys = [(f"d{n}", "svc", "http://h", "webm") for n in range(3)]
    for n, key in enumerate(keys):
        with answers.once(key, tmp_path) as turn:
            assert turn.found is None
            turn.keep(folder / f"{n}.webm", "video/webm", {"request_id": str(n)})
    assert (len(answers), answers.nbytes) == (2, 9)  # the oldest went to fit 10 bytes
    reader = tmp_path / "reader"
    reader.mkdir()
    with answers.once(keys[1], reader) as turn:
        assert turn.found is not None and turn.found.meta == {"request_id": "1"}
        answers.clear()  # gone from the cache while this caller reads it: its own link stays
        assert turn.found.path.read_bytes() == bytes([1]) * 4
    big = folder / "big.webm"
    big.write_bytes(b"x" * 11)
    with answers.once(("big", "svc", "http://h", "webm"), tmp_path) as turn:
        turn.keep(big, "video/webm", {})
    assert len(answers) == 0  # larger than the bound: not kept
    with answers.once(("gone", "svc", "http://h", "webm"), tmp_path) as turn:
        turn.keep(tmp_path / "no-such-answer.webm", "video/webm", {})  # a disk that refuses it: said, not raised
    assert len(answers) == 0 and answers.waiters(("gone", "svc", "http://h", "webm")) == 0
    assert "svc's answer for a clip was not kept" in caplog.text
    with pytest.raises(rmbg.InvalidRequestError, match='cache must be "default", None or a VideoAnswers'):
        rmbg.remove_video(str(big), "u2netp", cache="yes")  # type: ignore[arg-type]
