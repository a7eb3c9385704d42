"""Every gradio route that runs an endpoint by the name in its path gets the raw-call check
(rmbg.webapp.rawcalls), not /gradio_api/call/NAME alone: /run/NAME, /api/NAME (a "data" list, as
/call/) and /call/v2/NAME (named values). Against the launched app over a real socket: a 404 for
a name that is no public endpoint, a 422 in our words for a wrong shape, a body over the cap or a
file outside gradio's upload folder; no 500, no component repr, no server path, no traceback."""

from __future__ import annotations

import gzip
import json
import os
import zlib

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, LOOK_VALUES, app_config, serve  # noqa: E402
from tests.support.mcp import data_uri  # noqa: E402

LISTED = ["run", "api", "call"]  # {"data": [...]}, one value per input
ROUTES = [*LISTED, "call/v2"]
REMOVE = (
    "/remove takes 24 values in this order: session state (null), Image, Provider, Background, Colour, "
    "Background image, Mask only, Format, Images per month (cost projection), fal.ai key, Runware key, "
    "remove.bg key, Photoroom key, Cloudflare key, Clean edges, Crop to subject, Canvas (size or aspect), "
    "Margin (% or px), Subject position, Refine edges (ViTMatte), Points (x, y, keep|drop; …), "
    "Box (x0, y0, x1, y1), Escalate when unsure to, …when the confidence is under."
)
NAMED = (
    "/remove takes these named values: image, provider, background, colour, background_image, mask_only, "
    "format, monthly_volume, fal_key, runware_key, removebg_key, photoroom_key, cloudflare_key, refine_edges, "
    "crop, canvas, margin, align, vitmatte, points, box, escalate, escalate_below."
)
OUTSIDE = 'Image: the file\'s "path" must be the path /gradio_api/upload returned, or an http(s) URL of an image.'
NOT_AN_OBJECT = 'The request body must be a JSON object with a "data" list.'
TOO_LARGE = "The request body is too large for a call (upload files to /gradio_api/upload first)."


@pytest.fixture(scope="module")
def base(u2netp_path):  # the right-shaped calls run U2-Net-p
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url:
        yield url.rstrip("/")


def post(base: str, route: str, name: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return httpx.post(f"{base}/gradio_api/{route}/{name}", content=body, headers=headers, timeout=60)


def clean(answer: httpx.Response, capfd) -> None:
    said = capfd.readouterr()
    assert answer.status_code < 500 and "Traceback" not in said.out + said.err
    assert "object at 0x" not in answer.text and os.getcwd() not in answer.text and "/tmp" not in answer.text


def remove_data(image: object) -> list:
    return [None, image, "u2netp", *LOOK_VALUES]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "name, said",
    [
        ("nope", "There is no API endpoint /nope here; the list is at /?view=api."),
        ("halt", "There is no API endpoint /halt here; the list is at /?view=api."),  # the page's own, private
        ("no.such thing", "There is no API endpoint of that name here; the list is at /?view=api."),
    ],
)
def test_a_name_that_is_no_public_endpoint_gets_a_404(base, capfd, route, name, said):
    answer = post(base, route, name, b'{"data": []}')
    assert (answer.status_code, answer.json()) == (404, {"error": said})
    clean(answer, capfd)


@pytest.mark.parametrize(
    "route, body, said",
    [
        *[(route, b'{"data": []}', f"Got 0 values. {REMOVE}") for route in LISTED],
        *[(route, b"{}", f'The request body must be a JSON object with a "data" list. {REMOVE}') for route in LISTED],
        *[
            (route, b"[1, 2]", f'The request body must be a JSON object with a "data" list. {REMOVE}')
            for route in LISTED
        ],
        *[(route, b"{'a':", f'The request body must be JSON: {{"data": [...]}}. {REMOVE}') for route in LISTED],
        *[(route, json.dumps({"data": remove_data(None), "fn_index": 0}).encode(), None) for route in ("run", "api")],
        ("call/v2", b'{"data": []}', f"/remove takes no value named 'data'. {NAMED}"),
        ("call/v2", b"{}", f"No value was given for image. {NAMED}"),
        ("call/v2", b"[]", f'The request body must be a JSON object of named values ({{"name": value, ...}}). {NAMED}'),
    ],
)
def test_a_call_of_the_wrong_shape_gets_a_422_in_our_words(base, capfd, route, body, said):
    answer = post(base, route, "remove", body)
    said = said or "/remove is the endpoint named in the path: leave out fn_index, trigger_id and batched."
    assert (answer.status_code, answer.json()) == (422, {"error": said})
    clean(answer, capfd)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("path", [str(EXAMPLE), "/etc/passwd", "/tmp/gradio/../../etc/passwd"])
def test_a_file_outside_the_upload_folder_is_refused_without_repeating_its_path(base, capfd, route, path):
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    body = {"image": image} if route == "call/v2" else {"data": remove_data(image)}
    answer = post(base, route, "remove", json.dumps(body).encode())
    assert (answer.status_code, answer.json()) == (422, {"error": OUTSIDE})
    clean(answer, capfd)


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_over_the_cap_is_refused_before_it_is_parsed(base, capfd, route):
    big = (
        b'{"data": ["' + b"A" * (6 << 20) + b'"]}' if route != "call/v2" else b'{"image": "' + b"A" * (6 << 20) + b'"}'
    )
    answer = post(base, route, "remove", big)
    assert (answer.status_code, answer.json()) == (422, {"error": TOO_LARGE})
    clean(answer, capfd)


def test_calls_of_the_right_shape_still_run(base, capfd):
    uploaded = httpx.post(
        f"{base}/gradio_api/upload", files={"files": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}, timeout=60
    ).json()[0]
    image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    ran = post(base, "run", "remove", json.dumps({"data": remove_data(image)}).encode())
    assert ran.status_code == 200 and len(ran.json()["data"]) > 1
    started = post(base, "call/v2", "remove_background", json.dumps({"image": data_uri(EXAMPLE)}).encode())
    assert started.status_code == 200 and set(started.json()) == {"event_id"}
    stream = httpx.get(f"{base}/gradio_api/call/v2/remove_background/{started.json()['event_id']}", timeout=60)
    assert "event: complete" in stream.text and "image-u2netp" in stream.text
    assert "Traceback" not in capfd.readouterr().err


def test_the_pages_own_calls_that_skip_the_queue_still_run(base, capfd):
    """The browser sends an event that skips the queue (a radio showing the colour box, the Benchmark's
    ranking) as /run/predict with the function's fn_index: refused once /run/ was checked, every such
    control of the page stopped answering. The page's functions pass; another index is no endpoint."""
    config = httpx.get(f"{base}/config", timeout=30).json()
    skipping = [
        d
        for d in config["dependencies"]
        if d.get("queue") is False and not d["inputs"] and d.get("backend_fn") and not d.get("cancels")
    ]
    assert skipping, "the page has events that skip the queue and take no value"
    ran = post(
        base, "run", "predict", json.dumps({"data": [], "fn_index": skipping[0]["id"], "session_hash": "p"}).encode()
    )
    assert ran.status_code == 200 and "data" in ran.json()
    clean(ran, capfd)
    wrong = post(base, "run", "predict", json.dumps({"data": [], "fn_index": 10**6, "session_hash": "p"}).encode())
    assert wrong.status_code == 404 and wrong.json() == {
        "error": "There is no API endpoint /predict here; the list is at /?view=api."
    }


# Every JSON door of gradio that rmbg.webapp.callbody reads: the named routes, the page's own calls by number.
JSON_DOORS = [f"/gradio_api/{route}/remove" for route in ROUTES] + [
    "/gradio_api/run/predict",
    "/gradio_api/queue/join",
    "/gradio_api/cancel",
    "/gradio_api/reset",
]
TWICE = "The key {!r} is sent more than once in the JSON body: send each key once."
COMPRESSED = "Compressed request bodies are not accepted: send the body uncompressed (no Content-Encoding)."


@pytest.mark.parametrize("path", JSON_DOORS)
@pytest.mark.parametrize(
    "body, key",
    [
        (b'{"data": [], "data": [1]}', "data"),  # json.loads kept the last: the call ran on it, without a word
        (b'{"image": null, "image": null}', "image"),
        (b'{"data": [{"path": "a", "path": "b"}], "fn_index": 0}', "path"),  # in a nested object too
    ],
)
def test_a_key_given_twice_is_refused_at_every_json_door(base, capfd, path, body, key):
    answer = httpx.post(base + path, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert (answer.status_code, answer.json()) == (422, {"error": TWICE.format(key)})
    clean(answer, capfd)


@pytest.mark.parametrize("path", [*JSON_DOORS, "/api/remove"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_refused_in_one_sentence_at_every_json_door(base, capfd, path, encoding):
    """It was "not valid JSON" over REST and "must be JSON" on the raw routes: the sender could not tell why."""
    body = gzip.compress(b'{"data": []}') if encoding == "gzip" else zlib.compress(b'{"data": []}')
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    answer = httpx.post(base + path, content=body, headers=headers, timeout=60)
    assert (answer.status_code, answer.json()) == (415, {"error": COMPRESSED})
    clean(answer, capfd)
