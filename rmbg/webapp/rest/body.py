"""What every REST route shares (`POST /api/remove`, `POST /api/video`):
reading a request's body under its size limit, and answering an error.

The body is read here, not by FastAPI: its size is counted as it streams, and
a form or JSON is parsed only under that limit (an image route's: the image
file limit, RMBG_IMAGE_MAX_MB; /api/video's: a clip's and its background
picture's, rmbg.webapp.file_limits); a body that declares more is answered
413 before it is read. A multipart form's files come
back as starlette UploadFiles (spooled to disk past 1 MB), so a route copies a
large one where it needs it without holding it in memory.

Errors are JSON {"error": message} (rest.types.Refusal) with a fitting
status: STATUS maps rmbg's errors to codes; 413 too large, 415 not a form
nor JSON, or compressed (Content-Encoding: gzip...), 500 anything unexpected (logged, never shown); 429 a ZeroGPU
refusal, with the fields that run the same image on the CPU (gpu_refusal).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse

from ...errors import (
    BudgetError,
    InvalidImageError,
    LicenceError,
    MissingCredentialsError,
    ModelUnavailableError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    RmbgError,
    ServerBusy,
    UnknownProviderError,
)
from ..callbody import COMPRESSED, encoded
from ..catalog import Keys, SessionKeyMissing
from ..downloads import DownloadRefused
from ..file_limits import image_max_bytes, request_over
from ..messages import safe_message
from ..zerogpu import GpuRefused
from .types import CpuRetry, Refusal

log = logging.getLogger("rmbg.rest")
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (GpuRefused, 429),
    (BudgetError, 402),
    (ProviderCreditError, 402),
    (MissingCredentialsError, 401),
    (ProviderAuthError, 401),
    (ProviderRateLimitError, 429),
    (ProviderTimeoutError, 504),
    (ProviderHTTPError, 502),
    (DownloadRefused, 403),
    (LicenceError, 403),
    (ModelUnavailableError, 503),
    (ServerBusy, 503),
    (UnknownProviderError, 400),
    (InvalidImageError, 400),
    (RmbgError, 400),
)
# Every status an error may have: STATUS's, 413 (too large), 415 (not a form nor JSON), 500 (logged).
ERROR_CODES = tuple(sorted({code for _, code in STATUS} | {413, 415, 500}))


class TooLarge(Exception):
    """Over a size limit; the message says which and how large (413)."""


class Compressed(Exception):
    """The body came compressed (Content-Encoding): refused, as on the raw routes (rmbg.webapp.callbody), 415."""


class NotAForm(Exception):
    """The body is neither a form nor JSON; its content type is the message."""


def status_of(exc: BaseException) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def over(limit: int) -> TooLarge:
    return TooLarge(request_over(limit))


async def limited(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise over(limit)
        yield chunk


def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A form's or a JSON object's (name, value) pairs as a dict, each name once: a field sent twice (two
    providers, two images) is refused, where one of them was taken without a word (the last)."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise InvalidImageError(f"The field {name[:40]!r} is sent more than once: send each field once.")
        fields[name] = value
    return fields


async def read_body(
    request: Request, files: Mapping[str, str], max_fields: int, limit: int | None = None
) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """(fields, uploads by field name) of a multipart form, a urlencoded form
    (fields only: curl -d url=https://...) or a JSON object; `files`: the
    upload fields a form may carry; `limit`: the most the body may be (None: an image's)."""
    if request.query_params:  # read nowhere: a provider asked for there ran as the default, without a word
        names = ", ".join(dict.fromkeys(request.query_params.keys()))
        raise InvalidImageError(
            f"Send the fields in the form or the JSON body, not in the URL ({names[:80]} came in the URL)."
        )
    if encoded(request.scope):
        raise Compressed(COMPRESSED)
    limit = image_max_bytes() if limit is None else limit
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise over(limit)
    stream = limited(request.stream(), limit)
    if kind == "multipart/form-data":
        parser = MultiPartParser(request.headers, stream, max_files=len(files), max_fields=max_fields)
        form = once(list((await parser.parse()).multi_items()))
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        uploads = {k: v for k, v in form.items() if isinstance(v, UploadFile)}
        unnamed = sorted(set(fields) & set(files))  # a file's part without filename= is a text field to starlette
        if unnamed:
            name = unnamed[0]
            raise InvalidImageError(
                f"The {name} field came without a file name, so it was read as text, not as a file: send it with "
                f"one (curl -F {name}=@photo.jpg; Python's httpx or requests: files={{'{name}': ('photo.jpg', data)}})."
            )
        unknown = sorted(set(uploads) - set(files))
        if unknown:
            raise InvalidImageError(f"Unknown file field(s) {', '.join(unknown)}: use {', '.join(files)}.")
        return fields, uploads
    if kind == "application/x-www-form-urlencoded":
        body = b"".join([chunk async for chunk in stream])
        return once(parse_qsl(body.decode("utf-8", "replace"))), {}
    if kind == "application/json":
        body = b"".join([chunk async for chunk in stream])
        try:
            fields = json.loads(body or b"null", object_pairs_hook=once)
        except InvalidImageError:  # a name twice (once's): a ValueError too, but not a JSON one
            raise
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise InvalidImageError("The request body is not valid JSON.") from None
        if not isinstance(fields, dict):
            raise InvalidImageError('The JSON body must be an object such as {"url": "https://..."}.')
        return fields, {}
    raise NotAForm(kind)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(Refusal(error=message).model_dump(exclude_none=True), status_code=status)


def gpu_refusal(exc: GpuRefused, keys: Keys) -> JSONResponse:
    """ZeroGPU refused the call (429): its words, ZeroGPU's title, and the fields that run the same
    image on the CPU; Retry-After when ZeroGPU said when the quota refills."""
    body = Refusal(
        error=safe_message(exc, keys, "rest"),
        zerogpu=exc.title,
        retry_on_cpu=CpuRetry(provider=exc.cpu_provider),
    )
    headers = {"Retry-After": str(exc.wait_seconds)} if exc.wait_seconds is not None else None
    return JSONResponse(body.model_dump(exclude_none=True), status_code=429, headers=headers)


def refusal(exc: Exception, keys: Keys, route: str, upload: str) -> JSONResponse:
    """The answer to a request that failed with `exc`; `upload`: what a form
    carries ('a file in "image"'), for the 415's sentence."""
    if isinstance(exc, TooLarge):
        return error(413, str(exc))
    if isinstance(exc, Compressed):
        return error(415, str(exc))
    if isinstance(exc, NotAForm):
        return error(
            415,
            f'Send multipart/form-data ({upload}) or application/json (a "url"), '
            f"not {str(exc) or 'a body without a content type'}.",
        )
    if isinstance(exc, MultiPartException):
        return error(400, f"The form could not be read: {exc.message}")
    if isinstance(exc, GpuRefused):
        return gpu_refusal(exc, keys)
    if isinstance(exc, SessionKeyMissing):
        return error(401, safe_message(exc, keys, "rest"))
    if isinstance(exc, RmbgError):
        answer = error(status_of(exc), safe_message(exc, keys, "rest"))
        if exc.counted_usd:  # a paid call that failed and was counted: what, in the headers a result carries
            answer.headers["X-Rmbg-Cost-USD"] = str(exc.counted_usd)
            answer.headers["X-Rmbg-Cost-Source"] = "may have been billed"
        return answer
    log.error("unexpected error in %s", route, exc_info=exc)
    return error(500, "Something went wrong on the server (logged). Please try again.")
