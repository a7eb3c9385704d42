"""POST /api/remove's fields read as they are documented, over the route itself (U²-Net-p on this CPU):
cpu is a flag like every other ("false" is false, "maybe" a 400, never bool("false")); a data: URI is
held to the image limit, an http(s) URL to the length of a text field; the OpenAPI document
refuses what the server refuses (an empty url)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image
from starlette.testclient import TestClient

from rmbg.webapp import AppConfig
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from rmbg.webapp.rest import routes as rest


@pytest.fixture
def served(u2netp_path, tmp_path):
    app = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    with TestClient(FastAPI(routes=rest.routes(app, lambda: "u2netp"))) as client:
        yield app, client


def photo(size=(64, 48), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    noise = np.random.default_rng(5).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, fmt)
    return buf.getvalue()


def ran_on(app: App) -> set[bool]:
    """Whether U²-Net-p was built for the CPU path (True), the usual one (False), or both."""
    return {on_cpu for on_cpu in (False, True) if app.built.get("u2netp", on_cpu)[0] is not None}


@pytest.mark.parametrize(
    "value, on_cpu",
    [(word, False) for word in ("false", "0", "no", "off", "False", "")]
    + [(word, True) for word in ("true", "1", "yes", "on")],
)
def test_cpu_in_a_form_is_read_as_a_flag(served, value, on_cpu):
    app, client = served
    answer = client.post("/api/remove", files={"image": ("p.png", photo(), "image/png")}, data={"cpu": value})
    assert answer.status_code == 200, answer.text
    assert ran_on(app) == {on_cpu}


@pytest.mark.parametrize("field", ["cpu", "mask_only", "crop", "edge_colours"])
def test_any_other_word_for_a_flag_is_a_400(served, field):
    app, client = served
    answer = client.post("/api/remove", files={"image": ("p.png", photo(), "image/png")}, data={field: "maybe"})
    assert (answer.status_code, answer.json()) == (400, {"error": f"{field} must be true or false, got 'maybe'."})
    assert ran_on(app) == set()


def test_a_data_uri_is_held_to_the_image_limit_and_a_url_to_the_length_of_a_text(served, monkeypatch):
    _, client = served
    jpeg = photo((160, 120), "JPEG")
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert len(uri) > 10_000  # over a text field's length, well under the image limit
    answer = client.post("/api/remove", json={"url": uri})
    assert answer.status_code == 200, answer.text
    assert Image.open(io.BytesIO(answer.content)).size == (160, 120)

    long_url = "https://example.com/" + "a" * 9_981
    answer = client.post("/api/remove", json={"url": long_url})
    assert (answer.status_code, answer.json()) == (400, {"error": "url is too long (10001 characters; at most 10000)."})

    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", str(len(jpeg) / 2 / 2**20))  # the image is twice the limit
    answer = client.post("/api/remove", json={"url": uri})
    assert answer.status_code == 413 and answer.json()["error"].startswith("The request is over 0.0")


@pytest.mark.parametrize("route", ["/api/remove", "/api/video"])
def test_the_document_refuses_an_empty_url_as_the_server_does(served, route):
    _, client = served
    schema = client.get("/api/openapi.json").json()
    body = schema["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["url"] and body["properties"]["url"]["minLength"] == 1
    answer = client.post(route, json={"url": ""})
    assert answer.status_code == 400 and answer.json()["error"].startswith("Send the ")


def test_a_long_value_is_quoted_back_shortened_not_whole(served):
    """A text field holds up to 10,000 characters; its value was echoed whole in the error (10 KB to read)."""
    _, client = served
    image = {"image": ("a.png", photo())}
    answer = client.post("/api/remove", files=image, data={"provider": "x" * 10_000})
    said = answer.json()["error"]
    assert answer.status_code == 400 and said.startswith(f"Unknown provider '{'x' * 39}…{'x' * 8}'. Valid providers: ")
    answer = client.post("/api/remove", files=image, data={"background": "é " * 4_000})
    said = answer.json()["error"]
    assert answer.status_code == 400 and len(said) == 903
    assert said.startswith("'é é é") and said.endswith("a CSS name such as 'white', or an (r, g, b) tuple.")
