"""fal.ai: Bria RMBG 2.0 (`fal-ai/bria/background/remove`) and RMBG 3.0
(`bria/rmbg-3`) through fal's queue.

Protocol (https://fal.ai/docs/api-reference/inference-api; docs/providers.md), as fal's own client does it:
  1. POST {queue}/fal-ai/bria/background/remove  {"image_url": <PNG data URI>,
     "sync_mode": true}  -> request_id, status_url, response_url, cancel_url;
  2. GET status_url?logs=0 until it says COMPLETED (202 while queued or running);
  3. GET response_url -> {"image": {"url": ...}}; the url is a data URI
     (sync_mode) or a file URL, fetched without our key;
  4. on any failure after the submit was accepted (our deadline, a poll
     answered 429, a malformed result): PUT cancel_url (best effort) while
     the job may still run, and the error says fal may bill it (rmbg.money.charging);
     unless the last status was IN_QUEUE and fal accepted the cancel: fal
     removes a queued request ("A queued request is removed", its cancel
     page) and never bills queue time, so the call is released. (A job that
     left the queue between our last poll and the cancel gets fal's cancel
     signal at once; rmbg cannot tell it apart, and fal does not say.)

The PNG result's alpha channel is the matte. `sync_mode: true` keeps the
result out of fal's request history and saves a download.

Configuration: key from `api_key=` or FAL_KEY; queue host from `base_url=`
or RMBG_FAL_QUEUE_URL (default https://queue.fal.run), so tests and the app
can point at tests/fakes/fal.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ...errors import ProviderRejectedError, ProviderResponseError, ProviderTimeoutError, RmbgError
from ...money.charging import Charge, charge_of_status, current
from ...types import Matte
from ...vendors import vendor
from .base import Call, Connection, HostedClient, HostedProvider, connected
from .http import Endpoint, json_body, same_origin
from .payload import alpha_from_image_bytes, decode_data_uri, download_result, error_object, excerpt, png_data_uri
from .retry import Deadline, Misses

ENDPOINT_ID = "fal-ai/bria/background/remove"
RMBG3_ENDPOINT_ID = "bria/rmbg-3"
VENDOR = vendor("fal")  # the vendor its key is paid to (rmbg.vendors)
KEY_ENV = VENDOR.key_env
URL_ENV = "RMBG_FAL_QUEUE_URL"
DEFAULT_QUEUE_URL = "https://queue.fal.run"
CANCEL_TIMEOUT_S = 5.0
DEQUEUED = "It was still waiting in fal's queue (request {rid}) and was removed from it, so fal does not bill it."
# The largest result file we accept (bytes; read at call time): a 40 MP RGBA
# PNG (our input limit) of a photo is well under it; anything larger is not an
# answer to our request.
MAX_DOWNLOAD_BYTES = 128 * 2**20
E = TypeVar("E", bound=BaseException)

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class QueueHandle:
    """The URLs fal returned at submit (always used as given, never rebuilt)."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


class FalQueue:
    """fal's queue protocol for one endpoint id, reusable by every fal model:
    submit a JSON payload, poll until COMPLETED, fetch the result JSON; on a
    failure after fal accepted the submit, cancel (best effort) and say that
    fal may bill it.

    The key is only ever sent to the queue host we were given (status and
    result URLs on another host are refused). fal documents 5xx answers as
    never billed, so a submit that got one may be sent again (see http.send).
    """

    def __init__(self, provider: HostedClient, endpoint_id: str):
        self.provider = provider
        self.endpoint_id = endpoint_id
        self.meter = current()
        self.completed = False  # fal said COMPLETED (or we cancelled): no cancel to send
        self.last_state = ""  # the last queue status fal gave
        self._for_cancel: tuple[QueueHandle, dict[str, str], httpx.Client] | None = None  # once fal took it

    def run(self, payload: dict[str, object]) -> tuple[QueueHandle, object, Endpoint, Deadline]:
        """Submit `payload` and wait for it: (handle, result JSON, endpoint, deadline).

        Charge (rmbg.money.charging): the submit is the paid request; fal's answer
        with a request id is ACCEPTED, and from then on any failure (a poll
        answered 429, our deadline, a malformed result) keeps the charge,
        sends fal's cancel while the job may still run, and says so.
        """
        p = self.provider
        call = p.call(fal_reason, not_accepted=_fal_unbilled, charge_of=fal_charge, final=_start_timed_out)
        key, endpoint, deadline = call.key, call.endpoint, call.deadline
        headers = {"Authorization": f"Key {key}", "Accept": "application/json"}
        submitted = call.send("POST", f"{p.base_url}/{self.endpoint_id}", json=payload, headers=headers, paid=True)
        try:
            handle = self._handle(json_body(submitted, p.id, "the submit response", (key,)))
        except RmbgError as exc:
            raise self.meter.annotate(exc)  # answered 2xx, unreadable: it may have been taken
        self.meter.accepted(p.id, handle.request_id)
        self._for_cancel = (handle, headers, call.http)
        try:
            self._wait(call, handle, headers)
            self.completed = True
            result = call.send("GET", handle.response_url, headers=headers)
            body = json_body(result, p.id, "the result", (key,))
        except ProviderRejectedError as exc:  # the job fal took failed: its input was not refused at the door
            text = str(exc.args[0]).replace("rejected the image", "took the request, then its job failed", 1)
            exc.args = (text, *exc.args[1:])
            raise self.failed(exc)
        except RmbgError as exc:
            raise self.failed(exc)
        return handle, body, endpoint, deadline

    def failed(self, exc: E) -> E:
        """A failure after fal accepted the submit: cancel while the job may
        still be running (best effort), and say in the message that it may be billed."""
        if not self.completed and self._for_cancel is not None:
            handle = self._for_cancel[0]
            removed = self._cancel(*self._for_cancel)
            self.meter.cancelled = True
            self.completed = True  # one cancel per call
            if removed and self.last_state == "IN_QUEUE":  # fal never bills queue time
                self.meter.withdrawn()
                if exc.args and isinstance(exc.args[0], str):
                    dequeued = DEQUEUED.format(rid=handle.request_id)
                    exc.args = (f"{exc.args[0].rstrip()} {dequeued}", *exc.args[1:])
        return self.meter.annotate(exc)

    def download(self, url: str, endpoint: Endpoint, deadline: Deadline) -> bytes:
        """A result image: a data URI, or a file on fal's CDN (public: fetched
        without the key, within the call's deadline).

        Refused (ProviderResponseError) when it is over MAX_DOWNLOAD_BYTES
        (counted as it arrives) or declares a type that is not an image: an
        HTML error page served with 200 never reaches the decoder.
        """
        try:
            return self._download(url, endpoint, deadline)
        except RmbgError as exc:
            raise self.failed(exc)

    def _download(self, url: str, endpoint: Endpoint, deadline: Deadline) -> bytes:
        p = self.provider
        limit = MAX_DOWNLOAD_BYTES
        if url.startswith("data:"):
            mime = url[5:].partition(",")[0].partition(";")[0].strip().lower()
            _check_image_type(mime, p.id)
            if len(url) * 3 // 4 > limit:
                raise ProviderResponseError(p.id, f"returned a data URI over the {limit / 2**20:g} MiB limit; refused.")
            return decode_data_uri(url, p.id)
        if not url.startswith(("http://", "https://")):
            raise ProviderResponseError(p.id, "the result's URL is neither a data URI nor an http(s) URL.")
        # streamed, capped, its URL guarded and its pixels checked before decoding (payload.download_result)
        return download_result(url, p.id, base_url=p.base_url, max_bytes=limit, seconds_left=deadline.remaining)

    def _handle(self, body) -> QueueHandle:
        pid = self.provider.id
        if not isinstance(body, dict):
            raise ProviderResponseError(pid, "the submit response is not a JSON object.")
        fields = {}
        for name in ("request_id", "status_url", "response_url", "cancel_url"):
            value = body.get(name)
            if not isinstance(value, str) or not value:
                raise ProviderResponseError(pid, f"the submit response has no {name}.", excerpt=excerpt(str(body)))
            if name != "request_id" and not same_origin(value, self.provider.base_url):
                # The key goes with every poll: only ever to the host we were given.
                raise ProviderResponseError(pid, f"the submit response points {name} at another host; refusing.")
            fields[name] = value
        return QueueHandle(**fields)

    def _wait(self, call: Call, handle: QueueHandle, headers) -> None:
        """Poll status_url until COMPLETED; ProviderTimeoutError at the deadline."""
        p = self.provider
        polls, misses = 0, Misses(p.retry)
        while True:
            response = call.send("GET", handle.status_url, params={"logs": "0"}, headers=headers)
            body = misses.read(json_body, response, p.id, "the status response", call.endpoint.secrets)
            if body is not None:  # None: an unreadable answer, polled again (Misses)
                state = body.get("status") if isinstance(body, dict) else None
                self.last_state = str(state)
                if state == "COMPLETED":
                    return
                if state not in ("IN_QUEUE", "IN_PROGRESS"):
                    raise ProviderResponseError(p.id, f"returned an unknown queue status {str(state)[:40]!r}.")
            polls += 1
            pause = p.retry.poll_wait(polls)
            if pause >= call.deadline.remaining():
                raise ProviderTimeoutError(
                    p.id,
                    f"timed out after {p.retry.deadline_s:g} s waiting in fal's queue (last status {self.last_state}).",
                )
            p.retry.sleep(pause)

    @staticmethod
    def _cancel(handle: QueueHandle, headers: dict[str, str], http: httpx.Client) -> bool:
        """Best effort: ask fal to drop the request so it is not run (or billed). True when fal
        accepted the cancel (a 2xx that does not say ALREADY_COMPLETED)."""
        import httpx

        from ...image.deadline import within

        try:
            with within(CANCEL_TIMEOUT_S):  # in all, however slowly fal answers
                answer = http.request("PUT", handle.cancel_url, headers=headers, timeout=CANCEL_TIMEOUT_S)
            body = answer.json() if answer.content else {}
        except (httpx.HTTPError, ValueError):
            return False  # the deadline error that follows is what the caller needs to know
        said = body.get("status") if isinstance(body, dict) else None
        return 200 <= answer.status_code < 300 and said != "ALREADY_COMPLETED"


class FalBria(HostedProvider):
    """Bria RMBG 2.0 hosted by fal.ai. Cost: fal's price table ($/image)."""

    id = "fal-bria"
    label = "fal.ai · Bria RMBG 2.0"
    ENDPOINT = ENDPOINT_ID
    MODEL = "Bria RMBG 2.0"
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_QUEUE_URL

    def options(self) -> Mapping[str, object]:
        return {"endpoint": self.ENDPOINT}

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via fal's queue."""
        start = time.perf_counter()
        queue = FalQueue(self, self.ENDPOINT)
        handle, body, endpoint, deadline = queue.run({"image_url": png_data_uri(image), "sync_mode": True})
        result = body.get("image") if isinstance(body, dict) else None
        url = result.get("url") if isinstance(result, dict) else None
        if not isinstance(url, str) or not url:
            raise queue.failed(
                ProviderResponseError(self.id, "the result has no image.url.", excerpt=excerpt(str(body)[:400]))
            )
        try:
            alpha = alpha_from_image_bytes(queue.download(url, endpoint, deadline), image.size, self.id)
        except RmbgError as exc:
            raise queue.failed(exc)
        meta = {"model": self.MODEL, "endpoint": self.ENDPOINT, "request_id": handle.request_id}
        return Matte(alpha=alpha, cost=self.estimate(), seconds=time.perf_counter() - start, meta=meta)


class FalRmbg3(FalBria):
    """Bria RMBG 3.0 on fal (`bria/rmbg-3`), Bria's newest background remover.

    fal's model page (https://fal.ai/models/bria/rmbg-3/api) documents the same input (`image_url`, `sync_mode`) and
    output (`image`, a PNG with an alpha channel at the input's size) as RMBG
    2.0, so the same queue and reading serve it; only the endpoint id (owner
    "bria", not "fal-ai") and the price differ. Its price was not on the pages
    we could read: the declared price (rmbg.registry) is a cautious estimate.
    """

    id = "fal-rmbg-3"
    label = "fal.ai · Bria RMBG 3.0"
    ENDPOINT = RMBG3_ENDPOINT_ID
    MODEL = "Bria RMBG 3.0"


def _check_image_type(mime: str, provider_id: str) -> None:
    """A result file must be an image (or untyped bytes, left to the decoder)."""
    if mime and not mime.startswith("image/") and mime != "application/octet-stream":
        raise ProviderResponseError(provider_id, f"returned a {mime[:60]} file where an image was expected.")


def _fal_unbilled(status: int) -> bool:
    """fal documents its 5xx as never billed; 408 and 429 refuse the request."""
    return status in (408, 429) or status >= 500


def _start_timed_out(response) -> bool:
    """fal's 504 with X-Fal-Request-Timeout-Type: the start timeout the caller set ran out, which
    sending again cannot change (a timeout on fal's side: rmbg.providers.hosted.http.http_error)."""
    return response.status_code == 504 and "x-fal-request-timeout-type" in response.headers


def fal_charge(response) -> Charge:
    """What fal's answer to a submit says about its charge (rmbg.money.charging):
    fal says a 422 may be billed when GPU time was used, so it is kept;
    otherwise by status (4xx and fal's unbilled statuses refused)."""
    if response.status_code == 422:
        return Charge.UNKNOWN
    return charge_of_status(response.status_code, _fal_unbilled)


def fal_reason(response) -> str:
    """fal's own error text: `detail` (a string or a validation list)."""
    body = error_object(response)
    if isinstance(body, str):
        return body
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(_detail_item(item) for item in detail[:5])
    return str(body.get("error_type") or body.get("status") or "")[:120]


def _detail_item(item) -> str:
    if not isinstance(item, dict):
        return str(item)[:120]
    loc = item.get("loc")
    where = str(loc[-1]) if isinstance(loc, list) and loc else ""
    text = str(item.get("msg", "invalid input"))
    kind = item.get("type")
    return f"{where + ': ' if where else ''}{text}{f' ({kind})' if kind else ''}"


@connected
def fal_bria(connection: Connection) -> FalBria:
    """Registry factory for "fal-bria"."""
    return FalBria(connection)


@connected
def fal_rmbg3(connection: Connection) -> FalRmbg3:
    """Registry factory for "fal-rmbg-3"."""
    return FalRmbg3(connection)
