"""fal.ai: Bria RMBG 2.0 (`fal-ai/bria/background/remove`) through fal's queue.

Protocol (specs/providers.md section 1), as fal's own client does it:
  1. POST {queue}/fal-ai/bria/background/remove  {"image_url": <PNG data URI>,
     "sync_mode": true}  -> request_id, status_url, response_url, cancel_url;
  2. GET status_url?logs=0 until it says COMPLETED (202 while queued or running);
  3. GET response_url -> {"image": {"url": ...}}; the url is a data URI
     (sync_mode) or a file URL, fetched without our key;
  4. on our deadline: PUT cancel_url (best effort), then ProviderTimeoutError.

The PNG result's alpha channel is the matte. `sync_mode: true` keeps the
result out of fal's request history and saves a download.

Configuration: key from `api_key=` or FAL_KEY; queue host from `base_url=`
or RMBG_FAL_QUEUE_URL (default https://queue.fal.run), so tests and the app
can point at tests/fakes/fal.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Mapping

from ...errors import MissingCredentialsError, ProviderResponseError, ProviderTimeoutError
from ...pricing import price_estimate
from ...types import Cost, Matte
from ..base import ProviderStatus
from .http import (
    check_key,
    read_key,
    Deadline,
    Endpoint,
    LazyClient,
    RetryPolicy,
    alpha_from_image_bytes,
    decode_data_uri,
    excerpt,
    json_body,
    png_data_uri,
    same_origin,
    send,
)

ENDPOINT_ID = "fal-ai/bria/background/remove"
KEY_ENV = "FAL_KEY"
URL_ENV = "RMBG_FAL_QUEUE_URL"
DEFAULT_QUEUE_URL = "https://queue.fal.run"
KEY_PAGE = "https://fal.ai/dashboard/keys"
CANCEL_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class QueueHandle:
    """The URLs fal returned at submit (always used as given, never rebuilt)."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


class FalBria:
    """Bria RMBG 2.0 hosted by fal.ai. Cost: fal's price table ($/image)."""

    id = "fal-bria"
    label = "fal.ai · Bria RMBG 2.0"
    kind = "hosted"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client=None,
        retry: RetryPolicy | None = None,
        timeout=None,
    ):
        """api_key: fal key ("<id>:<secret>"); else FAL_KEY at call time.
        base_url: queue host; else RMBG_FAL_QUEUE_URL; else queue.fal.run.
        client: an httpx.Client to use (not closed by us).
        retry: RetryPolicy (deadline, backoff, polling).
        timeout: httpx.Timeout or read seconds for a client we create."""
        self._api_key = api_key or None
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_QUEUE_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._clients = LazyClient(client, timeout)

    def __repr__(self) -> str:
        return f"FalBria(base_url={self.base_url!r}, key={'set' if self._key() else 'missing'})"

    # --- Provider protocol ------------------------------------------------

    def options(self) -> Mapping[str, object]:
        return {"endpoint": ENDPOINT_ID}

    def status(self) -> ProviderStatus:
        if not self._key():
            return ProviderStatus("needs_key", f"needs {KEY_ENV} (a fal.ai API key)")
        return ProviderStatus("ready", "fal.ai key set")

    def estimate(self) -> Cost:
        return price_estimate(self.id)

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via fal's queue."""
        key = self._key()
        if not key:
            raise MissingCredentialsError(self.id, KEY_ENV, KEY_PAGE)
        check_key(self.id, key, KEY_ENV)
        endpoint = Endpoint(self.id, KEY_ENV, (key,), fal_reason)
        headers = {"Authorization": f"Key {key}", "Accept": "application/json"}
        client = self._http()
        deadline = Deadline(self.retry)
        start = time.perf_counter()
        payload = {"image_url": png_data_uri(image), "sync_mode": True}
        submitted = send(client, endpoint, self.retry, deadline, "POST", f"{self.base_url}/{ENDPOINT_ID}",
                         json=payload, headers=headers)
        handle = self._handle(json_body(submitted, self.id, "the submit response", (key,)))
        try:
            self._wait(client, endpoint, deadline, handle, headers)
            result = send(client, endpoint, self.retry, deadline, "GET", handle.response_url, headers=headers)
            data = self._image_bytes(client, endpoint, deadline, json_body(result, self.id, "the result", (key,)))
        except ProviderTimeoutError:
            self._cancel(client, handle, headers)
            raise
        alpha = alpha_from_image_bytes(data, image.size, self.id)
        meta = {"model": "Bria RMBG 2.0", "endpoint": ENDPOINT_ID, "request_id": handle.request_id}
        return Matte(alpha=alpha, cost=self.estimate(), seconds=time.perf_counter() - start, meta=meta)

    def close(self) -> None:
        """Close the HTTP client if we created it."""
        self._clients.close()

    # --- steps ------------------------------------------------------------

    def _key(self) -> str | None:
        return read_key(self._api_key, KEY_ENV)

    def _http(self):
        return self._clients.get()

    def _handle(self, body) -> QueueHandle:
        if not isinstance(body, dict):
            raise ProviderResponseError(self.id, "the submit response is not a JSON object.")
        fields = {}
        for name in ("request_id", "status_url", "response_url", "cancel_url"):
            value = body.get(name)
            if not isinstance(value, str) or not value:
                raise ProviderResponseError(self.id, f"the submit response has no {name}.", excerpt=excerpt(str(body)))
            if name != "request_id" and not same_origin(value, self.base_url):
                # The key goes with every poll: only ever to the host we were given.
                raise ProviderResponseError(self.id, f"the submit response points {name} at another host; refusing.")
            fields[name] = value
        return QueueHandle(**fields)

    def _wait(self, client, endpoint: Endpoint, deadline: Deadline, handle: QueueHandle, headers) -> None:
        """Poll status_url until COMPLETED; ProviderTimeoutError at the deadline."""
        polls = 0
        while True:
            response = send(client, endpoint, self.retry, deadline, "GET", handle.status_url,
                            params={"logs": "0"}, headers=headers)
            body = json_body(response, self.id, "the status response", endpoint.secrets)
            state = body.get("status") if isinstance(body, dict) else None
            if state == "COMPLETED":
                return
            if state not in ("IN_QUEUE", "IN_PROGRESS"):
                raise ProviderResponseError(self.id, f"returned an unknown queue status {str(state)[:40]!r}.")
            polls += 1
            pause = self.retry.poll_wait(polls)
            if pause >= deadline.remaining():
                raise ProviderTimeoutError(
                    self.id,
                    f"timed out after {self.retry.deadline_s:g} s waiting in fal's queue "
                    f"(request {handle.request_id}, last status {state}); cancellation requested.",
                )
            self.retry.sleep(pause)

    def _image_bytes(self, client, endpoint: Endpoint, deadline: Deadline, body) -> bytes:
        image = body.get("image") if isinstance(body, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderResponseError(self.id, "the result has no image.url.", excerpt=excerpt(str(body)[:400]))
        if url.startswith("data:"):
            return decode_data_uri(url, self.id)
        if not url.startswith(("http://", "https://")):
            raise ProviderResponseError(self.id, "the result's image.url is neither a data URI nor an http(s) URL.")
        # A file on fal's CDN: public, so fetched without the key.
        no_key = Endpoint(self.id, KEY_ENV, endpoint.secrets, fal_reason)
        return send(client, no_key, self.retry, deadline, "GET", url).content

    def _cancel(self, client, handle: QueueHandle, headers) -> None:
        """Best effort: ask fal to drop the request so it is not run (or billed)."""
        import httpx

        try:
            client.request("PUT", handle.cancel_url, headers=headers, timeout=CANCEL_TIMEOUT_S)
        except httpx.HTTPError:
            pass


def fal_reason(response) -> str:
    """fal's own error text: `detail` (a string or a validation list)."""
    try:
        body = response.json()
    except ValueError:
        return excerpt(response.text, limit=120)
    if not isinstance(body, dict):
        return excerpt(str(body), limit=120)
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


def fal_bria(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client=None,
    retry: RetryPolicy | None = None,
    timeout=None,
    deadline_s: float | None = None,
) -> FalBria:
    """Registry factory for "fal-bria"."""
    policy = retry or RetryPolicy()
    if deadline_s is not None:
        policy = replace(policy, deadline_s=deadline_s)
    return FalBria(api_key=api_key, base_url=base_url, client=client, retry=policy, timeout=timeout)
