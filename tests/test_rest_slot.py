"""POST /api/remove holds one of the model's slots (rmbg.webapp.slots.admitted()) once per request, for the
model and the encoding together: a request that queued again for its encoding went behind
every request waiting for the model (p95 latency under 16 clients: archived benchmarks/vs_rembg_serving.py)."""

from __future__ import annotations

import io

import anyio.to_thread
from fastapi import FastAPI
from PIL import Image
from starlette.testclient import TestClient

from rmbg.webapp import AppConfig
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from rmbg.webapp.rest import routes as rest
from rmbg.webapp.slots import admitted
from tests.support.models import PHOTO


def test_one_slot_per_request_for_the_model_and_the_encoding(u2netp_path, tmp_path, monkeypatch):
    app = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    slots: list[int] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(fn, *args, limiter=None, **kw):
        if limiter is not None and limiter.total_tokens == admitted():
            slots.append(1)
        return await run_sync(fn, *args, limiter=limiter, **kw)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    web = FastAPI(routes=rest.routes(app, lambda: "u2netp", fetch=None))
    photo = io.BytesIO()
    Image.open(PHOTO).convert("RGB").save(photo, "JPEG")
    with TestClient(web) as client:
        for fields in ({}, {"edge_colours": "false"}, {"format": "webp", "background": "white"}):
            answer = client.post("/api/remove", files={"image": ("p.jpg", photo.getvalue(), "image/jpeg")}, data=fields)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "image/" + fields.get("format", "png")
    assert len(slots) == 3
