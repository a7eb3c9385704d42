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


def counting_fal(monkeypatch, jobs: int, delay: float = 3.0):
    """The first `jobs` jobs wait in the queue `delay` s: long enough for a signal to land while they are in
    flight (3 s: a SIGTERM lets them finish), or far longer than a person waits after a second Ctrl-C
    (HELD: the second SIGINT abandons them, and the process must end without waiting for their replies)."""
    fake = CountingFal(jobs)
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    fake.inject("slow", op="status", times=jobs, delay=delay)
    return fake


HELD = 60.0  # a job of a run stopped by two signals: seconds it stays at the vendor (the client's read timeout)
PROMPT_S = 10.0  # the most a run stopped by two signals may take to end after the second (HELD is far more)


@pytest.fixture
def fal(monkeypatch):
    with counting_fal(monkeypatch, JOBS) as fake:
        yield fake


@pytest.fixture
def fal_held(monkeypatch):
    with counting_fal(monkeypatch, JOBS, HELD) as fake:
        yield fake


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for i in range(IMAGES):
        Image.new("RGB", (16, 12), (10 * i, 40, 90)).save(tmp_path / "in" / f"img{i:02}.png")
    return tmp_path


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


def interrupt_twice(proc: subprocess.Popen, fal: CountingFal, in_flight: int, out: Path) -> None:
    """Two SIGINTs while `in_flight` calls are in flight at the vendor, held there HELD s: the process
    ends with 130 within PROMPT_S of the second (it does not wait for the replies), with a manifest row
    "may have been billed" at the price for each of those calls and nothing else; each of them was sent
    once, and its hold is counted in the ledger at its estimate (its fate is unknown), not left held."""
    from rmbg.money.ledger import open_ledger

    assert fal.in_flight.wait(180)
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first signal is acknowledged before the second is sent
        if "SIGINT: stopping after the images in flight" in line:
            break
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=PROMPT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running {PROMPT_S} s after the second SIGINT (its calls are held {HELD} s)")
    assert proc.returncode == 130
    # the held replies go now, and no later poll is held: a "slow" fault the ended process did not reach
    # (a call it abandoned before its first status poll) would otherwise hold a resume's poll HELD s
    fal.release()
    assert [(r["status"], r["cost_source"], r["cost_usd"]) for r in rows(out)] == [
        ("failed", "may have been billed", "0.018")
    ] * in_flight
    assert posts(fal) == in_flight  # each abandoned image was sent once, nothing after the first signal
    assert [(h.state, h.final, h.note) for h in open_ledger().holds(None)] == [
        ("settled", Decimal("0.018"), "may have been billed")
    ] * in_flight  # counted at the estimate, as its row says (rmbg.money.paying's settle by fate)


def test_sigterm_lets_the_calls_in_flight_finish_and_resume_sends_the_rest_once(fal, photos):
    """Defect 7: SIGTERM lost accepted results, and resume sent them again (24 submits for 20 images)."""
    proc = start(photos)
    assert fal.in_flight.wait(60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "SIGTERM: stopping after the images in flight" in err
    first = rows(photos / "out")
    assert [r["status"] for r in first].count("done") == JOBS and posts(fal) == JOBS
    assert [r["error"] for r in first if r["status"] == "not_run"] == ["interrupted"] * (IMAGES - JOBS)
    written = sorted(p.name for p in (photos / "out").glob("img*.png"))
    assert written == sorted(Path(r["output"]).name for r in first if r["status"] == "done")
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 0
    assert posts(fal) == IMAGES  # not one paid twice


def test_a_second_sigint_records_what_was_in_flight_and_resume_leaves_it(fal_held, photos, capsys):
    fal = fal_held
    interrupt_twice(start(photos), fal, JOBS, photos / "out")
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
ON_RAY = ("--engine", "ray", "--workers", str(RAY_WORKERS))


@pytest.fixture
def fal_on_ray(monkeypatch):
    pytest.importorskip("ray")
    with counting_fal(monkeypatch, RAY_WORKERS) as fake:
        yield fake


@pytest.fixture
def fal_held_on_ray(monkeypatch):
    pytest.importorskip("ray")
    with counting_fal(monkeypatch, RAY_WORKERS, HELD) as fake:
        yield fake


@pytest.mark.slow
def test_on_ray_sigterm_lets_the_calls_in_flight_finish_and_starts_nothing_new(fal_on_ray, photos):
    """ray.init replaces the driver's SIGTERM handler; the batch's own is put back, and the stop
    reaches the workers through the shared budget actor."""
    proc = start(photos, *ON_RAY)
    assert fal_on_ray.in_flight.wait(180)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130 and "SIGTERM: stopping after the images in flight" in err
    first = rows(photos / "out")
    done = [r for r in first if r["status"] == "done"]
    assert len(done) == RAY_WORKERS == posts(fal_on_ray) and len(first) == IMAGES
    assert [r["error"] for r in first if r["status"] != "done"] == ["interrupted"] * (IMAGES - RAY_WORKERS)
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 0
    assert posts(fal_on_ray) == IMAGES  # not one paid twice


@pytest.mark.slow
def test_on_ray_a_second_sigint_records_what_was_in_flight(fal_held_on_ray, photos):
    interrupt_twice(start(photos, *ON_RAY), fal_held_on_ray, RAY_WORKERS, photos / "out")
    assert main(["remove", "in", "-o", "out", "-p", "fal-bria", "--yes", "-j", str(JOBS)]) == 1
    assert posts(fal_held_on_ray) == IMAGES  # the uncertain ones are not sent again


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
