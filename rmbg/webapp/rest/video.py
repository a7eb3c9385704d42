"""`POST /api/video`: a clip's background removed, for programs that speak plain HTTP.

    curl -F video=@clip.mp4 -F provider=u2netp http://127.0.0.1:7860/api/video -o clip.webm
    curl -F video=@clip.mp4 -F background=#00b140 http://127.0.0.1:7860/api/video -o clip.mp4
    curl -H 'content-type: application/json' -d '{"url": "https://example.com/clip.mp4", "format": "mov"}' \\
         http://127.0.0.1:7860/api/video -o clip.mov

Request: multipart/form-data with the clip in `video` (and `background_image`
for background "image"), or JSON with its `url` (fetched behind the SSRF
guard). Fields, all optional: provider (a video provider: any local model, or
a hosted one priced per second), background ("transparent", a colour, or
"image"), format (webm, mov, mp4, matte, gif, webp). The same identity, key
headers and spending caps as `POST /api/remove` (rmbg.webapp.rest.routes): the
per-session cap applies per client address; a hosted provider's clip is
reserved as duration x price per second before it is sent. The body may hold
a clip of up to the video limit (RMBG_VIDEO_MAX_MB) and a background picture
of up to the image limit (RMBG_IMAGE_MAX_MB; rmbg.webapp.file_limits): each
is held to its own, 413 past it, and the clip is spooled to disk by
starlette's form parser, never held whole in memory.
A client that hangs up stops the run at the next frame.

Response: the video file, with X-Rmbg-Provider, X-Rmbg-Frames,
X-Rmbg-Duration (seconds of video), X-Rmbg-Seconds (model),
X-Rmbg-Total-Seconds, X-Rmbg-Cost-USD and X-Rmbg-Cost-Source. Errors as
/api/remove's (rmbg.webapp.rest.body). The types are pydantic models here,
documented in GET /api/openapi.json beside /api/remove's.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ...options import VIDEO
from ...video.limits import InvalidVideoError
from ..catalog import Keys
from ..context import App
from ..file_limits import image_max_bytes, size_refusal, video_body_bytes, video_body_refusal, video_max_bytes
from ..identity import rest_identity
from ..inputs import Text, Url, one_source
from ..look import Look
from ..slots import Slots, admitted
from ..video.clips import Clip, Upload, clip_of
from ..video.videos import VideoLook, remove
from .body import ERROR_CODES, TooLarge, read_body, refusal
from .types import Answered, Refusal, bodies, keys_of, option_fields, parameters, validated

VIDEO_CONCURRENCY = 2  # clips being cut at once through REST (each runs for seconds to minutes)
MEDIA = {
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp4": "video/mp4",
    "matte": "video/mp4",
    "gif": "image/gif",
    "webp": "image/webp",
}
ROOM_CODES = (411, 507)  # the body's size not declared; no room for it on disk just now (rmbg.webapp.upload_room)
NO_VIDEO = 'Send the clip as the multipart field "video", or JSON {"url": "https://..."}.'


class _VideoFields(BaseModel):
    model_config = ConfigDict(extra="forbid", title="VideoFields")


# The fields of a video request, all optional: the provider, a clip's settings (rmbg.options.VIDEO), the url.
VideoFields = create_model(
    "VideoFields",
    __base__=_VideoFields,
    __doc__="The fields of a video request, all optional.",
    provider=(Text, Field(None, description="Video provider id (a local model, or hosted: priced per second).")),
    **option_fields(VIDEO),
    url=(Url, Field(None, description="http(s) URL of the clip, when it is not uploaded.")),
)


VIDEO_FIELDS = tuple(VideoFields.model_fields)
VIDEO_FILES = {
    "video": "The clip: MP4, MOV, WebM, MKV or animated GIF.",
    "background_image": 'The picture to put behind the subject (background "image", format mp4).',
}


class VideoMade(Answered):
    """The response's headers: who cut the clip, how long it is and took, what it cost."""

    frames: str = Field(alias="X-Rmbg-Frames", description="Frames in the clip.")
    duration: str = Field(alias="X-Rmbg-Duration", description="Seconds of video.")


def video_fields_of(values: dict[str, Any]) -> Any:
    """The fields, validated; refused in the field's sentence, or naming an unknown one."""
    return validated(VideoFields, values)


def video_bodies() -> dict[str, Any]:
    """The request's media types: a multipart form with the clip, or JSON with its url."""
    return bodies(VideoFields, VIDEO_FILES)


def video_responses() -> dict[int | str, dict[str, Any]]:
    headers = {
        info.alias: {"description": info.description, "schema": {"type": "string"}}
        for info in VideoMade.model_fields.values()
        if info.alias
    }
    content = {m: {"schema": {"type": "string", "format": "binary"}} for m in sorted(set(MEDIA.values()))}
    refused: dict[int | str, dict[str, Any]] = {
        code: {"model": Refusal, "description": "Refused or failed, with the reason"}
        for code in sorted({*ERROR_CODES, *ROOM_CODES})
    }
    return {200: {"description": "The cut-out clip", "content": content, "headers": headers}, **refused}


def copy_upload(upload: UploadFile, folder: Path) -> Path:
    """The uploaded clip as a file of its own (starlette spools it; nothing is held in memory)."""
    suffix = Path(upload.filename or "").suffix[:6].lower()
    stem = Path(upload.filename or "video").stem or "video"
    path = folder / f"{stem[:60]}{suffix}"
    with path.open("wb") as out:
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, out)
    return path


async def read_video_body(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """The form or JSON, the body within a clip's limit and a background image's (and the form
    around them), each file within its own: TooLarge (413) in words that give the limit."""
    clip, picture = video_max_bytes(), image_max_bytes()
    try:
        values, uploads = await read_body(request, VIDEO_FILES, len(VIDEO_FIELDS) + 2, video_body_bytes())
    except TooLarge:
        raise TooLarge(video_body_refusal()) from None
    for said, field, limit in (("The clip", "video", clip), ("The background image", "background_image", picture)):
        size = (uploads[field].size or 0) if field in uploads else 0
        if size > limit:
            raise TooLarge(size_refusal(said, size, limit))
    return values, uploads


def video_route(api: APIRouter, app: App | None, default_provider: Callable[[], str], fetch: object) -> None:
    """Add POST /api/video to `api` (app None: the route only describes itself).
    `fetch` None: this server fetches no URLs (as /api/remove's)."""
    limiter = anyio.CapacityLimiter(admitted(VIDEO_CONCURRENCY))  # the clips working, the rest paid calls waiting
    slots = Slots(VIDEO_CONCURRENCY)  # its own slots (rmbg.webapp.slots): a paid call waits outside them

    @api.post(
        "/api/video",
        summary="Remove the background of a video clip",
        response_class=Response,
        response_model=None,
        responses=video_responses(),
        openapi_extra={"parameters": parameters(), "requestBody": {"required": True, "content": video_bodies()}},
    )
    async def video(request: Request) -> Response:
        keys = Keys(**{slot: (key or "").strip() for slot, key in keys_of(request.headers).items()})
        folder = Path(tempfile.mkdtemp(prefix="rmbg-rest-video-"))
        try:
            values, uploads = await read_video_body(request)
            fields = video_fields_of(values)
            upload, picture = uploads.get("video"), uploads.get("background_image")
            if upload is None and not fields.url:
                raise InvalidVideoError(NO_VIDEO)
            one_source(upload is not None, fields.url, "clip", InvalidVideoError)
            if upload is None and fetch is None:
                raise InvalidVideoError("This server does not fetch video URLs; send the clip itself.")
            if upload is None:
                clip: Clip = clip_of(None, fields.url)
            else:
                clip = Upload(await anyio.to_thread.run_sync(copy_upload, upload, folder), upload.filename or "")
            backdrop = await picture.read() if picture else None
            kind, colour = Look.background_sent(fields.background, backdrop)
            look = VideoLook.of(kind, colour, backdrop, fields.format)
            assert app is not None  # routes without an app only describe themselves
            client = request.client.host if request.client else None
            provider_id = str(fields.provider or default_provider())
            shown = await cut_watching(request, app, clip, provider_id, look, keys, client)
        except Exception as exc:
            return refusal(exc, keys, "POST /api/video", 'a file in "video"')
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result = shown.result
        made = {
            "provider": result.provider,
            "frames": str(result.frames),
            "duration": f"{result.duration:.3f}",
            "seconds": f"{result.seconds.model:.3f}",
            "total_seconds": f"{result.seconds.total:.3f}",
            "cost_usd": str(result.cost.usd),
            "cost_source": result.cost.source,
        }
        headers = VideoMade.model_validate(made).model_dump(by_alias=True)
        return FileResponse(shown.file, media_type=MEDIA[look.fmt], headers=headers, filename=shown.file.name)

    async def cut_watching(
        request: Request, app: App, clip: Clip, provider_id: str, look: VideoLook, keys: Keys, client: str | None
    ) -> Any:
        """The clip cut in a worker thread, stopped at the next frame if the client hangs up."""
        run_key = f"rest-video:{uuid.uuid4().hex}"

        def work() -> Any:
            with slots.taken():
                return remove(
                    app, clip, provider_id, look, keys, session_id=rest_identity(client), run_key=run_key, keep=False
                )

        outcome: list[Any] = []
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while not await request.is_disconnected():
                    await anyio.sleep(0.5)
                app.runs.stop(run_key)

            group.start_soon(watch)
            try:
                outcome.append(await anyio.to_thread.run_sync(work, limiter=limiter))
            except Exception as exc:  # raised below, outside the group (which would wrap it)
                outcome.append(exc)
            group.cancel_scope.cancel()
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]
