"""gradio's raw routes that take a session, an event, an upload's parts or a file path, answered
in our words where gradio crashes or repeats what it was sent:

- `GET /gradio_api/queue/data?session_hash=...` and `GET /gradio_api/call/NAME/EVENT_ID` (the
  messages of a session, or of one call): for a session or an event the queue does not hold,
  gradio starts its event stream and then fails inside it (a traceback in the log, a connection
  cut mid-answer); here a 404 comes first;
- `POST /gradio_api/upload`: a "files" part that is no file (no filename) passes gradio's parser
  and fails its upload (a 500 with a TypeError traceback); here the body is watched as it passes
  and such a part stops gradio's parser with its own refusal (a 400 in our words), before gradio
  writes anything of it;
- `GET /gradio_api/file=PATH`: gradio's refusal repeats the path, resolved on the server; here
  the refusal keeps its status and says no path.

No gradio import here: the queue is gradio's, read through its attributes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .callbody import Receive, Send, read_body, reply_json

DATA = "/gradio_api/queue/data"
EVENT = re.compile(r"^/gradio_api/call/(?:v2/)?[^/]+/([^/]+)/?$")  # the event id
UPLOAD = "/gradio_api/upload"
FILE = re.compile(r"^/gradio_api/file[=/]")
NO_SESSION = (
    "There is no open session with that session_hash: join the queue (POST /gradio_api/queue/join) "
    "first, then read its messages here."
)
NO_EVENT = (
    "There is no call with that event id (it may have ended and been read); start one with POST /gradio_api/call/NAME."
)
NOT_A_FILE = 'Each "files" part of an upload must be a file: a multipart part with a filename.'
NO_FILE = "There is no file this app serves at that address; use the URL that a result gave."


def session_open(queue: Any, session: str) -> bool:
    """Whether gradio's queue holds messages for `session` (its event stream answers)."""
    return session in queue.pending_messages_per_session


def event_session(queue: Any, event_id: str) -> str:
    """The session whose messages the call `event_id` is in, as gradio finds it (routes.py,
    simple_predict_get): the event's own, the session still holding its id, or the id itself."""
    event = queue.event_ids_to_events.get(event_id)
    if event is not None:
        return str(event.session_hash)
    held = queue.pending_event_ids_session.items()
    return next((s for s, ids in list(held) if event_id in ids), event_id)


class FileParts:
    """Watches an upload's multipart body as it passes (python-multipart, as gradio parses it):
    `bad` once a part named "files" has no filename. A body it cannot parse is left to gradio."""

    def __init__(self, content_type: bytes):
        from python_multipart.multipart import MultipartParser, parse_options_header

        self.options = parse_options_header
        self.bad = False
        self.header, self.value, self.disposition = b"", b"", b""
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        callbacks = {
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }
        self.parser: Any = MultipartParser(boundary, callbacks) if boundary else None  # type: ignore[arg-type]

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition = self.value
        self.header, self.value = b"", b""

    def _headers_finished(self) -> None:
        options = self.options(self.disposition)[1]
        if options.get(b"name") == b"files" and b"filename" not in options:
            self.bad = True
        self.disposition = b""

    def feed(self, chunk: bytes) -> None:
        if self.parser is None or self.bad:
            return
        try:
            self.parser.write(chunk)
        except Exception:  # noqa: BLE001 - a malformed body: gradio's parser answers it
            self.parser = None


class RouteCheck:
    """ASGI middleware: `Middleware(RouteCheck, queue=lambda: demo._queue)` in launch(app_kwargs=...)."""

    def __init__(self, app, queue: Callable[[], Any]):
        self.app, self.queue = app, queue

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        method = scope.get("method")
        if method == "GET" and (path.rstrip("/") == DATA or EVENT.match(path)):
            why = self.stream_problem(path, scope.get("query_string", b""))
            if why is not None:
                await reply_json(send, why[0], {"error": why[1]})
                return
        elif method == "POST" and path.rstrip("/") == UPLOAD:
            await self.upload(scope, receive, send)
            return
        elif method in ("GET", "HEAD") and FILE.match(path):
            await self.app(scope, receive, _without_path(send))
            return
        await self.app(scope, receive, send)

    def stream_problem(self, path: str, query: bytes) -> tuple[int, str] | None:
        queue = self.queue()
        event = EVENT.match(path)
        if event is not None:
            return None if session_open(queue, event_session(queue, event.group(1))) else (404, NO_EVENT)
        given = parse_qs(query.decode("latin-1")).get("session_hash", [""])[0]
        if not given:
            return 422, "Give the session_hash the page joined the queue with: /gradio_api/queue/data?session_hash=..."
        return None if session_open(queue, given) else (404, NO_SESSION)

    async def upload(self, scope: dict, receive: Receive, send: Send) -> None:
        """A part that is no file stops gradio's parser with the error it answers as a 400 in its
        own words (here ours), after deleting what it wrote; the rest of the body is then read."""
        from starlette.formparsers import MultiPartException  # what gradio's parser answers as a 400

        parts = FileParts(dict(scope.get("headers") or []).get(b"content-type", b""))

        async def watched() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                parts.feed(message.get("body", b""))
                if parts.bad:
                    raise MultiPartException(NOT_A_FILE)
            return message

        await self.app(scope, watched, send)
        if parts.bad:
            await read_body(receive)  # so that its sender hears the answer


def _without_path(send: Send) -> Send:
    """`send` for a file's route: a 403 or 404 is answered in our words (gradio's repeats the path)."""
    refusing: int | None = None

    async def answer(message: dict) -> None:
        nonlocal refusing
        if message["type"] == "http.response.start" and message.get("status") in (403, 404):
            refusing = message["status"]
            return
        if refusing is None:
            await send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await reply_json(send, refusing, {"error": NO_FILE})

    return answer
