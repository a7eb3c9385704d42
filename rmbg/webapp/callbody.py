"""The body of a raw call to gradio, read and parsed once for every check in front of it.

rmbg.webapp.rawcalls (calls by name) and rmbg.webapp.fncalls (calls by number) both check a
call's JSON body before gradio reads it; a /run/ call passes through both. The first of them that
needs the body reads it (`call_body`: up to MAX_BODY; a larger one is read to its end, up to
DRAIN_LIMIT, and dropped, so its sender hears the 422 rather than a reset connection), parses it
once (a key given twice in an object is a 422, a compressed body a 415: each said in a sentence,
as REST says them) and keeps it in the ASGI scope under KEY; the next takes it from there instead of reading
again. gradio is handed the exact bytes that came, and the scope lets go of them once it has.

Also the error answer of every middleware here (`reply_json`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

KEY = "rmbg.body"  # in the ASGI scope: the Body read by a middleware in front
MAX_BODY = 1 << 20  # a raw call carries values, not files (files are uploaded first)
DRAIN_LIMIT = 64 << 20  # read (and drop) this much of a larger body so its sender hears the answer
TOO_LARGE = "The request body is too large for a call (upload files to /gradio_api/upload first)."
# A body sent compressed (Content-Encoding: gzip, deflate, br): read as it came, it was "not JSON"; REST says the same.
COMPRESSED = "Compressed request bodies are not accepted: send the body uncompressed (no Content-Encoding)."

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class Body:
    """A call's body as it came (`raw`) and its JSON value, parsed once (`value`; None for an
    empty body, and for one that is not JSON, which `is_json` tells apart)."""

    raw: bytes
    is_json: bool
    value: Any = None
    repeated: str | None = None  # a key an object of it gives twice (then not is_json): refused, never the last kept


class _Repeated(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, each key once (json.loads kept the last of a key given twice)."""
    kept: dict[str, Any] = {}
    for key, value in pairs:
        if key in kept:
            raise _Repeated(key)
        kept[key] = value
    return kept


def parse(raw: bytes) -> Body:
    """The one JSON parse of a call's body."""
    try:
        return Body(raw, True, json.loads(raw or b"null", object_pairs_hook=_once))
    except _Repeated as exc:
        return Body(raw, False, repeated=exc.key)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return Body(raw, False)


def repeated(key: str) -> str:
    """The refusal of a JSON body that gives `key` twice in one object (REST's words for a field sent twice)."""
    return f"The key {key[:40]!r} is sent more than once in the JSON body: send each key once."


def encoded(scope: Mapping[str, Any]) -> bool:
    """Whether the request says its body is compressed (any Content-Encoding but identity)."""
    said = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-encoding"]
    return any(v.strip().lower() not in (b"", b"identity") for v in said)


def held(scope: dict) -> Body | None:
    """The body a middleware in front read for this request, if one did."""
    body = scope.get(KEY)
    return body if isinstance(body, Body) else None


async def call_body(scope: dict, receive: Receive, send: Send) -> tuple[Body, Receive] | None:
    """The request's body and the `receive` to pass on with it to the app behind: the one a
    middleware in front read, or read and parsed here (then kept in the scope for those behind,
    and replayed to the app). None when the body was over MAX_BODY, compressed or gave a key twice
    (answered here: a 422, 415, 422) or the client went away."""
    body = held(scope)
    if body is not None:
        return body, receive  # `receive` already replays it
    raw, whole = await read_body(receive)
    if raw is None:
        return None
    if encoded(scope):
        await reply_json(send, 415, {"error": COMPRESSED})
        return None
    if not whole:
        await reply_json(send, 422, {"error": TOO_LARGE})
        return None
    scope[KEY] = body = parse(raw)
    if body.repeated is not None:  # refused at every door that reads a body here, whatever it names
        await reply_json(send, 422, {"error": repeated(body.repeated)})
        return None
    return body, replaying(raw, receive, scope)


def replaying(raw: bytes, receive: Receive, scope: dict) -> Receive:
    """`receive` for the app behind: the body already read, then what comes after (a disconnect).
    The scope drops its copy as the app takes the body (gradio keeps a queued call's request)."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            scope.pop(KEY, None)
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


async def read_body(receive: Receive, limit: int = MAX_BODY, drain: int = DRAIN_LIMIT) -> tuple[bytes | None, bool]:
    """(the body, or None when the client left; False when it was over `limit`,
    in which case the rest was read and dropped, up to `drain`: `limit` itself reads no more)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        more = message.get("more_body", False) and size <= drain
    return b"".join(chunks), size <= limit


async def reply_json(send: Send, status: int, payload: dict, *, close: bool = False) -> None:
    """Answer `payload` as JSON with HTTP `status`; `close`: and close the connection after (the
    request's body may be unread)."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
