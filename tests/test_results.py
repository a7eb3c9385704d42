"""Provider result files: fetched behind the same guard as visitors' URLs,
streamed with a byte cap, their pixels checked from the header before
anything decodes them (rmbg.providers.hosted.payload.download_result)."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import ProviderResponseError
from rmbg.providers.hosted import runware
from rmbg.providers.hosted.payload import download_result
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.providers.hosted.runware import runware_bria
from tests.fakes.runware import TEST_KEY, RunwareFake


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (RGBA) and whose pixels are a few
    bytes of nothing: any decoder would have to allocate the whole image first."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class Files(http.server.ThreadingHTTPServer):
    """Serves `files` {path: (bytes, content type)} on 127.0.0.1, counting GETs."""

    def __init__(self, files: dict[str, tuple[bytes, str]]):
        self.files, self.gets = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.gets.append(self.path)
                body, kind = outer.files.get(self.path, (b"", ""))
                self.send_response(200 if kind else 404)
                self.send_header("Content-Type", kind or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def files():
    server = Files(
        {"/huge.png": (huge_png_header(12_000, 12_000), "image/png"), "/page.png": (b"<html>sorry</html>", "text/html")}
    )
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fetch(server: Files, path: str, base_url: str | None = None, max_bytes: int = 2**20) -> bytes:
    return download_result(
        server.base + path,
        "test-provider",
        base_url=base_url or server.base,
        max_bytes=max_bytes,
        seconds_left=lambda: 5.0,
    )


def test_a_144_mp_result_is_refused_from_its_header_before_decoding(files):
    with pytest.raises(
        ProviderResponseError,
        match=r"12000x12000 image \(144 MP\), over the 40 MP limit; refused "
        r"before decoding\.",
    ):
        fetch(files, "/huge.png")
    files.files["/bomb.png"] = (huge_png_header(30_000, 30_000), "image/png")
    with pytest.raises(ProviderResponseError, match="far over the pixel limit; refused before decoding"):
        fetch(files, "/bomb.png")


def test_a_result_of_another_type_or_over_the_byte_cap_is_refused(files):
    with pytest.raises(ProviderResponseError, match="returned a text/html file where an image was expected"):
        fetch(files, "/page.png")
    with pytest.raises(ProviderResponseError, match=r"over the 6\.10352e-05 MiB limit; refused\."):
        fetch(files, "/huge.png", max_bytes=64)


def test_a_result_url_outside_the_providers_own_host_passes_the_visitors_guard(files, monkeypatch):
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    with pytest.raises(
        ProviderResponseError, match="will not fetch: Refused to fetch from 127.0.0.1: 127.0.0.1 is a loopback address"
    ):
        fetch(files, "/huge.png", base_url="https://api.runware.ai")
    with pytest.raises(ProviderResponseError, match="will not fetch: Only http and https URLs are fetched, not file"):
        download_result(
            "file:///etc/passwd", "test-provider", base_url=files.base, max_bytes=1024, seconds_left=lambda: 5.0
        )
    assert files.gets == []  # refused before any request


def rgb_image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")


def test_a_runware_image_url_on_another_host_is_never_fetched(monkeypatch):
    """The fake answers with an imageURL on 127.0.0.1 while the provider was configured as localhost:
    to the guard that is another host, and a loopback one."""
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    with RunwareFake(force_output_type="URL") as fake:
        provider = runware_bria(
            api_key=TEST_KEY, base_url=fake.url.replace("127.0.0.1", "localhost"), retry=RetryPolicy.immediate()
        )
        with pytest.raises(ProviderResponseError, match="127.0.0.1 is a loopback address"):
            provider.matte(rgb_image())
        assert [c.method for c in fake.calls] == ["POST"]  # the task, and no download


def test_a_runware_image_url_is_streamed_with_a_byte_cap(monkeypatch):
    monkeypatch.setattr(runware, "MAX_RESULT_BYTES", 100)
    with RunwareFake(force_output_type="URL") as fake:
        provider = runware_bria(api_key=TEST_KEY, base_url=fake.url, retry=RetryPolicy.immediate())
        with pytest.raises(ProviderResponseError, match=r"MiB limit; refused\."):
            provider.matte(rgb_image())
        assert [c.method for c in fake.calls] == ["POST", "GET"]  # fetched once, not again


def test_log_lines_carry_no_piece_of_a_configured_key(monkeypatch):
    """The app's log handlers scrub every configured key: the message, its arguments and a traceback."""
    import io as _io
    import logging

    from rmbg.providers.hosted.payload import SecretFilter

    key_id, secret = "5d1e8f0a-3c2b-4e6f-9a7d-0b1c2d3e4f50", "9f86d081884c7d659a2feaa0c55ad015"
    monkeypatch.setenv("FAL_KEY", f"{key_id}:{secret}")
    stream = _io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())
    log = logging.getLogger("rmbg.test-secrets")
    log.addHandler(handler)
    try:
        log.warning("provider said %s", f"bad secret {secret}")
        try:
            raise ValueError(f"quoted {secret[4:20]} and {key_id}")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "provider said bad secret ***" in text and "ValueError: quoted *** and ***" in text
    assert not any(secret[i : i + 8] in text for i in range(len(secret) - 7)) and key_id not in text
