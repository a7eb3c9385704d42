"""The upload folder's room (rmbg.webapp.upload_room): uploads cannot fill the disk.

Unit tests of the room on a real folder, and the middleware in front of a small
ASGI app that stores what it receives, as gradio's upload route does, over a
real socket (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn

from rmbg.webapp.upload_room import MIN_AGE_S, UploadLimit, UploadRoom
from tests.u2netp_fixture import u2netp_path  # noqa: F401  (fixture)

NOW = 1_900_000_000.0
MB = 2**20


def put(folder: Path, size: int, age_s: float, name: str | None = None) -> Path:
    """A file of `size` bytes in its own sub-folder (gradio's layout), `age_s` old."""
    sub = folder / uuid.uuid4().hex
    sub.mkdir(parents=True)
    path = sub / (name or "photo.png")
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_reservations_count_until_released(tmp_path):
    room = UploadRoom(tmp_path, 10 * MB, clock=lambda: NOW)
    put(tmp_path, 4 * MB, age_s=5)
    assert room.reserve(3 * MB) and room.reserve(3 * MB)
    assert not room.reserve(1 * MB)  # 4 on disk + 6 held: full; the file on disk is too young to go
    room.release(3 * MB)
    assert room.reserve(1 * MB)


def test_the_oldest_old_uploads_go_first_and_young_ones_stay(tmp_path):
    room = UploadRoom(tmp_path, 10 * MB, clock=lambda: NOW)
    oldest = put(tmp_path, 3 * MB, age_s=3 * MIN_AGE_S)
    older = put(tmp_path, 3 * MB, age_s=2 * MIN_AGE_S)
    young = put(tmp_path, 3 * MB, age_s=MIN_AGE_S / 2)
    assert room.reserve(3 * MB)  # 9 + 3 > 10: the oldest goes, and its empty folder with it
    assert not oldest.exists() and not oldest.parent.exists() and older.exists() and young.exists()
    assert room.reserve(3 * MB)  # 6 + 3 held + 3 > 10: the older one goes too
    assert not older.exists() and young.exists()
    assert not room.reserve(2 * MB)  # 3 young + 6 held + 2 > 10, and nothing old is left
    assert young.exists() and room.used() == 3 * MB


def test_the_download_store_is_neither_counted_nor_deleted(tmp_path):
    store = {put(tmp_path, 8 * MB, age_s=10 * MIN_AGE_S, name="result-nobg.png")}
    room = UploadRoom(tmp_path, 4 * MB, keep=lambda p: p in store, clock=lambda: NOW)
    assert room.used() == 0 and room.reserve(4 * MB)
    assert all(p.exists() for p in store)


class Stored:
    """Stands in for gradio's upload route: writes the body under the folder."""

    def __init__(self, folder: Path):
        self.folder, self.bodies = folder, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        put(self.folder, len(body), age_s=0)
        self.bodies += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "gradio"
    folder.mkdir()
    inner = Stored(folder)
    app = UploadLimit(inner, UploadRoom(folder, 5 * MB))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue in the kernel from now on: no waiting for the server to start
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, inner, folder
    server.should_exit = True
    thread.join()


def test_over_a_real_socket_uploads_stop_at_the_room(served):
    client, inner, folder = served
    answers = [client.post("/gradio_api/upload", files={"files": ("a.png", b"x" * MB)}).status_code for _ in range(8)]
    assert answers[:4] == [200] * 4 and answers[-1] == 507
    assert inner.bodies == answers.count(200)
    on_disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert on_disk <= 5 * MB
    refused = client.post("/gradio_api/upload", files={"files": ("b.png", b"x" * MB)})
    assert refused.json() == {"error": "The server's room for uploads is full just now; try again in a few minutes."}


def test_an_upload_without_a_declared_size_is_refused(served):
    client, inner, _ = served

    def chunks():
        yield b"--b\r\n"
        yield b"x" * 1000

    answer = client.post("/gradio_api/upload", content=chunks(), headers={"content-type": "multipart/form-data"})
    assert answer.status_code == 411 and inner.bodies == 0
    assert client.post("/gradio_api/queue/join", content=b"{}").status_code == 200  # other routes pass


def test_the_launched_app_keeps_uploads_within_their_room(tmp_path, monkeypatch, caplog, u2netp_path):  # noqa: F811
    """A client posting 1 MB files to gradio's upload route: past RMBG_UPLOADS_MB (here 3 MB) the app
    answers 507 in our words, and the folder never holds more than that. A room that holds fewer than
    two of the largest upload (here RMBG_VIDEO_MAX_MB 2) is said in the log at launch."""
    from tests.fakes.fal import FalFake
    from tests.fakes.runware import RunwareFake
    from tests.support.app import app_config, serve

    folder = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    monkeypatch.setenv("RMBG_VIDEO_MAX_MB", "2")
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "1.5")
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware, uploads_mb=3)) as url:
        assert "RMBG_UPLOADS_MB holds fewer than two of the largest upload (2 MB" in caplog.text
        answers = []
        for i in range(6):
            reply = httpx.post(url + "gradio_api/upload", files={"files": (f"p{i}.png", os.urandom(MB))}, timeout=60)
            answers.append(reply.status_code)
        assert answers[:2] == [200, 200] and answers[-1] == 507
        assert "room for uploads is full" in reply.json()["error"]
        uploaded = [p for p in folder.rglob("p*.png")]
        assert len(uploaded) == answers.count(200) and sum(p.stat().st_size for p in uploaded) <= 3 * MB


@pytest.mark.parametrize(
    "max_bytes, declared, said",
    [
        (2 * MB, 2 * MB + 64 * 2**10 + 1, "The upload is 2.07 MB; this server takes at most 2.06 MB at once."),
        (None, 5 * MB + 1, "The upload is 5.01 MB; this server takes at most 5 MB at once."),  # past the whole room
        (10 * MB, 6 * MB, "The upload is 6 MB; this server takes at most 5 MB at once."),
    ],
)
def test_an_upload_past_the_limit_or_the_whole_room_is_answered_without_reading_its_body(
    tmp_path, max_bytes, declared, said
):
    """Over the largest upload (the file and 64 KiB of form) or more than the whole room: 413 at
    once, the body never asked for (`receive` fails if it is), gradio never reached, nothing held."""
    import asyncio
    import json

    sent: list[dict] = []

    async def unread():
        raise AssertionError("the body was read")

    async def gradio(scope, receive, send):
        raise AssertionError("the upload reached gradio")

    async def send(message):
        sent.append(message)

    room = UploadRoom(tmp_path, 5 * MB)
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload", "headers": []}
    scope["headers"] = [(b"content-length", str(declared).encode())]
    asyncio.run(UploadLimit(gradio, room, max_bytes=max_bytes)(scope, unread, send))
    start, body = sent
    assert start["status"] == 413 and (b"connection", b"close") in start["headers"]
    assert json.loads(body["body"]) == {"error": said} and room.reserved == 0


def test_a_rest_clip_holds_its_size_against_the_room_while_its_route_runs(tmp_path):
    """POST /api/video's body is spooled outside the upload folder while the clip is cut: its declared
    size is held against the room until the route ends; more than the whole room is answered unread."""
    import asyncio
    import json

    room = UploadRoom(tmp_path, 5 * MB)
    held: list[int] = []

    async def route(scope, receive, send):
        held.append(room.reserved)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(declared: int | None) -> list[dict]:
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        length = [] if declared is None else [(b"content-length", str(declared).encode())]
        scope = {"type": "http", "method": "POST", "path": "/api/video", "headers": length}
        await UploadLimit(route, room, max_bytes=MB)(scope, receive, send)  # max_bytes: the page's uploads only
        return sent

    assert asyncio.run(call(3 * MB))[0]["status"] == 200 and held == [3 * MB] and room.reserved == 0
    over = asyncio.run(call(6 * MB))
    assert over[0]["status"] == 413 and held == [3 * MB]
    assert json.loads(over[1]["body"]) == {"error": "The upload is 6 MB; this server takes at most 5 MB at once."}
    assert asyncio.run(call(None))[0]["status"] == 411 and held == [3 * MB]
