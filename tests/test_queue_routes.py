"""gradio's raw routes that name a page function by number (/queue/join, the page's /run/predict,
/cancel, /reset), a session or an event (/queue/data, /call/NAME/EVENT_ID), an upload's parts or a
file (/file=PATH): rmbg.webapp.fncalls and rmbg.webapp.routecheck. Against the launched app over a
real socket, each hostile value gets a 4xx in our words: no 500, no component repr, no server path,
no traceback in the log; the page's own calls (as the browser sends them) still run."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

from rmbg.webapp import callbody  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve  # noqa: E402
from tests.test_raw_routes import TOO_LARGE, clean, remove_data  # noqa: E402

JOIN_SHAPE = '{"data": [...], "fn_index": N, "trigger_id": N, "session_hash": "..."}'
NO_FN = "There is no page function with that fn_index run on the server; /config lists them."
NO_FILE = {"error": "There is no file this app serves at that address; use the URL that a result gave."}
NO_OPEN_SESSION = (
    "There is no open session with that session_hash: join the queue (POST /gradio_api/queue/join) "
    "first, then read its messages here."
)
NO_EVENT = (
    "There is no call with that event id (it may have ended and been read); start one with POST /gradio_api/call/NAME."
)


@pytest.fixture(scope="module")
def base(u2netp_path):
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url:
        yield url.rstrip("/")


def page_fn(base: str, name: str) -> dict:
    return next(d for d in httpx.get(f"{base}/config", timeout=30).json()["dependencies"] if d["api_name"] == name)


def join(base: str, body: object, route: str = "queue/join") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{base}/gradio_api/{route}", content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("index", [10**6, -1, 10**30, "js_fn"])  # "js_fn": a function the browser runs itself
def test_a_page_function_by_a_number_that_is_none_gets_a_404(base, capfd, index):
    index = page_fn(base, index)["id"] if isinstance(index, str) else index
    answer = join(base, {"data": [], "fn_index": index, "session_hash": "s"})
    assert (answer.status_code, answer.json()) == (404, {"error": NO_FN})
    clean(answer, capfd)


NO_SESSION = '"session_hash" must be a string of 1 to 128 letters, digits, "-" or "_" (one per visit).'
NOT_PAGE_CALL = (404, "There is no API endpoint /predict here; the list is at /?view=api.")  # rawcalls' answer
BOTH = ["queue/join", "run/predict"]  # a page call off the queue (/run/predict) may leave out its session
SHAPES = [
    *[(r, b"{'a':", 422, f"The request body must be a JSON object: {JOIN_SHAPE}, as the page sends it.") for r in BOTH],
    *[(r, b"[1]", 422, f"The request body must be a JSON object: {JOIN_SHAPE}, as the page sends it.") for r in BOTH],
    *[
        (r, {"fn_index": v}, 422, f'"fn_index" must be the number of one of the page\'s functions: {JOIN_SHAPE}.')
        for r in BOTH
        for v in (None, "1", True)
    ],
    ("queue/join", {"session_hash": None}, 422, NO_SESSION),
    *[(r, {"session_hash": v}, 422, NO_SESSION) for r in BOTH for v in (5, "", "/tmp/x", "a" * 129)],
    *[
        (
            r,
            {"trigger_id": v},
            422,
            '"trigger_id" must be null or the id of one of the page\'s components (see /config).',
        )
        for r in BOTH
        for v in (10**6, -1, "1")
    ],
    *[(r, {"data": "x"}, 422, 'That function takes 1 value, as a "data" list.') for r in BOTH],
    *[
        (r, {"data": d}, 422, f'That function takes 1 value in "data"; got {len(d)}.')
        for r in BOTH
        for d in ([], ["#fff", 1])
    ],
    *[
        (
            r,
            {"batched": True},
            422,
            '"batched" must be false or left out: the page\'s functions take one call at a time.',
        )
        for r in BOTH
    ],
    *[(r, {"event_id": 5}, 422, '"event_id" must be a string or left out.') for r in BOTH],
    *[(r, {"data": ["A" * (2 << 20)]}, 422, TOO_LARGE) for r in BOTH],
]


@pytest.mark.parametrize("route, change, status, said", SHAPES)
def test_a_page_call_of_the_wrong_shape_gets_a_422_in_our_words(base, capfd, route, change, status, said):
    fn = page_fn(base, "hex_typed")  # the colour box's text, one value
    right = {"data": ["#fff"], "fn_index": fn["id"], "trigger_id": fn["targets"][0][0], "session_hash": "s"}
    answer = join(base, change if isinstance(change, bytes) else {**right, **change}, route)
    if route == "run/predict" and (isinstance(change, bytes) or "fn_index" in change):
        status, said = NOT_PAGE_CALL  # not the page's own call: rawcalls answers for /run/
    assert (answer.status_code, answer.json()) == (status, {"error": said})
    clean(answer, capfd)


@pytest.mark.parametrize(
    "name, change, said",
    [
        *[
            ("load_example", {"data": [v]}, "Value 1 must be the number of one of the 4 examples (0 to 3).")
            for v in (4, -1, "0", None, [0, 1])
        ],
        *[
            (
                "on_click",
                {"event_data": e},
                'That function answers a click on a picture: "event_data" must be {"index": [x, y], "value": null}.',
            )
            for e in (None, 5, {}, {"index": "ab"}, {"index": [1]}, {"index": [1, True]}, {"index": [1e300, 2]})
        ],
    ],
)
def test_a_value_gradios_own_handlers_would_fail_on_is_refused(base, capfd, name, change, said):
    """An example's number out of range, or a click without its point, failed inside gradio's own
    handlers (Examples, gr.SelectData) with a traceback; the Examples list runs off the queue."""
    fn = page_fn(base, name)
    body = {
        "data": [None] * len(fn["inputs"]),
        "fn_index": fn["id"],
        "trigger_id": fn["targets"][0][0],
        "session_hash": "s",
    }
    answer = join(base, {**body, **change}, "queue/join" if fn["queue"] is not False else "run/predict")
    assert (answer.status_code, answer.json()) == (422, {"error": said})
    clean(answer, capfd)


def test_the_pages_calls_by_number_still_run(base, capfd):
    example = page_fn(base, "load_example")
    ran = join(
        base,
        {"data": [0], "fn_index": example["id"], "trigger_id": example["targets"][0][0], "session_hash": "s"},
        "run/predict",
    )
    assert ran.status_code == 200 and len(ran.json()["data"]) == 1
    click = page_fn(base, "on_click")
    point = {"index": [3, 4], "value": None}
    body = {"data": ["", "", "keep", None, ""], "fn_index": click["id"], "trigger_id": click["targets"][0][0]}
    joined = join(base, {**body, "session_hash": "clicks", "event_data": point})
    assert joined.status_code == 200 and set(joined.json()) == {"event_id"}
    stream = httpx.get(f"{base}/gradio_api/queue/data", params={"session_hash": "clicks"}, timeout=60)
    assert '"msg":"process_completed"' in stream.text and '"success":true' in stream.text
    cancelled = join(
        base, {"session_hash": "clicks", "fn_index": click["id"], "event_id": joined.json()["event_id"]}, "cancel"
    )
    assert cancelled.status_code == 200
    clean(cancelled, capfd)


@pytest.mark.parametrize(
    "route, body, said",
    [
        (
            "cancel",
            b"{}",
            'The request body must be a JSON object: {"session_hash": "...", "fn_index": N, "event_id": "..."}.',
        ),
        (
            "cancel",
            b'{"session_hash": "s", "fn_index": "x"}',
            'The request body must be a JSON object: {"session_hash": "...", "fn_index": N, "event_id": "..."}.',
        ),
        ("reset", b"xx", 'The request body must be a JSON object: {"event_id": "..."}.'),
        ("reset", b'{"event_id": 5}', 'The request body must be a JSON object: {"event_id": "..."}.'),
    ],
)
def test_a_cancel_or_reset_of_the_wrong_shape_gets_a_422(base, capfd, route, body, said):
    answer = join(base, body, route)
    assert (answer.status_code, answer.json()) == (422, {"error": said})
    clean(answer, capfd)


@pytest.mark.parametrize(
    "path, status, said",
    [
        (
            "queue/data?session_hash=nobody",
            404,
            NO_OPEN_SESSION,
        ),
        (
            "queue/data",
            422,
            "Give the session_hash the page joined the queue with: /gradio_api/queue/data?session_hash=...",
        ),
        (
            "call/remove/nothing",
            404,
            NO_EVENT,
        ),
        (
            "call/v2/remove/nothing",
            404,
            NO_EVENT,
        ),
    ],
)
def test_the_messages_of_a_session_or_call_that_is_not_held_get_a_4xx_before_the_stream(
    base, capfd, path, status, said
):
    answer = httpx.get(f"{base}/gradio_api/{path}", timeout=30)
    assert (answer.status_code, answer.json()) == (status, {"error": said})
    clean(answer, capfd)


def test_an_upload_part_that_is_no_file_gets_a_400(base, capfd):
    part = b'--b\r\nContent-Disposition: form-data; name="files"\r\n\r\nhello\r\n--b--\r\n'
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    answer = httpx.post(f"{base}/gradio_api/upload", content=part, headers=headers, timeout=30)
    assert (answer.status_code, answer.text) == (
        400,
        'Each "files" part of an upload must be a file: a multipart part with a filename.',
    )
    clean(answer, capfd)


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "/tmp/gradio/../x", "examples/cat.jpg", "a" * 3000]
)
def test_a_file_that_is_not_served_is_refused_without_its_path(base, capfd, path):
    answer = httpx.get(f"{base}/gradio_api/file={path}", timeout=30)
    assert (answer.status_code, answer.json()) == (403, NO_FILE)
    clean(answer, capfd)
    uploaded = httpx.post(f"{base}/gradio_api/upload", files={"files": ("cat.jpg", EXAMPLE.read_bytes())}, timeout=60)
    served = httpx.get(f"{base}/gradio_api/file={uploaded.json()[0]}", timeout=30)
    assert served.status_code == 200 and served.content == EXAMPLE.read_bytes()


CHECKS = {f"rmbg.webapp.{name}" for name in ("callbody", "rawcalls", "fncalls", "routecheck")}  # in front of gradio


@dataclass
class Seen:
    checks: list = field(default_factory=list)  # each JSON text the checks in front of gradio parsed
    gradio: list = field(default_factory=list)  # each one gradio's routes parsed (starlette's request.json())
    reads: list = field(default_factory=list)  # (bytes kept, whole) for each body the checks read


@pytest.fixture
def seen(monkeypatch) -> Seen:
    """What the launched app (in this process) parses and reads of a request's body, as it does it."""
    made, loads, read = Seen(), json.loads, callbody.read_body

    def counted(text, *args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__")
        if caller in CHECKS:
            made.checks.append(text)
        elif caller == "starlette.requests":
            made.gradio.append(text)
        return loads(text, *args, **kwargs)

    async def read_counted(receive):
        raw, whole = await read(receive)
        made.reads.append((len(raw or b""), whole))
        return raw, whole

    monkeypatch.setattr(json, "loads", counted)
    monkeypatch.setattr(callbody, "read_body", read_counted)
    return made


@pytest.mark.parametrize(
    "route, name",
    [
        ("queue/join", "hex_typed"),  # fncalls alone
        ("run/predict", "load_example"),  # the page's own call off the queue: rawcalls, then fncalls
        ("run/remove", None),  # a named call on /run/: rawcalls (shape, then its URLs), then fncalls
        ("call/remove", None),  # rawcalls alone (shape, then its URLs)
    ],
)
def test_a_call_body_is_read_and_parsed_once_and_reaches_gradio_as_it_came(base, seen, route, name):
    body: dict = {"data": remove_data(None)}
    if name is not None:
        fn = page_fn(base, name)
        value = 0 if name == "load_example" else "#fff"
        body = {"data": [value], "fn_index": fn["id"], "trigger_id": fn["targets"][0][0], "session_hash": "once"}
    content = json.dumps(body, indent=3).encode()  # gradio must get these bytes, spaces and all
    answer = join(base, content, route)
    if route == "run/remove":  # no image: the handler's message, which gradio answers on /run/ as a 500
        assert (answer.status_code, answer.json()["error"]) == (
            500,
            "Upload an image first (or pick one of the examples).",
        )
    else:
        assert answer.status_code == 200
    assert (seen.checks, seen.gradio, seen.reads) == ([content], [content], [(len(content), True)])


@pytest.mark.parametrize("route", ["queue/join", "run/predict", "run/remove", "call/remove"])
def test_a_body_over_the_cap_is_refused_unparsed_keeping_no_more_than_the_cap(base, capfd, seen, route):
    big = b'{"data": ["' + b"A" * (2 << 20) + b'"]}'
    answer = join(base, big, route)
    assert (answer.status_code, answer.json()) == (422, {"error": TOO_LARGE})
    assert (seen.checks, seen.gradio, len(seen.reads)) == ([], [], 1)
    kept, whole = seen.reads[0]
    assert kept <= callbody.MAX_BODY and whole is False
    clean(answer, capfd)
