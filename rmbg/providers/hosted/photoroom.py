"""Photoroom: its Remove Background API (the "Basic" plan), the other
commercial reference.

Protocol (Photoroom's API reference, https://docs.photoroom.com), one request:
  POST {base}/v1/segment, header `x-api-key: <key>`, a multipart form with the
  image as `image_file` and `size` (preview / medium / hd / full), `format=png`,
  `channels=rgba`; answer 200 with the result's bytes (a PNG whose alpha
  channel is the matte); or an error with a JSON body.

Billing (Photoroom's "How do API credits work?",
https://docs.photoroom.com/getting-started/how-do-api-credits-work): a credit
is consumed by each successful call; calls that end in an error consume none. Photoroom reports no
cost in its answer, so a successful call is costed at the price per image
(`usd_per_image=`, else RMBG_PHOTOROOM_USD_PER_IMAGE, else the declared price:
the Basic plan's $0.02 per image from Photoroom's pricing page), labelled
"estimated".

Sizes: "full" (the default: the input's resolution) or "preview" (0.25 MP,
scaled up to the input's size here; payload.fitted_alpha). Photoroom does not
say that a preview costs less, so it is costed as a full image.

Charge (rmbg.charging): a refused connection is NOT_SENT; an answer 4xx is
REFUSED (an error consumes no credit; 429 alone is sent again); a dropped
connection, a read timeout or a 5xx is UNKNOWN (kept, never re-sent); a 2xx
is ACCEPTED, one image billed even when its body turns out unusable.

Not documented, and what we chose:
- The error bodies: documented for 402 only (`{"error": {"detail": ...}}`).
  Every other status is read leniently: `error.detail`, `detail` or `message`.
- Whether an HTTP 5xx comes from Photoroom (an error: not billed) or from a
  proxy after the image was processed: the paid POST is never re-sent after a
  5xx, a dropped connection or a read timeout (rmbg.providers.hosted.http).
- Rate limits: not published; a 429 is treated as not processed (re-sent with
  backoff, `Retry-After` honoured when present).

Configuration: key from `api_key=` or PHOTOROOM_API_KEY; host from
`base_url=` or RMBG_PHOTOROOM_URL (default https://sdk.photoroom.com).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal

from ... import charging
from ...errors import InvalidRequestError, RmbgError
from ...pricing import price_table
from ...types import Cost, Matte, format_usd
from ...vendors import vendor
from .base import Connection, HostedProvider, connected
from .payload import excerpt, fitted_alpha
from .retry import Deadline
from .upload import check_image_answer, configured_price, upload_file

VENDOR = vendor("photoroom")  # the vendor its key is paid to (rmbg.vendors)
KEY_ENV = VENDOR.key_env
URL_ENV = "RMBG_PHOTOROOM_URL"
PRICE_ENV = "RMBG_PHOTOROOM_USD_PER_IMAGE"
DEFAULT_URL = "https://sdk.photoroom.com"
KEY_PAGE = VENDOR.help
PATH = "/v1/segment"
SIZES = ("full", "preview")
MAX_UPLOAD_BYTES = 30 * 2**20  # the limit Photoroom documents for images on its v2 API (none found for v1)
MAX_RESULT_BYTES = 128 * 2**20


class Photoroom(HostedProvider):
    """Photoroom's Remove Background API. Cost: price per successful image (estimated)."""

    id = "photoroom"
    label = "Photoroom"
    KEY_ENV = KEY_ENV
    KEY_PAGE = KEY_PAGE
    KEY_WHAT = VENDOR.what
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_URL

    def __init__(
        self,
        connection: Connection | None = None,
        /,
        *,
        size: str = "full",
        usd_per_image: Decimal | str | None = None,
        **settings,
    ):
        """size: "full" or "preview". usd_per_image: the price of one image.
        connection, or its fields by name: see HostedClient."""
        if size not in SIZES:
            raise InvalidRequestError(f"Photoroom size must be one of {', '.join(SIZES)}, got {size!r}.")
        super().__init__(connection, **settings)
        self.size = size
        self.usd_per_image = configured_price(usd_per_image, PRICE_ENV, self.id, "a Photoroom image")

    def options(self) -> Mapping[str, object]:
        return {"size": self.size}

    def estimate(self) -> Cost:
        if self.usd_per_image == price_table()[self.id]:
            return super().estimate()
        return Cost(self.usd_per_image, "estimated", f"${format_usd(self.usd_per_image)} per image (configured)")

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via Photoroom."""
        key = self._require_key()
        name, data, mime = upload_file(image, MAX_UPLOAD_BYTES, "Photoroom")
        endpoint = self._endpoint(photoroom_reason)
        deadline = Deadline(self.retry)
        start = time.perf_counter()
        meter = charging.current()
        response = self._send(
            endpoint,
            deadline,
            "POST",
            f"{self.base_url}{PATH}",
            data={"size": self.size, "format": "png", "channels": "rgba"},
            files={"image_file": (name, data, mime)},
            headers={"x-api-key": key, "Accept": "image/*"},
            max_bytes=MAX_RESULT_BYTES,
            paid=True,
        )
        meter.accepted(self.id)  # a successful call: Photoroom consumed a credit
        try:
            check_image_answer(response, self.id)
            alpha, scaled = fitted_alpha(response.content, image.size, self.id)
        except RmbgError as exc:
            raise meter.annotate(exc)  # billed all the same: the budget keeps it
        estimate = self.estimate()
        cost = Cost(estimate.usd, "estimated", f"{estimate.note}; Photoroom reports no cost")
        meta = {"model": "Photoroom Remove Background", "size": self.size}
        if scaled:
            meta["scaled_from"] = f"{scaled[0]}x{scaled[1]}"
        return Matte(alpha=alpha, cost=cost, seconds=time.perf_counter() - start, meta=meta)


def photoroom_reason(response) -> str:
    """Photoroom's own error text: `error.detail` (documented for 402), else `detail` or `message`."""
    try:
        body = response.json()
    except ValueError:
        return excerpt(response.text, limit=120)
    if not isinstance(body, dict):
        return excerpt(str(body), limit=120)
    inner = body.get("error")
    for holder in (inner if isinstance(inner, dict) else {}, body):
        for name in ("detail", "message"):
            if isinstance(holder.get(name), str) and holder[name].strip():
                return holder[name].strip()[:200]
    return excerpt(str(body), limit=120)


@connected
def photoroom(connection: Connection, *, size: str = "full", usd_per_image=None) -> Photoroom:
    """Registry factory for "photoroom"."""
    return Photoroom(connection, size=size, usd_per_image=usd_per_image)
