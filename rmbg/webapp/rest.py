"""`POST /api/remove`: the app's engine for programs that speak plain HTTP.

    curl -F image=@photo.jpg -F provider=u2netp -F background=white \
         http://127.0.0.1:7860/api/remove -o cutout.png

Request: multipart/form-data with the file in `image` (and optionally
`background_image`), or application/json with `"url"` (fetched behind the
SSRF guard, rmbg.image.fetch) or a data: URI. Other fields, all optional: provider,
background ("transparent", a colour such as "white" or "#ff0000", or
"image" with background_image), mask_only, clean_edges, format (png, webp,
jpeg), crop, canvas, margin, align. Keys for hosted providers in the headers
X-Fal-Key / X-Runware-Key / X-Removebg-Key / X-Photoroom-Key (never stored,
never logged); the same key rules and spending caps as the page, the
per-session cap applying per client address (X-Forwarded-For believed only
from RMBG_TRUSTED_PROXIES, rmbg.webapp.identity).

Response: the image bytes, with X-Rmbg-Provider, X-Rmbg-Seconds (model),
X-Rmbg-Total-Seconds, X-Rmbg-Cost-USD, X-Rmbg-Cost-Source and X-Rmbg-Cached.
Errors: JSON {"error": message} with a fitting status (400 bad input, 401
key missing or refused, 402 a spending cap or the provider's credit, 413 too
large, 415 not a form or JSON, 429 the provider's rate limit, 502/504 the
provider failed or timed out, 403 a model download this server does not
allow its visitors, 503 a model that cannot run here).

`GET /api/openapi.json` describes this endpoint (OpenAPI 3.0; the fuzz tests
generate requests from it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from ..errors import (
    BudgetError,
    InvalidImageError,
    MissingCredentialsError,
    ModelUnavailableError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    RmbgError,
    UnknownProviderError,
)
from ..image.compose import MIME, normalise_format
from ..result import Result
from ..wording import KEY_SLOTS
from . import actions, inputs
from .catalog import SLOTS, Keys, SessionKeyMissing
from .context import App
from .downloads import DownloadRefused
from .identity import rest_identity
from .look import Look, file_name

log = logging.getLogger("rmbg.rest")
MAX_BODY = 25 * 2**20  # as the page's uploads (launch max_file_size)
CONCURRENCY = 4  # requests running a model or a provider at once
FETCH_CONCURRENCY = 8  # image URLs being fetched at once (each within its deadline, rmbg.image.fetch)
HEADERS = {slot: header for slot, _, _, header, _ in KEY_SLOTS}  # by key slot (rmbg.wording.KEY_SLOTS)
FIELDS = ("provider", "background", "mask_only", "clean_edges", "format", "crop", "canvas", "margin", "align", "url")
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (BudgetError, 402),
    (ProviderCreditError, 402),
    (MissingCredentialsError, 401),
    (ProviderAuthError, 401),
    (ProviderRateLimitError, 429),
    (ProviderTimeoutError, 504),
    (ProviderHTTPError, 502),
    (DownloadRefused, 403),
    (ModelUnavailableError, 503),
    (UnknownProviderError, 400),
    (InvalidImageError, 400),
    (RmbgError, 400),
)


class TooLarge(Exception):
    pass


class NotAForm(Exception):
    """The body is neither a form nor JSON; its content type is the message."""


def status_of(exc: BaseException) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def look_of(fields: Mapping[str, Any], background_image: bytes | None) -> Look:
    """The request's render choices as the page's Look (the same checks)."""
    kind, colour = Look.background_of(fields.get("background"))
    if kind == "image" and background_image is None:
        raise InvalidImageError('background "image" needs the image itself in the background_image field.')
    return Look.of(
        kind,
        colour,
        background_image,
        fields.get("mask_only"),
        fields.get("format"),
        refine=fields.get("clean_edges"),
        crop=fields.get("crop"),
        canvas=fields.get("canvas"),
        margin=fields.get("margin"),
        align=fields.get("align"),
    )


def headers_of(result: Result, look: Look, stem: str) -> dict[str, str]:
    return {
        "X-Rmbg-Provider": result.provider,
        "X-Rmbg-Seconds": f"{result.seconds.model:.3f}",
        "X-Rmbg-Total-Seconds": f"{result.seconds.total:.3f}",
        "X-Rmbg-Cost-USD": str(result.cost.usd),
        "X-Rmbg-Cost-Source": result.cost.source,
        "X-Rmbg-Cached": "true" if result.cached else "false",
        "Content-Disposition": f'inline; filename="{file_name(stem, look)}"',
    }


_TEXT = {"type": "string"}
_FLAG = {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}
_SIZE = {"oneOf": [{"type": "string"}, {"type": "number"}]}
_PROPERTIES: dict[str, dict] = {
    "provider": _TEXT,
    "background": _TEXT,
    "mask_only": _FLAG,
    "clean_edges": _FLAG,
    "format": {"type": "string", "enum": ["png", "webp", "jpeg"]},
    "crop": _FLAG,
    "canvas": _SIZE,
    "margin": _SIZE,
    "align": {"type": "string", "enum": ["center", "bottom"]},
}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 description of POST /api/remove."""
    error = {
        "description": "Refused or failed, with the reason",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["error"], "properties": {"error": _TEXT}}}
        },
    }
    image = {
        "description": "The output image",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in sorted(set(MIME.values()))},
    }
    form = {
        "type": "object",
        "required": ["image"],
        "additionalProperties": False,
        "properties": {
            "image": {"type": "string", "format": "binary"},
            "background_image": {"type": "string", "format": "binary"},
            **{name: _TEXT for name in _PROPERTIES},
        },
    }
    body = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {"url": {"type": "string", "description": "http(s) URL or data: URI"}, **_PROPERTIES},
    }
    keys = [{"name": header, "in": "header", "required": False, "schema": _TEXT} for header in HEADERS.values()]
    return {
        "openapi": "3.0.3",
        "info": {"title": "rmbg REST API", "version": "1"},
        "paths": {
            "/api/remove": {
                "post": {
                    "summary": "Remove the background of one image",
                    "parameters": keys,
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": form}, "application/json": {"schema": body}},
                    },
                    "responses": {
                        "200": image,
                        **{str(code): error for code in (400, 401, 402, 413, 415, 429, 502, 503, 504)},
                    },
                }
            }
        },
    }


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge
        yield chunk


def routes(
    app: App, default_provider: Callable[[], str], fetch: Callable[[str], bytes] | None = actions.fetch_image
) -> list:
    """The Starlette routes to add beside the gradio app (launch(app_kwargs=...)).

    default_provider: the provider id used when a request names none.
    fetch: url -> image bytes behind the SSRF guard (rmbg.image.fetch); None refuses "url".
    """
    import anyio
    from starlette.formparsers import MultiPartException, MultiPartParser
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limiter = anyio.CapacityLimiter(CONCURRENCY)
    fetching = anyio.CapacityLimiter(FETCH_CONCURRENCY)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def read(request: Request) -> tuple[dict[str, Any], bytes | None, bytes | None, str]:
        """(fields, image bytes, background image bytes, file stem) from the request."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise TooLarge
        stream = _limited(request.stream(), MAX_BODY)
        if kind == "multipart/form-data":
            form = await MultiPartParser(request.headers, stream, max_files=2, max_fields=len(FIELDS) + 2).parse()
            fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
            files = {k: v for k, v in form.items() if not isinstance(v, str)}
            image, background = files.get("image"), files.get("background_image")
            data = await image.read() if image is not None else None
            stem = (image.filename or "image").rsplit(".", 1)[0] if image is not None else "image"
            return fields, data, (await background.read() if background is not None else None), stem
        if kind == "application/x-www-form-urlencoded":  # fields only: curl -d url=https://...
            body = b"".join([chunk async for chunk in stream])
            from urllib.parse import parse_qsl

            return dict(parse_qsl(body.decode("utf-8", "replace"))), None, None, "image"
        if kind == "application/json":
            body = b"".join([chunk async for chunk in stream])
            try:
                fields = json.loads(body or b"null")
            except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
                raise InvalidImageError("The request body is not valid JSON.") from None
            if not isinstance(fields, dict):
                raise InvalidImageError('The JSON body must be an object such as {"url": "https://..."}.')
            return fields, None, None, "image"
        raise NotAForm(kind)

    def fetched(fields: dict[str, Any]) -> bytes:
        inputs.check(fields)
        return actions.image_from_reference(str(fields["url"]), fetch)

    def work(fields: dict[str, Any], image: bytes | None, background: bytes | None, keys: Keys, client: str | None):
        inputs.check(fields)
        if image is None:
            raise InvalidImageError('Send the image as the multipart field "image", or JSON {"url": "https://..."}.')
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise InvalidImageError(f"Unknown field(s) {', '.join(unknown)}: use {', '.join(FIELDS)}.")
        look = look_of(fields, background)
        provider_id = str(fields.get("provider") or default_provider())
        result, _ = actions.run(image, provider_id, look, keys, app, session_id=rest_identity(client))
        return result, look

    async def remove(request: Request) -> Response:
        keys = Keys.of(*(request.headers.get(HEADERS[slot]) for slot in SLOTS))
        try:
            fields, image, background, stem = await read(request)
            if image is None and fields.get("url"):
                # fetched in slots of their own, each under the fetch's overall deadline: slow
                # URLs can hold only these, never the slots that run models for everyone else
                image = await anyio.to_thread.run_sync(fetched, fields, limiter=fetching)
            result, look = await anyio.to_thread.run_sync(
                work, fields, image, background, keys, request.client.host if request.client else None, limiter=limiter
            )
            data = await anyio.to_thread.run_sync(result.encode, look.fmt, limiter=limiter)
        except TooLarge:
            return error(413, f"The request is over {MAX_BODY // 2**20} MB.")
        except NotAForm as exc:
            return error(
                415,
                f'Send multipart/form-data (a file in "image") or application/json (a "url"), '
                f"not {str(exc) or 'a body without a content type'}.",
            )
        except MultiPartException as exc:
            return error(400, f"The form could not be read: {exc.message}")
        except SessionKeyMissing as exc:
            return error(401, actions.safe_message(exc, keys, "rest"))
        except RmbgError as exc:
            return error(status_of(exc), actions.safe_message(exc, keys, "rest"))
        except Exception:
            log.exception("unexpected error in POST /api/remove")
            return error(500, "Something went wrong on the server (logged). Please try again.")
        return Response(data, media_type=MIME[normalise_format(look.fmt)], headers=headers_of(result, look, stem))

    async def schema(request: Request) -> Response:
        return JSONResponse(openapi())

    return [Route("/api/remove", remove, methods=["POST"]), Route("/api/openapi.json", schema, methods=["GET"])]
