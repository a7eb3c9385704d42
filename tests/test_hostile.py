"""Hostile requests against the launched app: each gets a 4xx or our own
sentence; no 5xx, no traceback, no server path, no key; nothing paid."""

from __future__ import annotations

import base64
import io
import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx
import pytest
from PIL import Image

from rmbg.webapp.catalog import SLOTS
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.runware import RunwareFake
from tests.support.app import LOOK_VALUES, app_config, serve

KEYS = [FAL_KEY, *[None] * (len(SLOTS) - 1)]  # one value per key field, fal's first (catalog.SLOTS order)
NESTED = b"[" * 100_000 + b"]" * 100_000


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


DATA_URI = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


@pytest.fixture(scope="module")
def fakes():
    with FalFake() as fal, RunwareFake() as runware:
        yield fal, runware


@pytest.fixture(scope="module")
def base(fakes):
    with serve(app_config(*fakes)) as url:
        yield url.rstrip("/")


@pytest.fixture(autouse=True)
def _fresh(fakes):
    for fake in fakes:
        fake.reset()


def paid(fakes) -> int:
    return sum(1 for fake in fakes for call in fake.calls if call.method == "POST")


def no_leak(text: str) -> None:
    assert "Traceback" not in text and os.getcwd() not in text and "Something went wrong" not in text


@pytest.mark.parametrize(
    "body, status, message",
    [
        (NESTED, 400, "The request body is not valid JSON."),
        (b'{"url": "%s", "format": 5}' % DATA_URI.encode(), 400, "format must be text, got a number."),
        (b'{"url": "%s", "provider": ["fal-bria"]}' % DATA_URI.encode(), 400, "provider must be text, got a list."),
        (b'{"url": "%s", "crop": {"a": 1}}' % DATA_URI.encode(), 400, "crop must be true or false, got {'a': 1}."),
        (
            b'{"url": "%s", "canvas": 1e400}' % DATA_URI.encode(),
            400,
            "canvas must be text: 'none', a size such as '2000x2000' or an aspect such as '1:1', got inf.",
        ),
        (b'{"url": ["http://x"]}', 400, "url must be text, got a list."),
    ],
)
def test_rest_json_of_the_wrong_kind_gets_a_400_with_our_sentence(base, fakes, body, status, message):
    answer = httpx.post(f"{base}/api/remove", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert (answer.status_code, answer.json()) == (status, {"error": message})
    assert paid(fakes) == 0


TWICE = "The field {!r} is sent more than once: send each field once."


@pytest.mark.parametrize(
    "send, name",
    [
        ({"files": {"image": ("a.png", tiny_png())}, "data": {"provider": ["u2netp", "fal-bria"]}}, "provider"),
        ({"files": [("image", ("a.png", tiny_png())), ("image", ("b.png", tiny_png()))]}, "image"),
        ({"data": {"url": [DATA_URI, "http://127.0.0.1/x"]}}, "url"),  # a urlencoded form
        (
            {
                "json": None,
                "content": b'{"url": "%s", "provider": "u2netp", "provider": "fal-bria"}' % DATA_URI.encode(),
            },
            "provider",
        ),
    ],
)
def test_a_field_sent_twice_is_refused_not_one_of_them_taken(base, fakes, send, name):
    """Two values of one field (two providers, two images, two URLs): one of them was taken without a word
    (the last: the provider that ran was not always the one a first reading of the request says)."""
    send = dict(send)
    headers = {"X-Fal-Key": FAL_KEY}
    if send.pop("json", False) is None:
        headers["Content-Type"] = "application/json"
    answer = httpx.post(f"{base}/api/remove", headers=headers, timeout=60, **send)
    assert (answer.status_code, answer.json()) == (400, {"error": TWICE.format(name)})
    assert paid(fakes) == 0
    video = httpx.post(f"{base}/api/video", data={"format": ["webm", "mp4"], "url": DATA_URI}, timeout=60)
    assert (video.status_code, video.json()) == (400, {"error": TWICE.format("format")})


def test_fields_in_the_url_are_refused_not_ignored(base, fakes):
    """POST /api/remove?provider=fal-bria ran the default provider: the URL's fields were read nowhere. They are
    refused in a sentence (both routes), before the body is read; nothing runs or is paid."""
    said = "Send the fields in the form or the JSON body, not in the URL ({} came in the URL)."
    image = httpx.post(
        f"{base}/api/remove?provider=fal-bria&format=jpg",
        files={"image": ("a.png", tiny_png())},
        headers={"X-Fal-Key": FAL_KEY},
        timeout=60,
    )
    assert (image.status_code, image.json()) == (400, {"error": said.format("provider, format")})
    video = httpx.post(f"{base}/api/video?format=mp4", json={"url": DATA_URI}, timeout=60)
    assert (video.status_code, video.json()) == (400, {"error": said.format("format")})
    assert paid(fakes) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"crop": "true", "margin": "7000px"},
        {"canvas": "10000x10000"},
        {"canvas": "3000x3000"},
        {"canvas": "1:1", "crop": "true", "margin": "1200px"},
    ],
)
def test_a_frame_over_budget_is_refused_before_the_paid_call(base, fakes, fields):
    answer = httpx.post(
        f"{base}/api/remove",
        files={"image": ("tiny.png", tiny_png(), "image/png")},
        data={"provider": "fal-bria", **fields},
        headers={"X-Fal-Key": FAL_KEY},
        timeout=60,
    )
    assert answer.status_code == 400 and "MP" in answer.json()["error"]
    assert paid(fakes) == 0  # refused before the provider, not after it was paid


def raw(base: str, name: str, data: list) -> tuple[int, str]:
    """(status of the call, its event stream or error body) for a raw gradio call."""
    body = json.dumps({"data": data})  # NaN and Infinity as Python writes them (httpx's json= refuses them)
    started = httpx.post(
        f"{base}/gradio_api/call/{name}", content=body, timeout=30, headers={"Content-Type": "application/json"}
    )
    if started.status_code != 200:
        return started.status_code, started.text
    return 200, httpx.get(f"{base}/gradio_api/call/{name}/{started.json()['event_id']}", timeout=60).text


def remove_values(**changes) -> list:
    names = [
        "background",
        "colour",
        "background_image",
        "mask_only",
        "format",
        "monthly_volume",
        "fal_key",
        "runware_key",
        "refine_edges",
        "crop",
        "canvas",
        "margin",
        "align",
        "vitmatte",
        "points",
        "box",
        "escalate",
        "escalate_below",
    ]
    values = dict(zip(names, LOOK_VALUES))
    values.update(changes)
    return [
        None,
        {"path": "https://example.invalid/x.png", "meta": {"_type": "gradio.FileData"}},
        "u2netp",
        *values.values(),
    ]


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("remove", [None, None, ["u2netp"], *LOOK_VALUES], "provider must be text, got a list."),
        (
            "remove",
            [None, None, "u2netp", *LOOK_VALUES[:5], -1, *LOOK_VALUES[6:]],
            "Images per month must be a whole number (0 or more), got '-1'.",
        ),
        (
            "replace",
            [None, "a beach", None, "", "inf", 1, *KEYS],
            "The seed must be a whole number 0..2147483647, got 'inf'.",
        ),
        (
            "replace",
            [None, "a beach", None, "", "", float("nan"), *KEYS],
            "num_images must be a whole number from 1 to 4, got nan.",
        ),
        (
            "rerender",
            [None, "transparent", "#fff", None, False, 5, 0, False, False, "none", "5%", "center"],
            "format must be text, got a number.",
        ),
    ],
)
def test_raw_calls_with_values_of_the_wrong_kind_get_our_sentence(base, fakes, capfd, name, data, words):
    status, stream = raw(base, name, data)
    assert status == 200 and "event: error" in stream and words in stream, stream
    no_leak(stream)
    assert paid(fakes) == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        (
            "/gradio_api/call/no_such_thing",
            b'{"data": []}',
            404,
            "There is no API endpoint /no_such_thing here; the list is at /?view=api.",
        ),
        ("/gradio_api/call/remove", b'{"data": ' + NESTED + b"}", 422, None),
        (
            "/gradio_api/call/remove",
            b'{"data": ["' + b"A" * (6 << 20) + b'"]}',
            422,
            "The request body is too large for a call (upload files to /gradio_api/upload first).",
        ),
    ],
)
def test_raw_calls_that_gradio_would_crash_on_get_our_answer(base, path, body, status, message):
    answer = httpx.post(base + path, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == status
    if message:
        assert answer.json() == {"error": message}
    else:
        assert answer.json()["error"].startswith("The request body must be JSON")


UPLOAD_PATH = 'Image: the file\'s "path" must be the path /gradio_api/upload returned, or an http(s) URL of an image.'


@pytest.mark.parametrize(
    "path, message",
    [
        ("file:/etc/passwd", UPLOAD_PATH),
        ("../../etc/passwd", UPLOAD_PATH),
        ("http://127.0.0.1:9/x.png", "Refused to fetch from 127.0.0.1: 127.0.0.1 is a loopback address."),
        (
            "http://169.254.169.254/latest",
            "Refused to fetch from 169.254.169.254: 169.254.169.254 is a link-local address.",
        ),
    ],
)
def test_file_paths_and_urls_in_a_raw_call_are_checked_in_our_words(base, fakes, monkeypatch, path, message):
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    data = [None, {"path": path, "meta": {"_type": "gradio.FileData"}}, "u2netp", *LOOK_VALUES]
    answer = httpx.post(f"{base}/gradio_api/call/remove", json={"data": data}, timeout=30)
    assert (answer.status_code, answer.json()) == (422, {"error": message})
    no_leak(answer.text)


def test_a_provider_quoting_half_the_key_shows_none_of_it(base, fakes):
    fal, _ = fakes
    key_id, secret = "5d1e8f0a-3c2b-4e6f-9a7d-0b1c2d3e4f50", "9f86d081884c7d659a2feaa0c55ad015"
    fal.inject("quote-secret", op="submit")
    answer = httpx.post(
        f"{base}/api/remove",
        files={"image": ("tiny.png", tiny_png(), "image/png")},
        data={"provider": "fal-bria"},
        headers={"X-Fal-Key": f"{key_id}:{secret}"},
        timeout=60,
    )
    assert answer.status_code == 401
    text = answer.text
    assert secret not in text and key_id not in text
    assert all(secret[i : i + 8] not in text for i in range(len(secret) - 7))  # no piece of 8 either
    assert "•••" in text


def test_rest_schema_fuzzing_gets_no_server_error(base, fakes):
    """schemathesis over GET /api/openapi.json, bounded (the longer run: benchmarks/fuzz.py)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/api/openapi.json", timeout=30).json())
    seen: list[int] = []

    @settings(
        max_examples=int(os.environ.get("RMBG_FUZZ_REST_EXAMPLES") or 60),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema["/api/remove"]["POST"].as_strategy())
    def fuzz(case):
        response = case.call(base_url=base, timeout=60)
        seen.append(response.status_code)
        assert response.status_code != 500, response.text
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}
            no_leak(response.text)

    fuzz()
    assert len(seen) >= 20
    assert paid(fakes) == 0  # no key was sent: nothing was paid


@pytest.mark.parametrize("route", ["/api/remove", "/api/video"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_a_method_a_route_does_not_take_is_answered_in_the_error_body_every_answer_has(base, route, method):
    """GET /api/remove answered FastAPI's {"detail": "Method Not Allowed"}, where every other refusal is
    {"error": ...} (a client reading "error" failed on it). 405, Allow: POST, in our words."""
    answer = httpx.request(method, f"{base}{route}", timeout=60)
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")
    if method != "HEAD":
        said = f"{route} takes POST (a form or JSON), not {method}: see GET /api/openapi.json."
        assert answer.json() == {"error": said}
    assert "/api/remove" in httpx.get(f"{base}/api/openapi.json", timeout=60).json()["paths"]
