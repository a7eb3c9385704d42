"""A hosted call's overall deadline holds against a vendor that never finishes its answer.

httpx's read timeout bounds each read, not the answer: a server that sends one byte every
0.2 s of its headers or its body never trips it, and held a paid call (and its hold in the
ledger) for as long as it cared to. A real socket server here trickles, for ever, each part of
the answer in turn; every provider's call must end at its deadline, as a timeout that may have
been billed (the request was sent), after exactly one request."""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal

import pytest
from PIL import Image

import rmbg
from rmbg.errors import ProviderTimeoutError
from rmbg.money.ledger import open_ledger
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.hosted import FAKES

DEADLINE_S = 1.5
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


class Trickle:
    """Reads one request, then sends `what` ('headers': the status line and headers; 'body': a
    whole head, then the body) one byte every 0.2 s until the client goes or the test ends."""

    def __init__(self, what: str):
        self.what, self.requests, self.stopped = what, 0, threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            fields = (line.partition(b":") for line in head.split(b"\r\n"))
            length = [int(value) for name, _, value in fields if name.lower() == b"content-length"]
            reader.read(length[0] if length else 0)
            self.requests += 1
            if self.what == "body":
                conn.sendall(HEAD)
            byte = b"H" if self.what == "headers" else b" "
            try:
                while not self.stopped.wait(0.2):
                    conn.sendall(byte)
            except OSError:  # the client hung up: what the deadline is for
                return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.mark.parametrize("what", ["headers", "body"])
@pytest.mark.parametrize("provider_id", ["runware-rembg", "remove-bg", "photoroom", "fal-bria"])
def test_a_trickling_answer_ends_at_the_calls_deadline(provider_id, what):
    server = Trickle(what)
    provider = rmbg.get_provider(
        provider_id,
        api_key=FAKES[provider_id][1],
        base_url=server.url,
        retry=RetryPolicy.immediate(max_attempts=3, deadline_s=DEADLINE_S),
    )
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeoutError, match="may have reached the provider and been billed, so it was not"):
            rmbg.remove_background(Image.new("RGB", (32, 24), (20, 90, 200)), provider, cache=None)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
        provider.close()
    # the trickle never ends by itself: before, the call ran until the test's own timeout
    assert elapsed < DEADLINE_S + 5, f"{elapsed:.1f} s for a {DEADLINE_S} s deadline"
    assert server.requests == 1  # sent, fate unknown: never sent again
    (hold,) = open_ledger().holds(state=None)
    assert hold.provider == provider_id
    assert hold.state != "released" and hold.usd > Decimal(0)  # kept at the estimate: it may have been billed


def test_no_time_left_before_the_connection_is_a_connect_timeout_and_nothing_is_sent():
    """The rule that never sends a paid request twice reads 'not sent' from a ConnectTimeout: a deadline
    that ran out before the connection existed must say so, not look like a read that timed out."""
    import httpx

    from rmbg.image.deadline import within
    from rmbg.providers.hosted.client import make_client

    server = Trickle("body")
    client = make_client()
    try:
        with within(0.0), pytest.raises(httpx.ConnectTimeout):
            client.post(server.url, content=b"{}")
    finally:
        client.close()
        server.stop()
    assert server.requests == 0


def test_fals_cancel_ends_in_its_own_time_however_slowly_it_is_answered():
    """The cancel a failed fal call sends (outside the call's deadline, which has passed) was bounded per
    read only: a cancel answered a byte at a time held the failed call's error for as long as it lasted."""
    from rmbg.providers.hosted.client import make_client
    from rmbg.providers.hosted.fal import CANCEL_TIMEOUT_S, FalQueue, QueueHandle

    server = Trickle("headers")
    client = make_client()
    handle = QueueHandle("r-1", server.url, server.url, server.url + "/cancel")
    started = time.monotonic()
    try:
        assert FalQueue._cancel(handle, {}, client) is False  # not known to be cancelled: counted as charged
    finally:
        elapsed = time.monotonic() - started
        client.close()
        server.stop()
    assert server.requests == 1 and elapsed < CANCEL_TIMEOUT_S + 5, f"{elapsed:.1f} s"
