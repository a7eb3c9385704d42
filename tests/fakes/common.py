"""Shared machinery of the fake provider servers.

A FakeServer is a real HTTP server (standard library, threaded) bound to
127.0.0.1 on a free port. It records every request as a `Call`, answers
through `handle()`, and pops injected `Fault`s per operation.

Mattes are real: `simple_matte()` marks as foreground every pixel whose
colour is far from the mean colour of the image border (deterministic).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Call:
    """One request the fake received. Header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Fault:
    """A fault to inject.

    kind: the server's fault name (see each server's FAULTS docstring).
    op: which operation it hits ("*" = the next request of any kind).
    times: how many requests it hits before it is used up.
    retry_after: value of a Retry-After header to send, if any.
    delay: seconds to hold the response (the "slow" fault).
    """

    kind: str
    op: str = "*"
    times: int = 1
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class Reply:
    """status 0 = drop: the request was read, then the connection is closed with no answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def dropped(cls) -> Reply:
        return cls(0)

    @classmethod
    def json(cls, status: int, obj, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        call = Call(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply = self.server.fake.dispatch(call)
        if reply.status == 0:  # the "drop" fault: read it, answer nothing
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format, *args):  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeServer

    def handle_error(self, request, client_address) -> None:
        """A client that went while its answer was written (its deadline ended the call, as the tests of
        deadlines make it) is what a vendor sees too: not the fake's fault, not printed; anything else is."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeServer:
    """Base of the fakes: lifecycle, call log, fault queue."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.calls: list[Call] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None
        self._scheme = "http"

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def use_tls(self, context) -> FakeServer:
        """Serve HTTPS with `context` (an ssl.SSLContext for the server side), before
        start(): for official clients that only speak https (fal_client)."""
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https"
        return self

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases any "slow" reply still waiting
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def release(self) -> None:
        """Let every held ("slow") reply go now, the server still up; a "slow" fault no longer holds after."""
        self._stopping.set()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def inject(self, fault: Fault | str, **kw) -> Fault:
        """Queue a fault: inject("rate-limit", op="submit", times=2, retry_after="1")."""
        if isinstance(fault, str):
            fault = Fault(fault, **kw)
        if fault.kind not in self.FAULTS:
            raise ValueError(f"unknown fault {fault.kind!r}; known: {', '.join(sorted(self.FAULTS))}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._faults.clear()

    def take_fault(self, op: str) -> Fault | None:
        """The first queued fault for `op` (or "*"), used once."""
        with self._lock:
            for fault in self._faults:
                if fault.op in ("*", op):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def common_reply(self, fault: Fault) -> Reply | None:
        """Faults every fake shares: "drop" (the request arrives, the connection then closes)."""
        return Reply.dropped() if fault.kind == "drop" else None

    def next_fault(self, op: str) -> tuple[Reply | None, Fault | None]:
        """Apply the next fault queued for `op`: a "slow" one holds the request
        and is spent; one that `error_reply` turns into an HTTP error gives
        that reply. Returns (error reply or None, fault left for the handler)."""
        fault = self.take_fault(op)
        if fault is not None and fault.kind == "slow":
            self.hold(fault.delay)
            return None, None
        if fault is not None and (error := self.common_reply(fault) or self.error_reply(fault)) is not None:
            return error, fault
        return None, fault

    def error_reply(self, fault: Fault) -> Reply | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def hold(self, seconds: float) -> None:
        """Hold a reply for `seconds` (released early when the server stops)."""
        self._stopping.wait(seconds)

    def dispatch(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
        try:
            return self.handle(call)
        except Exception as exc:  # a bug in the fake must show up, not hang the client
            return Reply.json(500, {"detail": f"fake server bug: {type(exc).__name__}: {exc}"})

    FAULTS: frozenset[str] = frozenset()

    def handle(self, call: Call) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connecting is refused,
    so a request to it never leaves the machine."""
    import socket

    with socket.socket() as sock:  # bound, never listening: the port stays ours until closed, then unused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- request bodies ---------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One field of a form: its value as bytes, and the file name when it is a file."""

    data: bytes
    filename: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def form_fields(call: Call) -> dict[str, Part] | None:
    """The fields of a multipart/form-data or application/x-www-form-urlencoded
    body (JSON objects too, their values as text); None when the body is none
    of these (the first value wins for a repeated name)."""
    ctype = call.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        from email import policy
        from email.parser import BytesParser

        message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + call.body)
        if not message.is_multipart():
            return None
        fields: dict[str, Part] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and name not in fields:
                fields[name] = Part(part.get_payload(decode=True) or b"", part.get_filename())
        return fields
    if ctype.startswith("application/x-www-form-urlencoded"):
        return {
            k: Part(v[0].encode()) for k, v in parse_qs(call.body.decode("latin-1"), keep_blank_values=True).items()
        }
    if ctype.startswith("application/json"):
        try:
            body = json.loads(call.body)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return {k: Part((v if isinstance(v, str) else json.dumps(v)).encode()) for k, v in body.items()}
    return None


def read_image(data: bytes) -> Image.Image | None:
    """Encoded image bytes -> an RGB image, or None when they are not an image."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return img.convert("RGB")


# --- images -------------------------------------------------------------------


def decode_image_input(value: str) -> Image.Image | None:
    """A data URI or bare base64 string -> RGB image, or None if it is neither."""
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(payload, validate=True)
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (binascii.Error, ValueError, OSError):
        return None
    return img.convert("RGB")


def simple_matte(rgb: Image.Image) -> Image.Image:
    """Deterministic matte (mode L): distance from the mean border colour,
    0 below 16 levels, 255 above 64, linear in between. Worked out in bands of
    rows that stay in the cache (a 12 MP input took seconds as one float array),
    with the same float32 steps, so the same levels, as one piece."""
    arr = np.asarray(rgb.convert("RGB"))
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).astype(np.float32)
    mean = border.mean(axis=0)
    out = np.empty(arr.shape[:2], np.uint8)
    rows = max(1, 65536 // arr.shape[1])
    for top in range(0, arr.shape[0], rows):
        part = arr[top : top + rows].astype(np.float32)
        part -= mean
        part *= part
        dist = np.sqrt(part[..., 0] + part[..., 1] + part[..., 2])  # the norm over the channels, in order
        out[top : top + rows] = np.clip((dist - 16.0) * (255.0 / 48.0), 0, 255).round()
    return Image.fromarray(out, "L")


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def cutout(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def serve_forever(make, description: str, argv=None) -> None:
    """Command-line entry: run one fake until Ctrl-C (used by `python -m`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    args = parser.parse_args(argv)
    fake = make(host=args.host, port=args.port)
    print(f"{type(fake).__name__} listening on {fake.url}", flush=True)
    try:
        fake._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._httpd.server_close()
