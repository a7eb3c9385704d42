"""Raw HTTP calls to the app's API, checked before gradio reads them: every
gradio route that runs an endpoint by the name in its path,
`POST /gradio_api/call/NAME`, `/gradio_api/run/NAME`, `/gradio_api/api/NAME`
(each `{"data": [...]}`) and `/gradio_api/call/v2/NAME` (named values,
`{"image": ..., "provider": ...}`).

gradio validates a raw call's values against its own data models and, when
they do not fit, answers with pydantic's wording (or a list of component
object reprs) and logs a traceback. This ASGI middleware checks the shape of
the call first (a JSON object whose "data" is a list with one value per
input, or whose keys are the endpoint's value names; files as file objects)
and answers a readable 422 in gradio's own error shape, {"error": message}.
Values of the right shape pass on unchanged; their meaning is still checked
by the handlers (rmbg's own messages).

Also answered here, in our words rather than gradio's (which crash with a
500, or name the server's working directory): a call to an endpoint that
does not exist or is not public (404), a body over MAX_BODY (a 422: the body
is read, bounded, and parsed once by rmbg.webapp.callbody, for this check and
rmbg.webapp.fncalls's behind it), a /run/ or /api/ body naming another function (fn_index: the
page's own calls of events that skip the queue, /run/predict with the
fn_index of one of its functions, pass on to rmbg.webapp.fncalls), a
file object whose path is neither under gradio's upload folder (as
/gradio_api/upload returns) nor an http(s) URL, and a URL there that the
SSRF guard refuses (rmbg.image.fetch.check_url: the same rule as every URL a
visitor gives).

No gradio import here: app.py describes each endpoint's inputs as `Slot`s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .callbody import Body, Receive, Send, call_body, parse, reply_json

ROUTE = re.compile(r"^/gradio_api/(call/v2|call|run|api)/([^/]+)/?$")  # (the route, the endpoint's name)
NAMED = "call/v2"  # the route whose body is named values, not a "data" list
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


@dataclass(frozen=True)
class Slot:
    """One input of an endpoint: its label and whether it takes a file."""

    label: str
    file: bool = False
    many: bool = False  # a file input that takes several (gr.File(file_count="multiple")): a list of them
    name: str = ""  # its name in a call of named values (/call/v2/); "" for one it does not take (session state)
    required: bool = False  # whether a call of named values must give it


def usage(name: str, slots: Sequence[Slot]) -> str:
    order = ", ".join(s.label for s in slots)
    return f"/{name} takes {len(slots)} values in this order: {order}."


def _file_problem(value: object, slot: Slot, uploads: str | None = None) -> str | None:
    if value is None:
        return None
    if slot.many and isinstance(value, list):
        one_file = Slot(slot.label, file=True)
        return next((why for one in value if (why := _file_problem(one, one_file, uploads))), None)
    if isinstance(value, Mapping) and any(isinstance(value.get(k), str) and value.get(k) for k in ("path", "url")):
        path = value.get("path")
        if not isinstance(path, str) or not path:
            return None
        if "://" in path:
            return None if path.lower().startswith(("http://", "https://")) else _not_a_file(slot)
        return None if _uploaded(path, uploads) else _not_a_file(slot)
    got = "a plain string" if isinstance(value, str) else f"a value of type {type(value).__name__}"
    what = "a list of file objects" if slot.many else "a file object"
    return (
        f'{slot.label} must be {what}, {{"path": ...}} for a file uploaded to /gradio_api/upload '
        f"(gradio_client's handle_file() makes one) or null; got {got}."
    )


def _uploaded(path: str, uploads: str | None) -> bool:
    """An absolute path, inside gradio's upload folder when it is given (gradio refuses any
    other with an error that repeats the path, and logs a traceback)."""
    if not path.startswith("/"):
        return False
    folder = os.path.normpath(os.path.abspath(uploads)) if uploads else ""
    return not folder or os.path.normpath(path).startswith(folder.rstrip(os.sep) + os.sep)


def _not_a_file(slot: Slot) -> str:
    return (
        f'{slot.label}: the file\'s "path" must be the path /gradio_api/upload returned, or an http(s) URL of an image.'
    )


def _given(payload: dict, slots: Sequence[Slot], route: str) -> list[tuple[object, Slot]]:
    """(value, slot) for each value a call of the right shape gives."""
    if route == NAMED:
        return [(payload[s.name], s) for s in slots if s.name and s.name in payload]
    return list(zip(payload["data"], slots))


def urls_of(body: bytes | Body, name: str, endpoints: Mapping[str, Sequence[Slot]], route: str = "call") -> list[str]:
    """The http(s) URLs given as file paths in a call whose shape is right (for the SSRF guard);
    `body` as it came, or parsed (rmbg.webapp.callbody)."""
    payload = (body if isinstance(body, Body) else parse(body)).value
    files = [
        one
        for value, slot in _given(payload, endpoints[name], route)
        if slot.file
        for one in (value if slot.many and isinstance(value, list) else [value])
    ]
    return [
        one["path"]
        for one in files
        if isinstance(one, Mapping)
        and isinstance(one.get("path"), str)
        and one["path"].lower().startswith(("http://", "https://"))
    ]


def problem(
    name: str,
    body: bytes | Body,
    endpoints: Mapping[str, Sequence[Slot]],
    route: str = "call",
    uploads: str | None = None,
) -> str | None:
    """What is wrong with a raw call to /NAME on `route` (call, call/v2, run or api), in a
    sentence; None when its shape is right (or NAME is not ours: gradio answers for it).
    `body`: as it came, or parsed (rmbg.webapp.callbody). `uploads`: gradio's upload folder,
    where every file path given must be."""
    slots = endpoints.get(name)
    if slots is None:
        return None
    parsed = body if isinstance(body, Body) else parse(body)
    payload = parsed.value
    if not parsed.is_json:
        shape = '{"name": value, ...}' if route == NAMED else '{"data": [...]}'
        return f"The request body must be JSON: {shape}. {usage(name, slots)}"
    if route == NAMED:
        why = _named_problem(name, payload, slots)
    else:
        why = _listed_problem(name, payload, slots, route)
    if why is not None:
        return why
    for value, slot in _given(payload, slots, route):
        if slot.file and (why := _file_problem(value, slot, uploads)):
            return why
    return None


def _listed_problem(name: str, payload: object, slots: Sequence[Slot], route: str) -> str | None:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(data, list):
        return f'The request body must be a JSON object with a "data" list. {usage(name, slots)}'
    if len(data) != len(slots):
        return f"Got {len(data)} values. {usage(name, slots)}"
    elsewhere = payload.get("fn_index") is not None or payload.get("trigger_id") is not None or payload.get("batched")
    if route != "call" and elsewhere:  # gradio's /run/ and /api/ run fn_index, whatever the path names
        return f"/{name} is the endpoint named in the path: leave out fn_index, trigger_id and batched."
    return None


def _named_problem(name: str, payload: object, slots: Sequence[Slot]) -> str | None:
    named = [s for s in slots if s.name]
    takes = f"/{name} takes these named values: {', '.join(s.name for s in named) or 'none'}."
    if not isinstance(payload, dict):
        return f'The request body must be a JSON object of named values ({{"name": value, ...}}). {takes}'
    known = {s.name for s in named} | {"oauth_token"}  # gradio drops an oauth_token the endpoint does not take
    unknown = [str(key)[:40] for key in payload if key not in known]
    if unknown:
        return f"/{name} takes no value named {unknown[0]!r}. {takes}"
    missing = [s.name for s in named if s.required and s.name not in payload]
    return f"No value was given for {missing[0]}. {takes}" if missing else None


class RawCallCheck:
    """ASGI middleware: `FastAPI(middleware=[Middleware(RawCallCheck, endpoints=..., uploads=...)])`,
    which gradio's launch(app_kwargs=...) passes through. `uploads`: gradio's upload folder."""

    def __init__(
        self,
        app,
        endpoints: Callable[[], Mapping[str, Sequence[Slot]]],
        uploads: str | None = None,
        page_fns: Callable[[], Mapping[str, int]] = dict,
    ):
        self.app, self.endpoints, self.uploads, self.page_fns = app, endpoints, uploads, page_fns

    def page_call(self, route: str, name: str, body: Body) -> bool:
        """The page's own call of an event that skips the queue, as the browser sends it: /run/predict
        with the fn_index of one of the page's functions (`page_fns`: each one's name -> index, private
        ones too), or /run/NAME with NAME's own. gradio runs the function fn_index names, as it does from
        the queue (/queue/join, which takes any of them): such a call passes on as it came."""
        if route != "run":
            return False
        payload = body.value
        index = payload.get("fn_index") if isinstance(payload, dict) else None
        if type(index) is not int:
            return False
        fns = self.page_fns()
        return index in fns.values() if name == "predict" else fns.get(name) == index

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        match = ROUTE.match(scope.get("path", "")) if scope.get("type") == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        got = await call_body(scope, receive, send)  # a body over the cap is told so, whatever it names
        if got is None:  # told so, or the client went away
            return
        body, receive = got
        endpoints = self.endpoints()
        route, name = match.groups()
        if self.page_call(route, name, body):
            await self.app(scope, receive, send)
            return
        if name not in endpoints:
            named = f"/{name}" if PLAIN_NAME.match(name) else "of that name"
            await reply_json(send, 404, {"error": f"There is no API endpoint {named} here; the list is at /?view=api."})
            return
        why = problem(name, body, endpoints, route, self.uploads)
        if why is None:
            why = await _url_problem(urls_of(body, name, endpoints, route))
        if why is not None:
            await reply_json(send, 422, {"error": why})
            return
        await self.app(scope, receive, send)


async def _url_problem(urls: list[str]) -> str | None:
    """The guard's refusal of the first URL it refuses (a DNS lookup: off the event loop)."""
    if not urls:
        return None
    import anyio

    from ..errors import InvalidImageError
    from ..image.fetch import check_url

    for url in urls:
        try:
            await anyio.to_thread.run_sync(check_url, url)
        except InvalidImageError as exc:
            return str(exc)
    return None
