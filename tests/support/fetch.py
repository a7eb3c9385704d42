"""A real HTTP server on 127.0.0.1 for the image-URL tests (rmbg.image.fetch, the
REST API's image_url): a PNG, redirects, wrong content types, big and stalled bodies."""

from __future__ import annotations

import contextlib
import io
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


def png_bytes(seed=0, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


PNG = png_bytes()


@contextlib.contextmanager
def running(server: socketserver.BaseServer) -> Iterator[str]:
    """`server` (bound on 127.0.0.1) served on a thread of its own; yields its base URL, then stops it."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Server:
    """Routes: /img.png, /text-png (a PNG as text/plain), /html (HTML as image/png),
    /redirect/N (N more redirects, then /img.png), /to?u=URL (one redirect to URL),
    /big (3 MB, chunked, no length), /declared-big (Content-Length 3 MB), /slow
    (headers, then waits until released), /missing (404)."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.release = threading.Event()
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", kind="image/png", headers=()):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Host", "")))
                path = self.path
                if path == "/img.png":
                    self._send(200, PNG)
                elif path == "/text-png":
                    self._send(200, PNG, "text/plain")
                elif path == "/html":
                    self._send(200, b"<html><body>hello</body></html>", "image/png")
                elif path.startswith("/redirect/"):
                    left = int(path.rsplit("/", 1)[1])
                    target = "/img.png" if left == 0 else f"/redirect/{left - 1}"
                    self._send(302, headers=[("Location", target)])
                elif path.startswith("/to?u="):
                    self._send(302, headers=[("Location", path[len("/to?u=") :])])
                elif path == "/big":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"\0" * 65536
                    try:
                        for _ in range(48):  # 3 MB
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            outer.sent += len(chunk)
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        pass  # the client stopped reading
                elif path == "/declared-big":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(3 * 2**20))
                    self.end_headers()
                elif path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(PNG)))
                    self.end_headers()
                    self.wfile.flush()
                    outer.release.wait(30)
                else:
                    self._send(404, b"not here", "text/plain")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextlib.contextmanager
def serving():
    """A started Server, stopped (and its stalled requests released) afterwards."""
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
