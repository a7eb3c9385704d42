"""Raw HTTP calls to the app's API (`POST /gradio_api/call/NAME`), checked
before gradio reads them.

gradio validates a raw call's values against its own data models and, when
they do not fit, answers with pydantic's wording (or a list of component
object reprs) and logs a traceback. This ASGI middleware checks the shape of
the call first (a JSON object whose "data" is a list with one value per
input, files as file objects) and answers a readable 422 in gradio's own
error shape, {"error": message}. Values of the right shape pass on unchanged;
their meaning is still checked by the handlers (rmbg's own messages).

No gradio import here: app.py describes each endpoint's inputs as `Slot`s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Sequence

CALL = re.compile(r"^/gradio_api/call/([A-Za-z0-9_\-]+)/?$")
MAX_BODY = 1 << 20  # a raw call carries values, not files (files are uploaded first)


@dataclass(frozen=True)
class Slot:
    """One input of an endpoint: its label and whether it takes a file."""

    label: str
    file: bool = False


def usage(name: str, slots: Sequence[Slot]) -> str:
    order = ", ".join(s.label for s in slots)
    return f"/{name} takes {len(slots)} values in this order: {order}."


def _file_problem(value: object, slot: Slot) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and any(isinstance(value.get(k), str) and value.get(k) for k in ("path", "url")):
        return None
    got = "a plain string" if isinstance(value, str) else f"a value of type {type(value).__name__}"
    return (f"{slot.label} must be a file object, {{\"path\": ...}} for a file uploaded to /gradio_api/upload "
            f"(gradio_client's handle_file() makes one) or null; got {got}.")


def problem(name: str, body: bytes, endpoints: Mapping[str, Sequence[Slot]]) -> str | None:
    """What is wrong with a raw call to /NAME, in a sentence; None when its
    shape is right (or NAME is not ours: gradio answers for it)."""
    slots = endpoints.get(name)
    if slots is None:
        return None
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return f"The request body must be JSON: {{\"data\": [...]}}. {usage(name, slots)}"
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return f"The request body must be a JSON object with a \"data\" list. {usage(name, slots)}"
    if len(data) != len(slots):
        return f"Got {len(data)} values. {usage(name, slots)}"
    for value, slot in zip(data, slots):
        if slot.file and (why := _file_problem(value, slot)):
            return why
    return None


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class RawCallCheck:
    """ASGI middleware: `FastAPI(middleware=[Middleware(RawCallCheck, endpoints=...)])`,
    which gradio's launch(app_kwargs=...) passes through."""

    def __init__(self, app, endpoints: Callable[[], Mapping[str, Sequence[Slot]]]):
        self.app, self.endpoints = app, endpoints

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        match = CALL.match(scope.get("path", "")) if scope.get("type") == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more and size <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        why = ("The request body is too large for a call (upload files to /gradio_api/upload first)."
               if more else problem(match.group(1), body, self.endpoints()))
        if why is not None:
            await _reply(send, 422, {"error": why})
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
