"""`POST /api/remove`: the app's engine for programs that speak plain HTTP.

    curl -F image=@photo.jpg -F provider=u2netp -F background=white \
         http://127.0.0.1:7860/api/remove -o cutout.png

Request: multipart/form-data with the file in `image` (and optionally
`background_image`), or application/json with `"url"` (fetched behind the
SSRF guard, rmbg.image.fetch) or a data: URI. Other fields, all optional: provider,
the render options (rmbg.options: background, a colour such as "white" or
"image" with background_image; the mask; the format; the framing; ...), and
cpu (a local model on the server's CPU: on a ZeroGPU Space, no GPU time), escalate and
escalate_below (a better provider where the first is unsure). Keys for hosted providers in one header
per vendor (rmbg.vendors: X-Fal-Key, X-Runware-Key, ...; never stored,
never logged); the same key rules and spending caps as the page, the
per-session cap applying per client address (X-Forwarded-For believed only
from RMBG_TRUSTED_PROXIES, rmbg.webapp.identity).

Response: the image bytes, with X-Rmbg-Provider, X-Rmbg-Seconds (model),
X-Rmbg-Total-Seconds, X-Rmbg-Cost-USD, X-Rmbg-Cost-Source, X-Rmbg-Cached and
X-Rmbg-Confidence (and X-Rmbg-Warning when the ledger could not record a paid call:
rmbg.money.paying; X-Rmbg-Escalation when `escalate` named a better provider for an
unsure matte: rmbg.webapp.remove.escalate).
Errors: JSON {"error": message} with a fitting status (400 bad input, 401
key missing or refused, 402 a spending cap or the provider's credit, 413 too
large, 415 not a form or JSON, 429 the provider's rate limit or ZeroGPU's
refusal (with "retry_on_cpu": the fields that run it on the CPU), 502/504 the
provider failed or timed out, 403 a model download this server does not
allow its visitors or a model whose licence it refuses (RMBG_COMMERCIAL_ONLY),
503 a model that cannot run here).

The types are declared once, as pydantic models (rmbg.webapp.rest.types):
the request's fields with their checks, the key headers (one per vendor,
rmbg.vendors), the response's headers and the error body. The route is a
FastAPI APIRouter's, served on gradio's FastAPI app; `GET /api/openapi.json`
is FastAPI's document of it, generated from those models (OpenAPI 3.1; the
fuzz tests generate requests from it). The body is read here, not by FastAPI:
its size is counted as it streams, and a form or JSON is parsed only under
that limit (rmbg.webapp.rest.body, shared with `POST /api/video`, whose route,
rmbg.webapp.rest.video, is on the same router and in the same document); its
fields are then validated by the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...confidence import META_KEY as CONFIDENCE
from ...errors import InvalidImageError
from ...image.compose import MIME, normalise_format
from ...result import Result
from ...types import UNRECORDED
from ..catalog import Keys
from ..context import App
from ..identity import rest_identity
from ..inputs import one_source
from ..look import Look, file_name, flag
from ..remove import actions
from ..remove.escalate import Escalation, header_text
from ..slots import Slots, admitted
from .body import ERROR_CODES, error, read_body, refusal
from .types import (
    FIELDS,
    FILES,
    NO_IMAGE,
    SUMMARY,
    TITLE,
    Made,
    bodies,
    fields_of,
    keys_of,
    parameters,
    render_fields,
    responses,
)
from .video import video_route

__all__ = ["openapi", "router", "routes"]
# The methods a POST route answers itself (405, Allow: POST, {"error": ...}) instead of FastAPI's
# {"detail": ...}; HEAD comes with GET. A CORS preflight is the middleware's, before any route.
OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"]
FETCH_CONCURRENCY = 8  # image URLs being fetched at once (each within its deadline, rmbg.image.fetch)


def look_of(fields: Any, background_image: bytes | None) -> Look:
    """The request's render options (rmbg.options) as the page's Look (the same checks)."""
    named = render_fields(fields)
    kind, colour = Look.background_sent(named.pop("background"), background_image)
    return Look.of(kind, colour, background_image, named.pop("mask_only"), named.pop("format"), **named)


def headers_of(result: Result, look: Look, stem: str) -> dict[str, str]:
    made = {
        "provider": result.provider,
        "seconds": f"{result.seconds.model:.3f}",
        "total_seconds": f"{result.seconds.total:.3f}",
        "cost_usd": str(result.cost.usd),
        "cost_source": result.cost.source,
        "cached": "true" if result.cached else "false",
        "watermarked": "true" if result.cost.watermarked else "false",
        "disposition": f'inline; filename="{file_name(stem, look)}"',
        "warning": UNRECORDED if result.cost.unrecorded else None,
        "confidence": result.meta.get(CONFIDENCE),
        "escalation": header_text(result),
    }
    return Made.model_validate(made).headers()


def openapi(routes: list[Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document of POST /api/remove and POST /api/video: FastAPI's, from the routes and their models."""
    return get_openapi(title=TITLE, version="1", routes=routes if routes is not None else router(None, str).routes)


def routes(
    app: App, default_provider: Callable[[], str], fetch: Callable[[str], bytes] | None = actions.fetch_within_limit
) -> list[Any]:
    """The routes to add to gradio's FastAPI app (launch(app_kwargs={"routes": ...})): router()'s."""
    return list(router(app, default_provider, fetch).routes)


def router(
    app: App | None,
    default_provider: Callable[[], str],
    fetch: Callable[[str], bytes] | None = actions.fetch_within_limit,
) -> APIRouter:
    """The FastAPI APIRouter of POST /api/remove, POST /api/video and GET /api/openapi.json.

    default_provider: the provider id used when a request names none.
    fetch: url -> image bytes behind the SSRF guard (rmbg.image.fetch); None refuses "url".
    app None: the routes only describe themselves (openapi()).
    """
    limiter = anyio.CapacityLimiter(admitted())  # WORK running a model or a provider, the rest paid calls waiting
    slots = Slots()  # REST's own cut-out slots (rmbg.webapp.slots): a paid call waits outside them
    fetching = anyio.CapacityLimiter(FETCH_CONCURRENCY)
    api = APIRouter()

    async def read(request: Request) -> tuple[dict[str, Any], bytes | None, bytes | None, str]:
        """(fields, image bytes, background image bytes, file stem) from the request."""
        fields, uploads = await read_body(request, FILES, len(FIELDS) + 2)
        image, background = uploads.get("image"), uploads.get("background_image")
        data = await image.read() if image is not None else None
        stem = (image.filename or "image").rsplit(".", 1)[0] if image is not None else "image"
        return fields, data, (await background.read() if background is not None else None), stem

    def fetched(url: str) -> bytes:
        return actions.image_from_reference(url, fetch)

    def work(fields: Any, image: bytes | None, background: bytes | None, keys: Keys, client: str | None):
        if image is None:
            raise InvalidImageError(NO_IMAGE)
        look = look_of(fields, background)
        provider_id = str(fields.provider or default_provider())
        assert app is not None  # routes without an app only describe themselves
        on_cpu = flag(fields.cpu, "cpu")  # a form's values are text: bool("false") is True
        escalate = Escalation.of(fields.escalate, fields.escalate_below)
        with slots.taken():
            result, _ = actions.run(
                image, provider_id, look, keys, app, session_id=rest_identity(client), on_cpu=on_cpu, escalate=escalate
            )
        return result, look, result.encode(look.fmt)

    @api.post(
        "/api/remove",
        summary=SUMMARY,
        response_class=Response,
        response_model=None,
        responses=responses(ERROR_CODES),
        openapi_extra={"parameters": parameters(), "requestBody": {"required": True, "content": bodies()}},
    )
    async def remove(request: Request) -> Response:
        keys = Keys(**{slot: (key or "").strip() for slot, key in keys_of(request.headers).items()})
        try:
            values, image, background, stem = await read(request)
            fields = fields_of(values)  # every field's kind, and no unknown one, before anything is fetched
            one_source(image is not None, fields.url, "image")
            if image is None and fields.url:
                # fetched in slots of their own, each under the fetch's overall deadline: slow
                # URLs can hold only these, never the slots that run models for everyone else
                image = await anyio.to_thread.run_sync(fetched, str(fields.url), limiter=fetching)
            # The model and the encoding in one slot: a request that queued again for its encoding
            # went behind every request waiting for the model, and under 16 clients its p95
            # latency was 1.3-1.6x rembg's (archived benchmarks/vs_rembg_serving.py).
            result, look, data = await anyio.to_thread.run_sync(
                work, fields, image, background, keys, request.client.host if request.client else None, limiter=limiter
            )
        except Exception as exc:
            return refusal(exc, keys, "POST /api/remove", 'a file in "image"')
        return Response(data, media_type=MIME[normalise_format(look.fmt)], headers=headers_of(result, look, stem))

    video_route(api, app, default_provider, fetch)

    @api.get("/api/openapi.json", include_in_schema=False, response_model=None)
    async def schema(request: Request) -> Response:
        return JSONResponse(openapi(api.routes))

    async def wrong_method(request: Request) -> Response:
        """A method the route does not take: 405 with Allow, in the error body every answer has."""
        path = request.url.path
        answer = error(405, f"{path} takes POST (a form or JSON), not {request.method}: see GET /api/openapi.json.")
        answer.headers["Allow"] = "POST"
        return answer

    for path in ("/api/remove", "/api/video"):
        api.add_api_route(path, wrong_method, methods=OTHER_METHODS, include_in_schema=False, response_model=None)
    return api
