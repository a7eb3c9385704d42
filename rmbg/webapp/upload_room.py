"""Room for uploads: gradio's upload route cannot fill the server's disk.

Every file a visitor sends (the page, gradio_client, a raw
`POST /gradio_api/upload`) lands in gradio's upload folder, which gradio
prunes by age only (the app's delete_cache: files older than 30 minutes,
looked for every 10). At 500 MB a file (a clip: rmbg.webapp.file_limits),
one client could write gigabytes in that window and take a Space down with a
full disk.

`POST /api/video` takes a clip as large as an upload, spooled to disk
outside that folder while the clip is cut: its declared size is held against
the same room for as long as the request runs (the route says its own limit).

An upload that declares more than one upload may be (`max_bytes`: the
largest file and its form) or more than the whole room is answered 413 at
once, before a byte of its body is read (gradio alone reads it and counts
as it writes, up to its max_file_size): a client that sends the headers and
waits hears the answer, and `Connection: close` ends the exchange.

This ASGI middleware answers an upload before gradio reads it when the
upload would take the folder's uploads past their room (RMBG_UPLOADS_MB):
first the oldest upload files older than MIN_AGE_S are deleted (their
visitors have had them for minutes; a page that sends one again is told to
upload it again), and when there is still no room the upload is refused with
507, in our words. Uploads in progress hold their declared size until they
end, so concurrent uploads cannot pass the room together; an upload that
does not declare its size (no Content-Length) is refused with 411.

The app's own download files live in the same folder and are bounded by
their store (rmbg.webapp.look.OutputStore, RMBG_DOWNLOADS_MB): `keep` tells
this middleware which files are the store's, so they are neither counted
here nor deleted by it. No gradio import here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from .file_limits import FORM_ROOM, shown_mb, video_body_bytes, video_body_refusal

UPLOAD_PATHS = ("/gradio_api/upload", "/upload")
BODY_PATHS = ("/api/video",)  # REST bodies as large as a clip, spooled to disk while the route runs: room too
MIN_AGE_S = 120.0  # an upload younger than this is in use by a handler or about to be
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class UploadRoom:
    """The upload folder's room: what is on disk, what is reserved, and eviction."""

    def __init__(
        self,
        folder: str | Path,
        limit_bytes: int,
        keep: Callable[[Path], bool] = lambda _: False,
        clock: Callable[[], float] = time.time,
    ):
        self.folder, self.limit, self.keep, self.clock = Path(folder), limit_bytes, keep, clock
        self.reserved = 0
        self._lock = threading.Lock()

    def files(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of the upload files now in the folder (not the store's)."""
        found: list[tuple[float, int, Path]] = []
        for dirpath, _dirs, names in os.walk(self.folder):
            for name in names:
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):  # gone since it was listed
                    st = path.lstat()
                    if not self.keep(path):
                        found.append((st.st_mtime, st.st_size, path))
        return found

    def used(self) -> int:
        return sum(size for _, size, _ in self.files())

    def reserve(self, size: int) -> bool:
        """Room for `size` more bytes (deleting old uploads if needed): True and held, or False."""
        with self._lock:
            files = self.files()
            over = sum(s for _, s, _ in files) + self.reserved + size - self.limit
            if over > 0:
                cutoff = self.clock() - MIN_AGE_S
                for mtime, fsize, path in sorted(files):
                    if over <= 0 or mtime > cutoff:
                        break
                    path.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):  # gradio's per-upload folder, when now empty
                        path.parent.rmdir()
                    over -= fsize
            if over > 0:
                return False
            self.reserved += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.reserved -= size


class UploadLimit:
    """ASGI middleware: `Middleware(UploadLimit, room=UploadRoom(...), max_bytes=...)` in launch(app_kwargs=...)."""

    def __init__(self, app, room: UploadRoom, max_bytes: int | None = None):
        self.app, self.room, self.max_bytes = app, room, max_bytes

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        if scope.get("type") != "http" or scope.get("method") != "POST" or not path.endswith(UPLOAD_PATHS + BODY_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if not declared.isdigit():
            await refuse(receive, send, 411, "An upload must declare its size (Content-Length).")
            return
        size = int(declared)
        if (said := self.too_large(path, size)) is not None:
            await refuse_unread(send, 413, said)
            return
        if not self.room.reserve(size):
            await refuse(
                receive, send, 507, "The server's room for uploads is full just now; try again in a few minutes."
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.room.release(size)

    def too_large(self, path: str, size: int) -> str | None:
        """Why a request of `size` is refused before its body is read, or None: an upload over one file
        (max_bytes) and its form; a REST clip over its route's limit (said in the route's words); either
        over the whole room."""
        if path.endswith(BODY_PATHS) and size > video_body_bytes():
            return video_body_refusal()
        own = self.room.limit if self.max_bytes is None or path.endswith(BODY_PATHS) else self.max_bytes + FORM_ROOM
        limit = min(own, self.room.limit)
        if size <= limit:
            return None
        return f"The upload is {shown_mb(size, up=True)} MB; this server takes at most {shown_mb(limit)} MB at once."


async def refuse_unread(send: Send, status: int, message: str) -> None:
    """Answer without reading the body (it may be hundreds of MB) and close the connection after."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def refuse(receive: Receive, send: Send, status: int, message: str) -> None:
    """Read and drop the body (bounded), so the client hears the answer, then answer."""
    from .callbody import read_body, reply_json

    await read_body(receive)
    await reply_json(send, status, {"error": message})
