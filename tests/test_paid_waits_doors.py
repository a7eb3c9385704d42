"""No paid call waits inside the slots free work uses, at every door that has
slots of its own (rmbg.webapp.slots): the Compare tab, the Benchmark tab, the
Video tab and POST /api/video, as the page's /remove and REST's /api/remove
(tests/test_ledger_free_work.py).

Each test: a launched app on the fakes, the day cap's edge held by a paid call
slow at the vendor (runware-rembg through REST); three paid calls through the
door under test must wait for room: two wait outside the door's two slots
(RMBG_PAID_WAITING=2), the third is refused at once as a busy server; another
visitor's free U2-Net-p run through the same door then finishes while the slow
call is still out. Before, the waiting calls filled the door's slots (gradio's
concurrency limit of 2, REST's limiter of 2) and the free run waited behind
them until the edge cleared (up to 120 s). A waiting clip gives back its video
memory too: the video tests leave room for two clips, the one in flight and
the free one.

Every wait here is on an event: a request reaching the fake vendor, the
refusal of the third paid call. At the end the held vendor call is let go
(the fake answers it, and the calls that waited, at once), so no call waits
out a timeout or retries against a stopped vendor. Each visitor's
gradio_client is made before the edge is held, with a timeout that a loaded
machine's answers fit in (gradio_client's own is 5 s: under load its
requests timed out, and the test failed with 'timed out' answers).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from PIL import Image

from rmbg.webapp import AppConfig
from tests.fakes.common import Call, Reply
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.fal_video import FalVideoFake
from tests.fakes.runware import TEST_KEY, RunwareFake
from tests.support.app import app_config, serve
from tests.test_ledger_free_work import jpeg, rest_remove
from tests.video_clips import davis, write_clip

pytestmark = [pytest.mark.uses("gradio"), pytest.mark.slow]

BUSY = "paid calls already wait on this server"
PRICE = Decimal("0.0013")  # runware-rembg's price table: it holds 2x, $0.0026
ARRIVAL_S = 300.0  # how long a request may take to reach the fake vendor on a loaded machine (a bound, not a wait)
FRAMES = 2  # the video tests' clip
CLIENT = {"timeout": 300.0}  # gradio_client's HTTP timeout (its own is 5 s, which a loaded machine's app passes)


class Watched:
    """A fake vendor whose arrivals a test waits on (a condition notified as each request comes in)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrived = threading.Condition()

    def handle(self, call: Call) -> Reply:
        with self.arrived:
            self.arrived.notify_all()
        return super().handle(call)  # type: ignore[misc]

    def until(self, count: Callable[[list[Call]], int], n: int) -> None:
        """Wait until `count` of the requests so far reaches `n`."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: count(list(self.calls)) >= n, ARRIVAL_S), list(self.calls)  # type: ignore[attr-defined]


class WatchedRunware(Watched, RunwareFake):
    pass


class WatchedFalVideo(Watched, FalVideoFake):
    pass


def client(url: str):
    """A new visitor's gradio_client session."""
    from gradio_client import Client

    # ssl_verify=False: the app is on http://127.0.0.1, and httpx loads no CA bundle for each of the
    # client's requests (a second of CPU a test, in gradio_client's many short-lived httpx clients)
    return Client(url, verbose=False, ssl_verify=False, httpx_kwargs=CLIENT)


@pytest.fixture(autouse=True)
def server_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("RMBG_LEDGER", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("RMBG_PAID_WAITING", "2")  # as many places as the door has slots: three paid calls fill it


@contextlib.contextmanager
def edge_held(url: str, runware: WatchedRunware) -> Iterator[threading.Thread]:
    """runware-rembg's first call settled, then a second one held at the vendor: the day cap's edge
    is in flight. Yields the slow call's thread; on exit the fake lets it go (and answers the calls
    that waited for it at once)."""
    assert rest_remove(url, 10, "runware-rembg", key=None).status_code == 200  # the first call, alone
    runware.inject("slow", delay=ARRIVAL_S + 300, times=1)
    slow = threading.Thread(target=rest_remove, args=(url, 11, "runware-rembg", None))
    slow.start()
    runware.until(lambda calls: sum(1 for c in calls if c.method == "POST"), 2)
    try:
        yield slow
    finally:
        runware.release()  # the slow reply goes, and the waiting calls are answered without a hold
        slow.join(timeout=ARRIVAL_S)


def free_while_paid_wait(paid: Callable[[int], str], free: Callable[[], object], slow: threading.Thread):
    """Three paid calls through one door, then the free run through it once the waiting room is full;
    (what the free run gave, its seconds, the paid calls' answers)."""
    answers: list[str] = []
    refused = threading.Event()

    def one(seed: int) -> None:
        try:
            answers.append(paid(seed))
        except Exception as exc:  # noqa: BLE001 - the refusal, as the client raises it
            answers.append(str(exc))
        if BUSY in answers[-1]:
            refused.set()

    waiting = [threading.Thread(target=one, args=(20 + k,)) for k in range(3)]
    for t in waiting:
        t.start()
    assert refused.wait(ARRIVAL_S), answers  # the waiting room is full: two wait outside the door's slots
    started = time.monotonic()
    got = free()
    took = time.monotonic() - started
    assert slow.is_alive()  # the edge was still held while the free run went through
    return got, took, answers, waiting


def image(tmp_path: Path, seed: int) -> str:
    from gradio_client import handle_file

    path = tmp_path / f"i{seed}.jpg"
    path.write_bytes(jpeg(seed))
    return handle_file(str(path))


def test_a_paid_comparison_waiting_at_the_caps_edge_never_delays_a_free_one(u2netp_path, tmp_path):
    config = dict(allow_server_keys=True, daily_cap_usd=4 * PRICE, cap_usd=Decimal(100))
    with FalFake() as fal, WatchedRunware() as runware, serve(app_config(fal, runware, **config)) as url:
        visitors = {seed: client(url) for seed in (20, 21, 22, 30)}
        with edge_held(url, runware) as slow:

            def paid(seed: int) -> str:
                compare = visitors[seed].predict
                return str(compare(image=image(tmp_path, seed), providers=["runware-rembg"], api_name="/compare"))

            def free() -> object:
                return visitors[30].predict(image=image(tmp_path, 30), providers=["u2netp"], api_name="/compare")

            (gallery, *_), took, answers, waiting = free_while_paid_wait(paid, free, slow)
        for t in waiting:
            t.join(timeout=ARRIVAL_S)
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["u2netp"]
    assert took < 10, took
    assert sum(BUSY in a for a in answers) == 1, answers


def test_a_paid_benchmark_waiting_at_the_caps_edge_never_delays_a_free_one(u2netp_path, tmp_path):
    from gradio_client import handle_file

    config = dict(allow_server_keys=True, daily_cap_usd=4 * PRICE, cap_usd=Decimal(100))
    with FalFake() as fal, WatchedRunware() as runware, serve(app_config(fal, runware, **config)) as url:
        visitors = {seed: client(url) for seed in (20, 21, 22, 30)}
        with edge_held(url, runware) as slow:

            def bench(seed: int, provider: str) -> tuple:
                truth = tmp_path / f"i{seed}.png"  # scored (one provider is enough), the image's own mask
                Image.new("L", (64, 48), 255).save(truth)
                return visitors[seed].predict(
                    images=[image(tmp_path, seed)], truth=[handle_file(str(truth))], providers=[provider],
                    api_name="/benchmark",
                )  # fmt: skip

            (status, *_), took, answers, waiting = free_while_paid_wait(
                lambda seed: str(bench(seed, "runware-rembg")), lambda: bench(30, "u2netp"), slow
            )
        for t in waiting:
            t.join(timeout=ARRIVAL_S)
    assert status.startswith("**Done**"), status
    assert took < 10, took
    assert sum(BUSY in a for a in answers) == 1, answers


@contextlib.contextmanager
def video_app(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, Path, WatchedFalVideo]]:
    """(URL, a 2-frame clip, fal's video fake), on the server's fal key under a day cap, with video memory
    for two of these clips at once (rmbg.webapp.video.room): the clip in flight's and the free one's, if
    the waiting clips give theirs back. Two frames: the budget is per clip, by its frame size, and each
    frame of the free run is a U2-Net-p run."""
    from rmbg.webapp.video.room import MIB, need_bytes

    clip = write_clip(tmp_path / "dog.mp4", davis("dog", FRAMES))
    monkeypatch.setenv("RMBG_VIDEO_MEMORY_MB", str(int(2.5 * need_bytes(214, 120, (224, 128)) / MIB)))
    with WatchedFalVideo() as fal:
        providers = {"fal-bria-video": {"base_url": fal.url}}
        config = AppConfig(provider_config=providers, allow_server_keys=True, daily_cap_usd=Decimal(1))
        with serve(config) as url:
            yield url, clip, fal


@contextlib.contextmanager
def first_clip_held(fal: WatchedFalVideo, send: Callable[[], object]) -> Iterator[threading.Thread]:
    """fal-bria-video's first call under the cap, sent by `send` in a thread and held at the vendor: every
    other clip of it waits for that call (rmbg.money.paying's first call alone). The video doors refuse a clip whose
    hold does not fit under a cap now (rmbg.webapp.video.sides), so this is where a paid clip waits. On exit
    the fake lets it go (and answers the clips that waited for it at once)."""
    slow = threading.Thread(target=send)
    fal.inject("slow", op="submit", delay=ARRIVAL_S + 300, times=1)
    slow.start()
    fal.until(lambda calls: sum(1 for c in calls if c.method == "POST" and c.path.endswith("/v3")), 1)
    try:
        yield slow
    finally:
        fal.release()  # the slow reply goes, and the waiting clips are answered without a hold
        slow.join(timeout=ARRIVAL_S)


def rest_video(url: str, clip: Path, provider: str) -> httpx.Response:
    files = {"video": ("dog.mp4", clip.read_bytes(), "video/mp4")}
    return httpx.post(url + "api/video", files=files, data={"provider": provider}, timeout=ARRIVAL_S)


def tab_video(visitor, clip: Path, provider: str) -> tuple:
    from gradio_client import handle_file

    return visitor.predict(video=handle_file(str(clip)), provider=provider, api_name="/video")


def test_a_paid_clip_on_the_video_tab_waiting_for_a_first_call_never_delays_a_free_one(
    u2netp_path, tmp_path, monkeypatch
):
    with video_app(tmp_path, monkeypatch) as (url, clip, fal):
        visitors = {seed: client(url) for seed in (20, 21, 22, 30)}
        with first_clip_held(fal, lambda: rest_video(url, clip, "fal-bria-video")) as slow:  # not the tab's slots
            (*_, line), took, answers, waiting = free_while_paid_wait(
                lambda seed: str(tab_video(visitors[seed], clip, "fal-bria-video")),
                lambda: tab_video(visitors[30], clip, "u2netp"),
                slow,
            )
        for t in waiting:
            t.join(timeout=ARRIVAL_S)
    assert line.startswith(f"**U2-Net-p (tiny, ungated, Apache-2.0)** · {FRAMES} frames"), line
    assert took < 20, took
    assert sum(BUSY in a for a in answers) == 1, answers


def test_a_paid_clip_through_rest_waiting_for_a_first_call_never_delays_a_free_one(u2netp_path, tmp_path, monkeypatch):
    with video_app(tmp_path, monkeypatch) as (url, clip, fal):
        visitor = client(url)
        with first_clip_held(fal, lambda: tab_video(visitor, clip, "fal-bria-video")) as slow:  # not REST's slots

            def paid(seed: int) -> str:
                answer = rest_video(url, clip, "fal-bria-video")
                return f"{answer.status_code} {answer.text[:300]}"

            free, took, answers, waiting = free_while_paid_wait(paid, lambda: rest_video(url, clip, "u2netp"), slow)
        for t in waiting:
            t.join(timeout=ARRIVAL_S)
    assert free.status_code == 200 and free.headers["x-rmbg-frames"] == str(FRAMES)
    assert took < 20, took
    assert [a.split(" ")[0] for a in answers if BUSY in a] == ["503"], answers
