"""A hostile server behind an image URL (rmbg.image.fetch): redirects to other schemes, malformed
Location and header lines each end in our own refusal (an InvalidImageError, a 400 over REST),
never an httpx exception (a 500); and no log line carries a URL's query (a signed token)."""

from __future__ import annotations

import contextlib
import logging
import socketserver

import pytest
from fastapi import FastAPI
from PIL import Image
from starlette.testclient import TestClient

from rmbg.errors import InvalidImageError
from rmbg.image.fetch import fetch_image
from tests.support.fetch import PNG, running, serving

LOCAL = {"127.0.0.1"}
FOUND = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: "


@contextlib.contextmanager
def answering(raw: dict[str, bytes]):
    """A server on 127.0.0.1 answering GET <path> with the bytes raw[path], as they are; its URL."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode("latin-1")
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            self.wfile.write(raw.get(line.split(" ")[1], b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with running(server) as url:
        yield url


HOSTILE = {
    "/data": (FOUND + b"data:image/png;base64,iVBOR\r\n\r\n", "Only http and https URLs are fetched, not data: "),
    "/mailto": (FOUND + b"mailto:x\r\n\r\n", "Only http and https URLs are fetched, not mailto: mailto:x"),
    "/file": (FOUND + b"file:///etc/passwd\r\n\r\n", "Only http and https URLs are fetched, not file: file:///etc/"),
    "/ipv6": (FOUND + b"http://[::1\r\n\r\n", "/ipv6 redirected to a URL that cannot be read."),
    "/port": (
        FOUND + b"http://127.0.0.1:99999/a.png\r\n\r\n",
        "port 99999 is out of range (1-65535): http://127.0.0.1:99999/a.png",
    ),
    "/control": (FOUND + b"/a\x7fb.png\r\n\r\n", "/control redirected to a URL that cannot be read."),
    "/header": (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "/header could not be fetched: RemoteProtocolError."),
    "/length": (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "/length could not be fetched: RemoteProtocolError."),
    "/status": (b"HTTP/1.1 abc\r\n\r\n", "/status could not be fetched: RemoteProtocolError."),
}


@pytest.mark.parametrize("path", list(HOSTILE))
def test_a_hostile_answer_is_our_refusal_never_an_httpx_error(path):
    raw, said = HOSTILE[path]
    with answering({path: raw}) as base:
        with pytest.raises(InvalidImageError) as caught:
            fetch_image(base + path, allow_hosts=LOCAL)
    assert said in str(caught.value)


def test_every_redirect_target_is_checked_by_the_same_guard_over_rest(monkeypatch, tmp_path):
    from rmbg.webapp import AppConfig
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.rest import routes as rest

    monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
    app = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    web = FastAPI(routes=rest.routes(app, lambda: "u2netp"))
    with serving() as server, TestClient(web) as client:
        for route in ("/api/remove", "/api/video"):
            for target in ("data:image/png;base64,iVBOR", "mailto:x"):
                answer = client.post(route, json={"url": server.url(f"/to?u={target}")})
                scheme = target.split(":")[0]
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"].startswith(f"Only http and https URLs are fetched, not {scheme}: ")


SECRET = "X-Amz-Signature=TOPSECRET"


def test_no_log_line_carries_a_query(caplog):
    with serving() as server, caplog.at_level(logging.INFO):
        assert fetch_image(server.url("/to?u=/img.png"), allow_hosts=LOCAL) == PNG
        with pytest.raises(InvalidImageError, match="/missing answered HTTP 404."):
            fetch_image(server.url(f"/to?u=/missing?{SECRET}"), allow_hosts=LOCAL)
    logged = [r.getMessage() for r in caplog.records]
    assert f"GET {server.url('/to')}: HTTP 302" in logged  # each request is logged, without its query
    assert not [line for line in logged if "TOPSECRET" in line or "u=/" in line]


@pytest.mark.parametrize("vendor", ["fal", "runware"])
def test_a_hosted_result_url_with_a_query_is_logged_without_it(caplog, vendor):
    from rmbg.registry import get_provider
    from tests.fakes.fal import TEST_KEY as FAL_KEY
    from tests.fakes.fal import FalFake
    from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
    from tests.fakes.runware import RunwareFake

    fake = (
        FalFake(file_urls=True, file_query=SECRET)
        if vendor == "fal"
        else RunwareFake(force_output_type="URL", file_query=SECRET)
    )
    with fake, caplog.at_level(logging.INFO):
        provider_id, key = ("fal-bria", FAL_KEY) if vendor == "fal" else ("runware-bria", RUNWARE_KEY)
        provider = get_provider(provider_id, api_key=key, base_url=fake.url)
        provider.matte(Image.new("RGB", (40, 30), (200, 30, 30)))
        fetched = [c for c in fake.calls if c.method == "GET" and c.query]
    assert fetched  # the result was fetched from a URL with a query
    sent = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert sent and not [line for line in sent if "?" in line]  # the calls to the vendor, without a query
    assert not [r.getMessage() for r in caplog.records if "TOPSECRET" in r.getMessage()]


def test_an_icon_behind_a_url_is_not_decoded_to_check_it_is_an_image(monkeypatch):
    """The fetch's own check (an image at all?) opened the file: Pillow decodes an icon's image as it opens it."""
    from tests.test_imageio import _bomb_png, _icon

    decoders, real = [], Image._getdecoder
    monkeypatch.setattr(Image, "_getdecoder", lambda *a, **k: decoders.append(a[1]) or real(*a, **k))
    icon = _icon(_bomb_png(7000, 7000))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/x-icon\r\nContent-Length: %d\r\n\r\n" % len(icon)
    with answering({"/favicon.ico": head + icon}) as base:
        made = Image.core.get_stats()["new_count"]
        assert fetch_image(base + "/favicon.ico", allow_hosts=LOCAL) == icon
    assert decoders == [] and Image.core.get_stats()["new_count"] == made
