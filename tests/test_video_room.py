"""The video doors' memory budget (rmbg.webapp.video.room): clips wait their turn for room before they
decode, in order, or are refused in words; with real threads, and through rmbg.webapp.video.videos.remove
(the door the Video tab and POST /api/video share). The RSS these bounds buy is measured by
benchmarks/video_memory.py (docs/serving.md)."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal

import pytest

from rmbg.video.limits import VideoStopped
from rmbg.webapp.video.room import MIB, ROOM, ServerBusy, VideoRoom, need_bytes

WAIT_S = 30.0  # a bound for a step that takes milliseconds, so a broken room fails instead of hanging


class Clip(threading.Thread):
    """A clip that holds `mib` of the room from its own thread until `done` is set."""

    def __init__(self, room: VideoRoom, mib: int, stop: threading.Event | None = None):
        super().__init__(daemon=True)
        self.room, self.need, self.stop = room, mib * MIB, stop
        self.entered, self.done = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with self.room.hold(self.need, self.stop):
                self.entered.set()
                self.done.wait(WAIT_S)
        except BaseException as exc:  # the test reads it
            self.error = exc

    def finish(self) -> None:
        self.done.set()
        self.join(WAIT_S)


@pytest.fixture
def budget(monkeypatch):
    monkeypatch.setenv("RMBG_VIDEO_MEMORY_MB", "100")
    monkeypatch.setenv("RMBG_VIDEO_WAIT_S", str(WAIT_S))


def test_a_clip_that_would_pass_the_budget_waits_and_the_order_is_kept(budget):
    room = VideoRoom()
    first = Clip(room, 60)
    assert first.entered.wait(WAIT_S)
    second = Clip(room, 60)  # 120 MiB with the first: waits
    assert room.wait_for_waiting(1, WAIT_S) and not second.entered.is_set()
    third = Clip(room, 30)  # would fit beside the first, but the second came before it
    assert room.wait_for_waiting(2, WAIT_S) and not third.entered.is_set()
    assert room.held == 60 * MIB
    first.finish()
    assert second.entered.wait(WAIT_S) and third.entered.wait(WAIT_S)
    assert room.held == 90 * MIB and room.waiting == 0
    second.finish()
    third.finish()
    assert room.held == 0 and (first.error, second.error, third.error) == (None, None, None)


def test_a_clip_larger_than_the_budget_runs_alone(budget):
    room = VideoRoom()
    small = Clip(room, 10)
    assert small.entered.wait(WAIT_S)
    large = Clip(room, 150)
    assert room.wait_for_waiting(1, WAIT_S) and not large.entered.is_set()
    small.finish()
    assert large.entered.wait(WAIT_S)
    large.finish()
    assert large.error is None


def test_a_clip_that_waits_too_long_is_refused_in_words(monkeypatch):
    monkeypatch.setenv("RMBG_VIDEO_MEMORY_MB", "100")
    monkeypatch.setenv("RMBG_VIDEO_WAIT_S", "0.3")
    room = VideoRoom()
    first = Clip(room, 80)
    assert first.entered.wait(WAIT_S)
    with pytest.raises(ServerBusy, match=r"no memory free for this one \(it needs about 50 MB\) after 0 s"):
        with room.hold(50 * MIB):
            pass
    assert room.waiting == 0 and room.held == 80 * MIB
    first.finish()


def test_a_stop_ends_the_wait(budget):
    room = VideoRoom()
    first = Clip(room, 80)
    assert first.entered.wait(WAIT_S)
    stop = threading.Event()
    waiting = Clip(room, 50, stop)
    assert room.wait_for_waiting(1, WAIT_S)
    stop.set()
    waiting.join(WAIT_S)
    assert isinstance(waiting.error, VideoStopped) and not waiting.entered.is_set()
    assert room.waiting == 0 and room.held == 80 * MIB
    first.finish()


def test_the_estimate_grows_with_the_frames_size_not_the_clips_length():
    hd, small = need_bytes(1920, 1080, (1920, 1080)), need_bytes(854, 480, (854, 480))
    four_k = need_bytes(1920, 1080, (3840, 2160))  # cut at 1080p, decoded at 4K
    assert small < hd < four_k < 2 * hd


@contextlib.contextmanager
def watching_model():
    """A threshold model as "threshold" that records, at every frame, what the room holds and how many wait."""
    from rmbg import registry
    from rmbg.declarations import ProviderInfo
    from tests.video_clips import Threshold

    seen: list[tuple[int, int]] = []

    class Watching(Threshold):
        def matte(self, image):
            seen.append((ROOM.held, ROOM.waiting))
            return super().matte(image)

    registry.register("threshold", lambda **_: Watching(), ProviderInfo("threshold", "T", "local", Watching))
    try:
        yield seen
    finally:
        registry.unregister("threshold")


def test_concurrent_requests_through_the_video_door_run_within_the_budget(tmp_path, monkeypatch):
    """Four clips sent at once through videos.remove (each from its own thread, two in POST /api/video's
    own slots and two in the Video tab's, as REST and the page do), with room for one at a time: every
    frame of every clip ran with at most one clip's estimate held, the others queued, and all four came back."""
    pytest.importorskip("gradio")
    from rmbg.webapp import AppConfig, Keys
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.slots import Slots
    from rmbg.webapp.video.clips import Upload
    from rmbg.webapp.video.videos import VideoLook, remove
    from tests.video_clips import davis, write_clip

    clips = [write_clip(tmp_path / f"c{i}.mp4", davis("dog", 4 + i)) for i in range(4)]
    one = need_bytes(214, 120, (214, 120))
    monkeypatch.setenv("RMBG_VIDEO_MEMORY_MB", str(one // MIB + 1))  # room for one clip, not two
    app = App.create(AppConfig(), store=OutputStore(tmp_path / "out"), cache=None)
    frames: dict[int, int] = {}
    rest = Slots(2)  # POST /api/video's (rmbg.webapp.rest.video); the tab's are the app's

    def send(i: int) -> None:
        with rest.taken() if i < 2 else contextlib.nullcontext():
            shown = remove(app, Upload(clips[i], clips[i].name), "threshold", VideoLook(), Keys(), session_id=f"s{i}")
        frames[i] = shown.result.frames

    with watching_model() as seen:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        with ROOM.hold(one):  # the room is taken until all four wait for it
            for t in threads:
                t.start()
            assert ROOM.wait_for_waiting(4, WAIT_S)
            assert seen == []  # no frame decoded, let alone cut, while waiting
        for t in threads:
            t.join(120)
    assert sorted(frames.values()) == [4, 5, 6, 7]
    assert len(seen) == 22 and all(held == one for held, _ in seen)  # one clip's room at a time
    assert sorted({waiting for _, waiting in seen}, reverse=True) == [3, 2, 1, 0]  # the others in line
    assert ROOM.held == 0 and ROOM.waiting == 0


def paid_clip_waiting(tmp_path, room: VideoRoom, mib: int, on_wait):
    """A clip holding `mib` of `room` whose paid call must wait for room under a cap (a call in flight holds
    most of it, on a real ledger): (the clip's thread, its results, the policy, the call in flight's hold).
    `on_wait(ledger, in_flight)` runs at each step of the wait (rmbg.money.paying.Policy's sleep), outside the room."""
    from decimal import Decimal

    from rmbg.money.ledger import Account
    from rmbg.money.ledger.sql import SqlLedger
    from rmbg.money.paying import Payment, Policy
    from rmbg.webapp.slots import waiting_outside

    cap = (Account("day:room", Decimal("0.05")),)
    ledger = SqlLedger.open(str(tmp_path / "ledger.sqlite3"))
    in_flight = ledger.reserve("v", cap, Decimal("0.04"), probe=False)
    policy = Policy(ledger, waiting=waiting_outside, sleep=lambda s: on_wait(ledger, in_flight), wait_s=WAIT_S)
    got: list[object] = []

    def run() -> None:
        try:
            with room.hold(mib * MIB):
                got.append(policy.reserve(Payment("v", Decimal("0.01"), cap), first_call_alone=False))
        except BaseException as exc:  # the test reads it
            got.append(exc)

    clip = threading.Thread(target=run, daemon=True)
    clip.start()
    return clip, got, ledger, in_flight


def test_a_paid_clip_gives_its_memory_back_while_its_call_waits(budget, tmp_path):
    """A free clip that needs the memory a paid clip holds runs while that clip's call waits at the cap's
    edge; the paid clip takes its room back, after the free one, and goes on."""
    room, freed = VideoRoom(), threading.Event()
    free: list[Clip] = []

    def on_wait(ledger, in_flight) -> None:
        if not free:
            free.append(Clip(room, 60))  # 60 + the paid clip's 60 > 100: it runs only if the room was given back
            assert free[0].entered.wait(WAIT_S) and room.held == 60 * MIB
            freed.set()

    paid, got, ledger, in_flight = paid_clip_waiting(tmp_path, room, 60, on_wait)
    assert freed.wait(WAIT_S)
    ledger.settle(in_flight.id, Decimal("0.02"))  # room under the cap comes back: the paid call goes on
    assert room.wait_for_waiting(1, WAIT_S)  # for its memory again, behind the free clip
    free[0].finish()
    paid.join(WAIT_S)
    assert type(got[0]).__name__ == "Hold" and room.held == 0
    ledger.close()


def test_a_paid_clip_refused_its_memory_after_its_wait_sends_nothing_and_keeps_no_hold(monkeypatch, tmp_path):
    monkeypatch.setenv("RMBG_VIDEO_MEMORY_MB", "100")
    monkeypatch.setenv("RMBG_VIDEO_WAIT_S", "0.3")
    room = VideoRoom()
    free: list[Clip] = []

    def on_wait(ledger, in_flight) -> None:
        if not free:
            free.append(Clip(room, 60))
            assert free[0].entered.wait(WAIT_S)
            ledger.settle(in_flight.id, Decimal("0.02"))  # the paid call may go on: its memory is taken

    paid, got, ledger, _ = paid_clip_waiting(tmp_path, room, 60, on_wait)
    paid.join(WAIT_S)
    assert isinstance(got[0], ServerBusy) and "no memory free for this one" in str(got[0])
    assert ledger.spent("day:room", 0) == Decimal("0.02")  # the call in flight's cost; the refused one holds nothing
    free[0].finish()
    ledger.close()
