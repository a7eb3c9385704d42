"""`rmbg remove` interrupted by SIGTERM or SIGINT, as a real process against
the fake fal server: the calls in flight finish (or are recorded as "may have
been billed"), every output has its manifest row, and resuming never sends a
request that may have been billed again unless --retry-uncertain says so.
Requests are counted at the fake."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from rmbg.cli.main import main
from tests.fakes.common import Call, Reply
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake

IMAGES = 20
JOBS = 4


class CountingFal(FalFake):
    """The fake fal, with an event set when the `jobs`-th submit has arrived."""

    def __init__(self, jobs: int = JOBS):
        super().__init__()
        self.enough = jobs  # (not `jobs`: the fake keeps its queue there)
        self.in_flight = threading.Event()

    def dispatch(self, call: Call) -> Reply:
        reply = super().dispatch(call)
        if sum(c.method == "POST" for c in self.calls) >= self.enough:
            self.in_flight.set()
        return reply


HELD = 60.0  # a job held at the vendor until the test lets it go (fake.release), or the client's read timeout
PROMPT_S = 30.0  # the most a run stopped by two signals may take to end after the second (HELD is twice that)


def counting_fal(monkeypatch, *delays: float):
    """One job per delay, each held in the queue that long by its first status poll: HELD keeps it there
    until the test lets the replies go (a signal lands while it is in flight, and a second signal abandons
    it: the process must end without waiting for its reply); 3 s lets it finish after a first signal."""
    fake = CountingFal(len(delays))
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    for delay in delays:
        fake.inject("slow", op="status", times=1, delay=delay)
    return fake


@pytest.fixture
def fal_held(monkeypatch):
    with counting_fal(monkeypatch, *[HELD] * JOBS) as fake:
        yield fake


def write_photos(folder: Path, count: int) -> Path:
    (folder / "in").mkdir()
    for i in range(count):
        Image.new("RGB", (16, 12), (10 * i, 40, 90)).save(folder / "in" / f"img{i:02}.png")
    return folder


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write_photos(tmp_path, IMAGES)


def posts(fake) -> int:
    return sum(c.method == "POST" for c in fake.calls)


def rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def start(photos: Path, *engine: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rmbg",
            "remove",
            "in",
            "-o",
            "out",
            "-p",
            "fal-bria",
            "--yes",
            "-j",
            str(JOBS),
            *engine,
        ],
        cwd=photos,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(proc: subprocess.Popen, wanted: str) -> None:
    """Read the process's stderr up to the first line that starts with `wanted` (fails if it ends first)."""
    for line in proc.stderr:
        if line.startswith(wanted):
            return
    pytest.fail(f"the process ended without saying {wanted!r}")


def acknowledged(proc: subprocess.Popen, name: str) -> None:
    """Send `name` (SIGINT, SIGTERM) and read stderr up to the first signal's acknowledgement."""
    proc.send_signal(getattr(signal, name))
    read_until(proc, f"rmbg: {name}: stopping after the images in flight")


def stopped_now(proc: subprocess.Popen, fal: CountingFal) -> None:
    """A second signal (SIGINT) while calls are held at the vendor: the process ends with 130 within
    PROMPT_S (it does not wait for their replies)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=PROMPT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running {PROMPT_S} s after the second signal (its calls are held {HELD} s)")
    assert proc.returncode == 130
    # the held replies go now, and no later poll is held: a "slow" fault the ended process did not reach
    # (a call it abandoned before its first status poll) would otherwise hold a resume's poll HELD s
    fal.release()


def holds() -> list[tuple]:
    from rmbg.money.ledger import open_ledger

    return [(h.state, h.final, h.note) for h in open_ledger().holds(None)]


UNCERTAIN = ("failed", "may have been billed", "0.018")  # a row of a call abandoned in flight, at its price
COUNTED = ("settled", Decimal("0.018"), "may have been billed")  # its hold: counted at the estimate, not left held


def test_sigterm_lets_the_calls_in_flight_finish_and_resume_sends_the_rest_once(fal_held, photos):
    """Defect 7: SIGTERM lost accepted results, and resume sent them again (24 submits for 20 images).
    The calls in flight are held at the vendor until the signal is acknowledged, then finish."""
    proc = start(photos)
    assert fal_held.in_flight.wait(60)
    acknowledged(proc, "SIGTERM")
    fal_held.release()
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    first = rows(photos / "out")
    assert [r["status"] for r in first].count("done") == JOBS and posts(fal_held) == JOBS
    assert [r["error"] for r in first if r["status"] == "not_run"] == ["interrupted"] * (IMAGES - JOBS)
    written = sorted(p.name for p in (photos / "out").glob("img*.png"))
    assert written == sorted(Path(r["output"]).name for r in first if r["status"] == "done")
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 0
    assert posts(fal_held) == IMAGES  # not one paid twice


def test_a_second_sigint_records_what_was_in_flight_and_resume_leaves_it(fal_held, photos, capsys):
    """Two SIGINTs while JOBS calls are held at the vendor: a manifest row "may have been billed" at the
    price for each of them and nothing else; each was sent once, its hold counted at its estimate."""
    fal, proc = fal_held, start(photos)
    assert fal.in_flight.wait(180)
    acknowledged(proc, "SIGINT")
    stopped_now(proc, fal)
    assert [(r["status"], r["cost_source"], r["cost_usd"]) for r in rows(photos / "out")] == [UNCERTAIN] * JOBS
    assert posts(fal) == JOBS and holds() == [COUNTED] * JOBS
    assert not list((photos / "out").glob("img*.png"))  # no file without its row
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 1
    assert posts(fal) == IMAGES  # the JOBS uncertain ones are not sent again
    held = [r for r in rows(photos / "out")[JOBS:] if r["status"] == "failed"]
    assert len(held) == JOBS and all("may have been billed" in r["error"] for r in held)
    capsys.readouterr()
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "--retry-uncertain"]) == 0
    assert posts(fal) == IMAGES + JOBS
    assert f"--retry-uncertain: {JOBS} image(s) whose earlier request may have been billed" in capsys.readouterr().err


# --- the same on the Ray engine (a local Ray started by the process itself) --------------------------

RAY_WORKERS = 2
RAY_IMAGES = 6  # each image is a Ray Data task: more only cost CPU (the stop needs one not started)
ON_RAY = ("--engine", "ray", "--workers", str(RAY_WORKERS))
FINISHES_S = 3.0  # on Ray, the call that finishes after the first signal: its hold at the vendor


@pytest.fixture
def fal_on_ray(monkeypatch):
    """Two calls in flight on Ray: one held FINISHES_S (it ends after the first signal: the stop reaches
    the workers through the budget actor, which nothing outside the process sees), one held until the test
    lets it go. Ray Data hands each worker one image at a time (its default queues a second behind each),
    so only the last image may wait behind the held call (as Ray Data 2.60 schedules it, it does)."""
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_DATA_ACTOR_DEFAULT_MAX_TASKS_IN_FLIGHT_TO_MAX_CONCURRENCY_FACTOR", "1")
    with counting_fal(monkeypatch, FINISHES_S, HELD) as fake:
        yield fake


@pytest.mark.slow
def test_on_ray_a_first_signal_lets_the_calls_in_flight_finish_and_a_second_records_the_rest(
    fal_on_ray, tmp_path, monkeypatch
):
    """One `rmbg remove --engine ray` (its Ray's start is most of this file's time), two signals. The first,
    SIGTERM (ray.init replaces the driver's handler; the batch's own is put back): the call that ends is
    written, nothing new is sent, and the images not started come back "not run (interrupted)" (the stop
    reaches the workers through the shared budget actor). The second, SIGINT: the held call is recorded "may have been
    billed" and counted at its estimate, and the process ends at once. Resume sends each other image once."""
    monkeypatch.chdir(tmp_path)
    fal, photos, out = fal_on_ray, write_photos(tmp_path, RAY_IMAGES), tmp_path / "out"
    proc = start(photos, *ON_RAY)
    assert fal.in_flight.wait(180)
    acknowledged(proc, "SIGTERM")
    read_until(proc, f"[{RAY_IMAGES - 2}/{RAY_IMAGES} ")  # the outcomes of every image but the held call's and the last
    stopped_now(proc, fal)
    first = [(r["status"], r["cost_source"], r["cost_usd"], r["error"]) for r in rows(out)]
    assert first[0] == ("done", "estimated", "0.018", "")
    assert first[-1] == (*UNCERTAIN, "interrupted while its request was in flight; it may have been billed")
    assert set(first[1:-1]) == {("not_run", "", "0", "interrupted")} and len(first) >= RAY_IMAGES - 1
    assert [p.name for p in out.glob("img*.png")] == [Path(rows(out)[0]["output"]).name]
    assert posts(fal) == RAY_WORKERS  # each call sent once, nothing after the first signal
    # the two workers reserve side by side: which hold was created first is theirs to race, not an outcome
    assert sorted(holds()) == sorted([("settled", Decimal("0.018"), ""), COUNTED])
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 1
    assert posts(fal) == RAY_IMAGES  # not one paid twice: the uncertain one is not sent again


def test_a_second_sigint_after_a_file_is_written_leaves_its_row_done(tmp_path, monkeypatch):
    """The race behind a run that failed once under load: the second signal came after an
    image's file was written but before its call's end reached the batch, and the row said "may
    have been billed" beside the file. The write and the abandonment now exclude each other, and
    a call whose file is written is recorded as what it was. Deterministic: the write holds the
    call open until the signals have been handled."""
    from rmbg.cli import batch, interrupts

    def sigint() -> None:  # to the main thread itself, which waits for the call (as Ctrl-C reaches it)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    Image.new("RGB", (16, 12), (200, 40, 90)).save(tmp_path / "in" / "one.png")
    real, wrote, release = batch.write_unless_abandoned, threading.Event(), threading.Event()

    def write_then_hold(path, write):
        written = real(path, write)
        wrote.set()
        release.wait(60)  # the file is there, the call has not ended when the signals come
        return written

    def signals() -> None:
        assert wrote.wait(60)
        sigint()  # the first: stop after the images in flight
        assert interrupts.stop_requested.wait(60)
        sigint()  # the second: stop now
        assert interrupts.abandoned.wait(60)
        release.set()

    monkeypatch.setattr(batch, "write_unless_abandoned", write_then_hold)
    with FalFake() as fake:
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
        monkeypatch.setenv("FAL_KEY", FAL_KEY)
        helper = threading.Thread(target=signals)
        helper.start()
        code = main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", "1"])
        helper.join()
        assert code == 130 and posts(fake) == 1
    assert [(r["status"], r["cost_source"]) for r in rows(tmp_path / "out")] == [("done", "estimated")]
    assert (tmp_path / "out" / "one.png").is_file()


def test_an_abandoned_call_not_started_is_released_and_one_in_flight_counted_at_its_estimate(tmp_path):
    """The two ends of a second signal's record (rmbg.cli.budget.finish_abandoned), with real holds in the
    test's ledger: a job the pool had not started sent nothing (its hold released, "not run
    (interrupted)"); one still running may have reached the vendor (counted at its estimate, "may
    have been billed"). Neither is left held for a person to settle by hand."""
    from concurrent.futures import Future

    from rmbg.cli import batch, budget
    from rmbg.money.ledger import open_ledger
    from rmbg.money.payer import Payer

    estimate = Decimal("0.018")
    payer = Payer.operator("batch")
    waiting, running = Future(), Future()
    assert running.set_running_or_notify_cancel()
    emitted: list[batch.Outcome] = []
    for name, future in (("waiting", waiting), ("running", running)):
        item = batch.Item(tmp_path / f"{name}.png", name, f"{name}.png", tmp_path / "out" / f"{name}.png")
        hold = payer.try_reserve(payer.payment("fal-bria", estimate))
        budget.finish_abandoned(future, item, hold, False, payer, estimate, emitted.append)
    assert [(o.item.display, o.status, o.error, o.may_be_billed) for o in emitted] == [
        ("waiting", "not_run", "interrupted", False),
        ("running", "failed", "interrupted while its request was in flight; it may have been billed", True),
    ]
    assert waiting.cancelled() and emitted[1].cost is not None and emitted[1].cost.usd == estimate
    assert [(h.state, h.final) for h in open_ledger().holds(None)] == [("released", 0), ("settled", estimate)]


def test_a_stop_ends_with_its_run_and_never_stops_the_next_run_of_the_process(tmp_path):
    """The signal that stopped one run is its own (its exit status says so after the block); the process's
    flag goes with the run, so the next run of the same process (a notebook's batch after an interrupted
    `rmbg` from Python) runs its items instead of reporting them "not run (interrupted)"."""
    import io

    from rmbg.cli import batch, interrupts
    from tests.support.providers import CountingProvider

    with interrupts.stopping_gently(io.StringIO()) as stop:
        signal.raise_signal(signal.SIGINT)  # its handler runs before raise_signal returns
        assert interrupts.stop_requested.is_set() and stop.is_set()
    assert stop.is_set() and not interrupts.stop_requested.is_set()
    Image.new("RGB", (16, 12), "red").save(tmp_path / "a.png")
    items = batch.plan([str(tmp_path / "a.png")], tmp_path / "out")
    provider = CountingProvider()
    outcomes = batch.run(items, provider, batch.Settings(), lambda _: None)
    assert [o.status for o in outcomes] == ["done"] and provider.calls == 1
    assert (tmp_path / "out" / "a.png").is_file()
