"""Raw HTTP calls of the page's functions by number, checked before gradio reads them:
`POST /gradio_api/queue/join` (how the page runs every queued event), a page call of an event
that skips the queue (`/gradio_api/run/predict` with an `fn_index`, which rmbg.webapp.rawcalls
lets through), `/gradio_api/cancel` and `/gradio_api/reset`.

gradio looks the function up by `fn_index` without checking it (a number that is no function
answers a 500 with a KeyError traceback), and takes a "data" list of the wrong length, an
example's number out of range, or a click's event data that is no click, only to fail inside
the run with a traceback in the log and, on /run/, a 500 that lists the page's components.
This ASGI middleware answers each of those first, in our words and gradio's error shape
({"error": message}): a 404 for a number that is no function run on the server, a 422 for a
body of the wrong shape, as rmbg.webapp.rawcalls does for the named endpoints. A call as the
page sends it passes on as it came. The body is read and parsed once (rmbg.webapp.callbody): a
/run/ call's, by rmbg.webapp.rawcalls in front.

No gradio import here: rmbg.webapp.page describes each function as a `PageFn`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from .callbody import Body, Receive, Send, call_body, reply_json

JOIN = "/gradio_api/queue/join"
PAGE_CALL = re.compile(r"^/gradio_api/(run|api)/[^/]+/?$")  # with an fn_index: the page's own call
CANCEL, RESET = "/gradio_api/cancel", "/gradio_api/reset"
SESSION = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")  # the page's own are a dozen letters and digits
JOIN_SHAPE = '{"data": [...], "fn_index": N, "trigger_id": N, "session_hash": "..."}'
TYPES = {"event_id": (str, "a string"), "oauth_token": (str, "a string"), "simple_format": (bool, "true or false")}


@dataclass(frozen=True)
class PageFn:
    """One of the page's functions run on the server, as a call of it must give its values."""

    inputs: int  # how many values its "data" list holds
    examples: Mapping[int, int] = field(default_factory=dict)  # an Examples input's position -> how many it holds
    point: bool = False  # a click on a picture (.select of an image): event_data {"index": [x, y], ...}


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and abs(value) < 1e9  # type: ignore[arg-type]


def join_problem(
    payload: object, fns: Mapping[int, PageFn], components: Collection[int], queued: bool = True
) -> tuple[int, str] | None:
    """(status, sentence) for what is wrong with a call of a page function by number (`queued`:
    /queue/join, which needs a session; else a page call on /run/); None when it is as the page
    sends it. `fns`: the functions by number; `components`: the ids a trigger_id may name."""
    if not isinstance(payload, dict):
        return 422, f"The request body must be a JSON object: {JOIN_SHAPE}, as the page sends it."
    index = payload.get("fn_index")
    if not _is_int(index):
        return 422, f'"fn_index" must be the number of one of the page\'s functions: {JOIN_SHAPE}.'
    fn = fns.get(index)  # type: ignore[arg-type]  # an int: checked above
    if fn is None:
        return 404, "There is no page function with that fn_index run on the server; /config lists them."
    session = payload.get("session_hash")
    if (queued or session is not None) and not (isinstance(session, str) and SESSION.match(session)):
        return 422, '"session_hash" must be a string of 1 to 128 letters, digits, "-" or "_" (one per visit).'
    trigger = payload.get("trigger_id")
    if trigger is not None and not (_is_int(trigger) and trigger in components):
        return 422, '"trigger_id" must be null or the id of one of the page\'s components (see /config).'
    if payload.get("batched") not in (None, False):
        return 422, '"batched" must be false or left out: the page\'s functions take one call at a time.'
    for key, (kind, said) in TYPES.items():
        if payload.get(key) is not None and type(payload[key]) is not kind:
            return 422, f'"{key}" must be {said} or left out.'
    return _values_problem(payload, fn)


def _values_problem(payload: dict, fn: PageFn) -> tuple[int, str] | None:
    data = payload.get("data")
    takes = f"That function takes {fn.inputs} value{'' if fn.inputs == 1 else 's'}"
    if not isinstance(data, list):
        return 422, f'{takes}, as a "data" list.'
    if len(data) != fn.inputs:
        return 422, f'{takes} in "data"; got {len(data)}.'
    for position, count in fn.examples.items():
        if not (_is_int(data[position]) and 0 <= data[position] < count):
            return 422, f"Value {position + 1} must be the number of one of the {count} examples (0 to {count - 1})."
    event = payload.get("event_data")  # any JSON: the page sends a change's new value, a click's point...
    if fn.point:
        where = event.get("index") if isinstance(event, dict) else None
        if not (isinstance(where, list) and len(where) == 2 and all(_is_number(v) for v in where)):
            return (
                422,
                'That function answers a click on a picture: "event_data" must be {"index": [x, y], "value": null}.',
            )
    return None


def other_problem(path: str, payload: object) -> str | None:
    """What is wrong with a /cancel or /reset body (gradio answers pydantic's wording, echoing the body)."""
    if path == RESET:
        ok = isinstance(payload, dict) and isinstance(payload.get("event_id"), str)
        return None if ok else 'The request body must be a JSON object: {"event_id": "..."}.'
    ok = (
        isinstance(payload, dict)
        and isinstance(payload.get("session_hash"), str)
        and _is_int(payload.get("fn_index"))
        and isinstance(payload.get("event_id"), (str, type(None)))
    )
    return (
        None
        if ok
        else 'The request body must be a JSON object: {"session_hash": "...", "fn_index": N, "event_id": "..."}.'
    )


class FnCallCheck:
    """ASGI middleware: `Middleware(FnCallCheck, fns=..., components=...)` in launch(app_kwargs=...),
    behind rmbg.webapp.rawcalls.RawCallCheck. `fns`: the page's functions run on the server, by
    number; `components`: the ids of the page's blocks (each a trigger_id the page may send)."""

    def __init__(self, app, fns: Callable[[], Mapping[int, PageFn]], components: Callable[[], Collection[int]]):
        self.app, self.fns, self.components = app, fns, components

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/") if scope.get("type") == "http" else ""
        checked = path in (JOIN, CANCEL, RESET) or PAGE_CALL.match(path)
        if not checked or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        got = await call_body(scope, receive, send)
        if got is None:  # over the cap (answered), or the client went away
            return
        body, receive = got
        why = self.problem(path, body)
        if why is not None:
            await reply_json(send, why[0], {"error": why[1]})
            return
        await self.app(scope, receive, send)

    def problem(self, path: str, body: Body) -> tuple[int, str] | None:
        payload = body.value  # None when it is not JSON
        if path in (CANCEL, RESET):
            why = other_problem(path, payload)
            return None if why is None else (422, why)
        if path != JOIN and (not isinstance(payload, dict) or payload.get("fn_index") is None):
            return None  # a call of a named endpoint: rmbg.webapp.rawcalls checked it
        return join_problem(payload, self.fns(), self.components(), queued=path == JOIN)
