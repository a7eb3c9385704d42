"""Free local work never depends on the ledger (docs/money.md): with the
ledger's write lock held by another process, or the file deleted under the
running app, a U2-Net-p cut-out through the page's API and through REST
answers at once, and its spending line says "unknown" where the ledger cannot
be read; a paid call is refused with what happened. Before, each free
cut-out waited SQLite's 5 s busy wait and was then refused.

A launched app (rmbg.webapp on gradio, on 127.0.0.1), a real second process
holding the lock, the real U2-Net-p weights.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.fakes.fal import FalFake
from tests.fakes.runware import TEST_KEY, RunwareFake
from tests.support.app import app_config, serve
from tests.test_ledger_failures import HOLDER

pytestmark = [pytest.mark.uses("gradio"), pytest.mark.slow]


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def rest_remove(url: str, seed: int, provider: str = "u2netp", key: str | None = TEST_KEY) -> httpx.Response:
    """POST /api/remove; `key` None: on the server's own key (the day's cap)."""
    return httpx.post(
        url + "api/remove",
        files={"image": (f"f{seed}.jpg", jpeg(seed), "image/jpeg")},
        data={"provider": provider},
        headers={"X-Runware-Key": key} if key else {},
        timeout=120,
    )


def page_remove(url: str, tmp_path: Path, seed: int) -> str:
    """The page's /remove through gradio's API; its result line (the spending line's words)."""
    from gradio_client import Client, handle_file

    image = tmp_path / f"page{seed}.jpg"
    image.write_bytes(jpeg(seed))
    out = Client(url, verbose=False).predict(image=handle_file(str(image)), provider="u2netp", api_name="/remove")
    return next(str(v) for v in out if isinstance(v, str) and "session:" in str(v))


def test_free_cut_outs_run_at_once_while_another_process_holds_the_ledger_or_it_is_deleted(
    u2netp_path, tmp_path, monkeypatch
):
    ledger = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("RMBG_LEDGER", str(ledger))
    # a write's busy wait made long (5 s in the product), so that a free cut-out that waited for the lock would
    # take a minute for two, far from what two cut-outs take on however busy a machine
    monkeypatch.setattr("rmbg.money.ledger.sqlite.BUSY_S", 30.0)
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url:
        assert rest_remove(url, 0).status_code == 200  # the app's ledger is open (made here, on first use)
        assert "session: $0 hosted" in page_remove(url, tmp_path, 1)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(ledger)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout.readline().strip() == "locked"
            started = time.monotonic()
            answer = rest_remove(url, 2)
            line = page_remove(url, tmp_path, 3)
            took = time.monotonic() - started
            assert answer.status_code == 200 and answer.headers["X-Rmbg-Cost-Source"] in ("compute", "free")
            assert "session: $0 hosted" in line  # reads take no write lock: the amount is still known
            assert took < 20, took  # each waited the busy wait (then 5.2-5.5 s), then was refused
        finally:
            holder.communicate("go\n", timeout=30)
        ledger.unlink()
        answer = rest_remove(url, 4)
        line = page_remove(url, tmp_path, 5)
        assert answer.status_code == 200
        assert "hosted spending unknown (the spending ledger cannot be read" in line
        paid = rest_remove(url, 6, provider="runware-rembg")
        assert paid.status_code == 402 and "was deleted" in paid.json()["error"]
        assert not ledger.exists()  # never a second, empty ledger under the running app


def test_paid_calls_waiting_at_the_caps_edge_never_delay_a_free_cut_out(u2netp_path, tmp_path, monkeypatch):
    """A paid call in flight at the day cap's edge; six more paid calls through the page must wait for
    room: four wait outside the cut-out slots, two are refused at once as a busy server; another visitor's free U2-Net-p
    cut-out runs at once. Before, the waiting calls filled the 4 slots and the free one took minutes."""
    from gradio_client import Client, handle_file

    monkeypatch.setenv("RMBG_LEDGER", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)
    monkeypatch.setenv("RMBG_PAID_WAITING", "4")  # a small waiting room (16 by default), to fill it with six
    price = Decimal("0.0013")  # runware-rembg's price table: it holds 2x, $0.0026
    config = dict(allow_server_keys=True, daily_cap_usd=4 * price, cap_usd=Decimal(100))
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware, **config)) as url:
        assert rest_remove(url, 10, "runware-rembg", key=None).status_code == 200  # the first call, alone
        runware.inject("slow", delay=300, times=1)  # until released below, however long the rest takes
        slow = threading.Thread(target=rest_remove, args=(url, 11, "runware-rembg", None))
        slow.start()  # holds $0.0026 of the $0.0052 cap until released: the next calls must wait for room
        deadline = time.monotonic() + 60
        while sum(1 for c in list(runware.calls) if c.method == "POST") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused, answers = threading.Event(), []

        def paid(seed: int) -> None:
            image = tmp_path / f"paid{seed}.jpg"
            image.write_bytes(jpeg(seed))
            try:
                Client(url, verbose=False).predict(
                    image=handle_file(str(image)), provider="runware-rembg", api_name="/remove"
                )
                answers.append("paid")
            except Exception as exc:  # noqa: BLE001 - the refusal, as gradio_client raises it
                answers.append(str(exc))
                if "paid calls already wait on this server" in str(exc):
                    refused.set()

        waiting = [threading.Thread(target=paid, args=(20 + k,)) for k in range(6)]
        for t in waiting:
            t.start()
        assert refused.wait(60), answers  # the waiting room is full: four wait outside the slots
        started = time.monotonic()
        line = page_remove(url, tmp_path, 30)
        took = time.monotonic() - started
        assert "session: $0 hosted" in line
        assert took < 10, took  # while the paid calls wait (the slow one is still at the vendor)
        assert slow.is_alive()
        runware.release()  # the slow reply goes; the waiting calls then find room or the cap, at once
        slow.join(timeout=120)
        for t in waiting:
            t.join(timeout=180)
    assert sum("already wait" in a for a in answers) == 2, answers
