"""Budgets before work: a frame's size is refused from the header's size and
the options, before anything decodes, runs or pays; what an accepted frame
of a tiny upload costs in memory is measured."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

import rmbg
from rmbg.errors import InvalidImageError
from rmbg.image.framing import (
    OUTPUT_FLOOR_PIXELS,
    check_budget,
    framing_of,
    output_budget,
)
from rmbg.types import RenderOptions
from tests.support.providers import CountingProvider


def tiny_png(width=80, height=60) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "options",
    [
        {"crop": True, "margin": "7000px"},
        {"crop": True, "margin": 9950},
        {"canvas": "1:20", "crop": True, "margin": "1500px"},
        {"canvas": "3000x3000"},
    ],
)
def test_a_frame_over_budget_is_refused_before_the_provider_is_called(options):
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match="at most 4.2 MP|would be 3080x61600"):
        rmbg.remove_background(tiny_png(), provider, cache=None, **options)
    assert provider.calls == 0  # a paid provider is never called for a frame that will be refused


def test_a_canvas_over_the_pixel_limit_is_refused_when_parsed():
    with pytest.raises(InvalidImageError, match="100.0 MP, over the limit of 40 MP"):
        framing_of(canvas="10000x10000")


def test_the_budget_is_checked_on_the_header_before_decoding():
    """A PNG whose pixel data is garbage: refused for its frame, not for its damage (nothing was decoded)."""
    whole = tiny_png(4000, 3000)
    data = whole[: len(whole) // 2]  # the header is whole, the pixels cut off: decoding would fail
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match="could make a"):
        rmbg.remove_background(bytes(data), provider, cache=None, crop=True, margin="3000px")
    with pytest.raises(InvalidImageError, match="damaged|truncated"):
        rmbg.remove_background(bytes(data), provider, cache=None)


def test_budget_grows_with_the_photo_and_stops_at_the_pixel_limit(monkeypatch):
    monkeypatch.delenv("RMBG_MAX_PIXELS", raising=False)
    assert output_budget((80, 60)) == OUTPUT_FLOOR_PIXELS
    assert output_budget((2000, 1500)) == 4 * 2000 * 1500
    assert output_budget((6000, 6000)) == 40_000_000
    check_budget((4000, 3000), framing_of(crop=True, margin="10%"))  # 4800x3800: fine
    with pytest.raises(InvalidImageError):
        check_budget((4000, 3000), framing_of(crop=True, margin="49%"))


def test_rerendering_with_a_frame_over_budget_is_refused_before_allocating():
    result = rmbg.remove_background(tiny_png(), CountingProvider(), cache=None)
    with pytest.raises(InvalidImageError, match="could make a"):
        result.render(crop=True, margin="7000px")
    assert result.render(canvas="2000x2000").image.size == (2000, 2000)


MEASURE = textwrap.dedent("""
    import io, json, resource, sys
    from PIL import Image
    import rmbg
    from tests.support.providers import CountingProvider
    buf = io.BytesIO(); Image.new("RGB", (80, 60), (200, 30, 30)).save(buf, "PNG")
    provider = CountingProvider(); rmbg.remove_background(buf.getvalue(), provider, cache=None)  # warm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for options in json.loads(sys.argv[1]):
        try:
            rmbg.remove_background(buf.getvalue(), provider, cache=None, **options).encode("png")
        except rmbg.InvalidImageError:
            pass
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
""")

# The largest frames a tiny upload may still ask for, and those the issue measured.
WORST = [
    {"canvas": "2048x2048", "background": "white"},
    {"canvas": "2048x2048", "clean_edges": True},
    {"canvas": "1:1", "crop": True, "margin": "983px", "background": "white"},
    {"crop": True, "margin": "7000px"},
    {"canvas": "10000x10000"},
    {"canvas": "9999x1"},
]


def test_a_tiny_upload_costs_under_300_mb_whatever_its_frame(tmp_path):
    options = [{("refine_foreground" if k == "clean_edges" else k): v for k, v in o.items()} for o in WORST]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(options)], capture_output=True, text=True, timeout=120, check=True
    )
    grown_mb = float(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 300, out.stdout


# --- deadlines on every wait -------------------------------------------------------


class Trickle:
    """A server on 127.0.0.1 that answers a status line, then one header byte
    every `every` seconds, forever (until stopped): each read gets a byte in
    time, so only an overall deadline can end the request."""

    def __init__(self, every: float = 0.2):
        import socket
        import threading

        self.every, self.stop, self.connected = every, threading.Event(), threading.Semaphore(0)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._trickle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _trickle(self, conn) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self.connected.release()
                while not self.stop.wait(self.every):  # the server's pace, not the test waiting
                    conn.sendall(b"a")
            except OSError:
                return

    def url(self, path: str = "/photo.png") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def trickle():
    server = Trickle()
    try:
        yield server
    finally:
        server.close()


def test_a_server_trickling_its_headers_is_cut_at_the_overall_deadline(trickle):
    import time

    from rmbg.image.fetch import fetch_image

    started = time.monotonic()
    with pytest.raises(InvalidImageError, match="did not answer in time"):
        fetch_image(trickle.url(), allow_hosts={"127.0.0.1"}, read_timeout=0.5, deadline_s=1.0)
    took = time.monotonic() - started
    # each read got a byte within 0.5 s: only the 1 s deadline ended it (the trickle never stops by itself)
    assert 0.9 <= took < 5.0


def test_slow_urls_do_not_hold_the_slots_of_other_rest_requests(trickle, monkeypatch):
    """Eight trickling URLs at once, then an upload: answered while they still hang."""
    import concurrent.futures
    import time

    import httpx

    from tests.fakes.fal import FalFake
    from tests.fakes.runware import RunwareFake
    from tests.support.app import app_config, serve

    monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("RMBG_URL_DEADLINE_S", "4")
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as base:
        from tests.fakes.fal import TEST_KEY

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            slow = [
                pool.submit(httpx.post, base + "api/remove", json={"url": trickle.url(f"/{i}.png")}, timeout=30)
                for i in range(8)
            ]
            for _ in range(8):
                assert trickle.connected.acquire(timeout=10)  # all eight are being fetched
            started = time.monotonic()
            quick = httpx.post(
                base + "api/remove",
                files={"image": ("tiny.png", tiny_png(), "image/png")},
                data={"provider": "fal-bria"},
                headers={"X-Fal-Key": TEST_KEY},
                timeout=30,
            )
            took = time.monotonic() - started
            assert quick.status_code == 200 and took < 5, (quick.text, took)
            assert not any(f.done() for f in slow)  # they still hang, cut only at their deadline
            answers = [f.result() for f in slow]
        assert {(a.status_code, a.json()["error"].split(" did not")[-1]) for a in answers} == {
            (400, " answer in time.")
        }


@pytest.mark.parametrize(
    "fmt, size, name, most", [("webp", (16384, 4), "WebP", 16383), ("jpeg", (65501, 2), "JPEG", 65500)]
)
def test_an_output_its_format_cannot_hold_is_refused_before_the_provider_is_called(fmt, size, name, most):
    """A panorama within the pixel limit but longer than a WebP (16383 px) or a JPEG (65500 px) can be:
    its encoder raised a ValueError or an OSError after the provider had been paid (a 500 over REST).
    Refused from the header's size now, before any call, and an encoding of a kept result says it too."""
    provider = CountingProvider()
    said = f"A {name} image can be at most {most} pixels on a side, and this output would be {size[0]}x{size[1]}"
    with pytest.raises(InvalidImageError, match=said):
        rmbg.remove_background(tiny_png(*size), provider, cache=None, options=RenderOptions(format=fmt))
    assert provider.calls == 0  # the app's and the CLI's format travels in the options
    result = rmbg.remove_background(tiny_png(*size), provider, cache=None)  # PNG holds it
    assert Image.open(io.BytesIO(result.encode())).size == size
    with pytest.raises(InvalidImageError, match=said):
        result.encode(fmt)
    held = (most, 2)
    kept = rmbg.remove_background(tiny_png(*held), provider, cache=None, options=RenderOptions(format=fmt))
    assert Image.open(io.BytesIO(kept.encode(fmt))).size == held


def test_a_frame_its_format_cannot_hold_is_refused_before_the_provider_is_called():
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match="at most 16383 pixels on a side, and this output would be 16400x700"):
        framing = framing_of(crop=True, margin="200px")
        rmbg.remove_background(
            tiny_png(16000, 300), provider, cache=None, options=RenderOptions(format="webp", framing=framing)
        )
    assert provider.calls == 0
