"""Several app replicas and a CLI batch on one storage (RMBG_LEDGER), as real
processes: `python app.py` launched twice on one ledger (an SQLite file, and a
PostgreSQL database as replicas on several machines would share), and
`rmbg remove` beside one, all on the operator's key of a fake paid vendor
(a real HTTP server on 127.0.0.1 that counts the requests it gets). The
day's cap (RMBG_DAILY_CAP_USD) holds across them: what the ledger counts
never passes it, and the vendor sees no more paid calls than it allows.
An app killed with a paid call in flight leaves the call counted, listed by
`rmbg ledger holds` and settled by `rmbg ledger settle`.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from PIL import Image

from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.paying import day_key
from tests.fakes.runware import TEST_KEY, RunwareFake
from tests.support.launched import START_S, app_process, app_processes
from tests.support.ledgers import postgres, spec  # noqa: F401  (fixtures: both databases)
from tests.support.processes import started

ROOT = Path(__file__).resolve().parents[1]
PRICE = Decimal("0.0013")  # runware-rembg's price table, and what the fake reports for each call
CAP = Decimal("0.013")  # ten calls' worth
ALLOWED = int(CAP / PRICE)
# Each test starts apps one after the other (START_S each at most, on a loaded machine) and then works:
# 15-25 s a test on 2 cores.
pytestmark = [pytest.mark.timeout(3 * START_S + 300), pytest.mark.slow]


def png(i: int) -> bytes:
    """A small PNG of its own (a distinct image: no cache answers it)."""
    out = io.BytesIO()
    Image.new("RGB", (40, 32), (i % 256, (i * 7) % 256, 90)).save(out, "PNG")
    return out.getvalue()


def paid_calls(fake: RunwareFake) -> int:
    """The removeBackground tasks the fake vendor received."""
    count = 0
    for call in list(fake.calls):
        if call.method == "POST" and call.path == "/v1":
            count += sum(1 for task in call.json() if task.get("taskType") == "removeBackground")
    return count


def environment(spec: str, fake: RunwareFake) -> dict[str, str]:
    """The launched processes' environment: the fake vendor's key on the server, the caps, and no local model's
    weights (RMBG_U2NETP_PATH left out: the default model is not ready, so an app warms none up at start, about
    1.5 s of CPU a launch; these apps only make paid calls)."""
    inherited = {name: value for name, value in os.environ.items() if name != "RMBG_U2NETP_PATH"}
    return {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "RMBG_LEDGER": spec,
        "RMBG_RUNWARE_URL": fake.url,
        "RUNWARE_API_KEY": TEST_KEY,
        "RMBG_ALLOW_SERVER_KEYS": "1",
        "RMBG_DAILY_CAP_USD": str(CAP),
        "RMBG_SESSION_CAP_USD": "100",  # every REST caller here is 127.0.0.1: only the day's cap binds
    }


def remove(url: str, i: int) -> httpx.Response:
    return httpx.post(
        url + "api/remove",
        files={"image": (f"p{i}.png", png(i), "image/png")},
        data={"provider": "runware-rembg"},
        timeout=180,
    )


def unanswered(url: str, i: int) -> None:
    """A request whose app is killed while it waits for the vendor."""
    try:
        remove(url, i)
    except httpx.TransportError:
        pass


def day_spent(spec: str) -> Decimal:
    ledger = SqlLedger.open(spec)
    try:
        return ledger.spent(day_key(time.time()))
    finally:
        ledger.close()


def in_parallel(calls: list) -> list:
    results: list = [None] * len(calls)

    def one(k: int) -> None:
        results[k] = calls[k]()

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.uses("gradio")
def test_two_app_processes_on_one_ledger_share_the_days_cap(tmp_path, spec):  # noqa: F811
    """On one SQLite file (one machine), and on one PostgreSQL database (replicas on several)."""
    with RunwareFake() as fake:
        env = environment(spec, fake)
        with app_processes(env, tmp_path / "a.log", tmp_path / "b.log") as ((one, _), (two, _)):
            answers = in_parallel([lambda i=i: remove(one if i % 2 else two, i) for i in range(3 * ALLOWED)])
        calls = paid_calls(fake)
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 402}, [a.text for a in answers if a.status_code not in (200, 402)]
    paid = sum(Decimal(a.headers["X-Rmbg-Cost-USD"]) for a in answers if a.status_code == 200)
    assert day_spent(spec) == paid <= CAP  # what the ledger counts is what the answers say: under the cap
    assert calls == statuses.count(200) <= ALLOWED  # no paid request beyond the cap reached the vendor
    assert calls == ALLOWED  # and the cap was used: ten calls at $0.0013 under $0.013
    assert any("daily budget" in a.json()["error"] for a in answers if a.status_code == 402)


@pytest.mark.uses("gradio")
def test_the_app_and_a_paid_cli_batch_on_the_same_keys_share_the_days_cap(tmp_path):
    spec = str(tmp_path / "ledger.sqlite3")
    photos = tmp_path / "in"
    photos.mkdir()
    for i in range(2 * ALLOWED):
        (photos / f"b{i}.png").write_bytes(png(100 + i))
    with RunwareFake() as fake:
        # calls take a while: the batch and the app overlap (the batch's 8 calls after its first 2 outputs take
        # about 5.6 s, one at a time: the visitors' calls reach the vendor within that on a busy machine)
        fake.inject("slow", delay=0.7, times=1000)
        env = environment(spec, fake)
        with app_process(env, tmp_path / "app.log") as (url, _):
            command = [sys.executable, "-m", "rmbg", "remove", str(photos), "-o", str(tmp_path / "out")]
            command += ["--provider", "runware-rembg", "--max-cost", "1", "--jobs", "1"]
            pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
            with started(command, env=env, **pipes) as cli:  # ended, with what it started, whatever happens
                deadline = time.monotonic() + START_S
                while len(list((tmp_path / "out").glob("*.png"))) < 2:  # the batch is under way: now the visitors
                    assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
                    time.sleep(0.02)
                answers = in_parallel([lambda i=i: remove(url, i) for i in range(2 * ALLOWED)])
                out, err = cli.communicate(timeout=300)
        calls = paid_calls(fake)
    made = len(list((tmp_path / "out").glob("*.png")))
    served = sum(a.status_code == 200 for a in answers)
    assert {a.status_code for a in answers} <= {200, 402, 503}
    busy = [a.json()["error"] for a in answers if a.status_code == 503]  # more waiting than the room holds
    assert all("paid calls already wait on this server; nothing was sent" in text for text in busy), busy
    assert cli.returncode == 1 and "not run" in out, err  # the day's cap stopped the batch too
    assert made >= 2 and served >= 1  # both spent from the one day's cap ...
    assert made + served == calls == ALLOWED  # ... each paid call one output or one answer, none beyond it
    assert day_spent(spec) == calls * PRICE == CAP
    print(f"app answered {served}, the batch made {made}, the vendor saw {calls} paid calls; cap {ALLOWED}")


@pytest.mark.uses("gradio")
def test_an_app_killed_with_a_paid_call_in_flight_leaves_it_counted_until_settled(tmp_path):
    spec = str(tmp_path / "ledger.sqlite3")
    with RunwareFake() as fake:
        env = environment(spec, fake)
        with app_process(env, tmp_path / "killed.log") as (url, proc):
            assert remove(url, 0).status_code == 200  # the first call alone settles the price
            fake.inject("slow", delay=60)
            threading.Thread(target=lambda: unanswered(url, 1), daemon=True).start()
            deadline = time.monotonic() + 60
            while paid_calls(fake) < 2:  # the request reached the vendor
                assert time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        with app_process(env, tmp_path / "restarted.log") as (url, _):  # after the restart, the hold still counts
            assert day_spent(spec) == PRICE + 2 * PRICE  # the first call, and the dead call's hold (its bound)
            holds = subprocess.run(
                [sys.executable, "-m", "rmbg", "ledger", "holds"], env=env, capture_output=True, text=True, timeout=60
            )
            [line] = [ln for ln in holds.stdout.splitlines() if "runware-rembg" in ln]
            assert f"process {socket.gethostname()}:{proc.pid} (gone)" in line and day_key(time.time()) in line
            hold_id = line.split()[0]
            settled = subprocess.run(
                [sys.executable, "-m", "rmbg", "ledger", "settle", hold_id, "--usd", str(PRICE)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert settled.returncode == 0, settled.stderr
            assert day_spent(spec) == 2 * PRICE
            assert remove(url, 2).status_code == 200  # the restarted app serves under the same cap
        assert day_spent(spec) == 3 * PRICE
