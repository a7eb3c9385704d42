"""Photoroom: its Remove Background API (the "Basic" plan), the other
commercial reference.

Protocol (Photoroom's API reference, https://docs.photoroom.com), one request:
  POST {base}/v1/segment, header `x-api-key: <key>`, a multipart form with the
  image as `image_file` and `size` (preview / medium / hd / full), `format=png`,
  `channels=rgba`; answer 200 with the result's bytes (a PNG whose alpha
  channel is the matte); or an error with a JSON body.

Billing (Photoroom's "How are API calls billed?",
https://docs.photoroom.com/getting-started/pricing): an image is consumed by
each successful call; calls that end in an error consume none. Photoroom
reports no cost in its answer, so a successful call is costed at the price
per image (`usd_per_image=`, else RMBG_PHOTOROOM_USD_PER_IMAGE, else the
declared price: the Basic plan's $0.02 per image from Photoroom's pricing
page), labelled "estimated".

Sizes: "full" (the default: the input's resolution, 1 credit) or "preview"
(up to 0.25 MP, scaled up to the input's size here; payload.fitted_alpha),
which costs 0.25 credit: "They require 0.25 credit to be processed through
PhotoRoom API instead of 1 credit for higher resolution" (Photoroom's FAQ,
https://docs.photoroom.com/getting-started/frequently-asked-questions). A
preview is reserved, shown and projected at a quarter of the price per image.

Sandbox keys: "To use sandbox mode, prepend `sandbox_` to your API key";
sandbox calls are free "but will produce a result with a watermark"
(https://docs.photoroom.com/remove-background-api-basic-plan/sandbox-mode,
https://docs.photoroom.com/getting-started/pricing). A key that starts with
`sandbox_` is costed free, never reserved, and its result is marked
watermarked (Cost.watermarked, meta "watermark"): every door says so, and
quality scores leave it out. Its mattes are cached apart from a paid key's
(options() says "sandbox").

Sandbox quota: a sandbox key makes at most 100 calls a day and 1,000 a month
(the sandbox-mode page): counted on the ledger's database, and a call past
either is refused with words before it is sent (sandbox_quota).

Rate limit: "The default rate limit is 500 images per minute" (the FAQ
above); "When the rate limit has been reached, an error code 429 will be
returned" and "API calls made using Sandbox mode also count towards the rate
limit" (https://photoroom.discourse.group/t/is-there-a-rate-limiting/11, a
Photoroom answer on its forum). Kept on our side by one limiter per key in
the process (rmbg.providers.hosted.ratelimit; RMBG_PHOTOROOM_RATE_PER_MINUTE
for a raised limit), a key and its sandbox form sharing it: a burst waits
rather than earning 429s. A 429 that comes all the same (other processes on
the key) is treated as not processed: re-sent with backoff, `Retry-After`
honoured when present.

Charge (rmbg.money.charging): a refused connection is NOT_SENT; an answer 4xx is
REFUSED (an error consumes no credit; 429 alone is sent again); a dropped
connection, a read timeout or a 5xx is UNKNOWN (kept, never re-sent); a 2xx
is ACCEPTED, one image billed even when its body turns out unusable.

Not documented, and what we chose:
- The error bodies: documented for 402 only (`{"error": {"detail": ...}}`).
  Every other status is read leniently: `error.detail`, `detail` or `message`.
- Whether an HTTP 5xx comes from Photoroom (an error: not billed) or from a
  proxy after the image was processed: the paid POST is never re-sent after a
  5xx, a dropped connection or a read timeout (rmbg.providers.hosted.http).
- How a sandbox answer is told apart: nothing in the answer is documented,
  so the key says it.

Configuration: key from `api_key=` or PHOTOROOM_API_KEY; host from
`base_url=` or RMBG_PHOTOROOM_URL (default https://sdk.photoroom.com).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal

from ...errors import InvalidRequestError, RmbgError
from ...money import charging
from ...money.pricing import price_table
from ...settings import current
from ...types import Cost, Matte, format_usd
from ...vendors import vendor
from .base import Connection, HostedProvider, connected
from .payload import error_object, excerpt, fitted_alpha
from .ratelimit import RateLimiter, shared_limiter
from .retry import Deadline
from .upload import check_image_answer, configured_price, upload_file

VENDOR = vendor("photoroom")  # the vendor its key is paid to (rmbg.vendors)
KEY_ENV = VENDOR.key_env
URL_ENV = "RMBG_PHOTOROOM_URL"
PRICE_ENV = "RMBG_PHOTOROOM_USD_PER_IMAGE"
DEFAULT_URL = "https://sdk.photoroom.com"
PATH = "/v1/segment"
SIZES = ("full", "preview")
CREDITS = {"full": Decimal(1), "preview": Decimal("0.25")}  # the FAQ: a preview "require[s] 0.25 credit"
SANDBOX_PREFIX = "sandbox_"  # the sandbox-mode page: "prepend `sandbox_` to your API key"
SANDBOX_NOTE = "a Photoroom sandbox key: free, with Photoroom's watermark"
RATE_ENV = "RMBG_PHOTOROOM_RATE_PER_MINUTE"
RATE_PER_MINUTE = 500  # the FAQ: "The default rate limit is 500 images per minute"
MAX_UPLOAD_BYTES = 30 * 2**20  # the limit Photoroom documents for images on its v2 API (none found for v1)
MAX_RESULT_BYTES = 128 * 2**20


class Photoroom(HostedProvider):
    """Photoroom's Remove Background API. Cost: price per successful image (estimated)."""

    id = "photoroom"
    label = "Photoroom"
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_URL

    def __init__(
        self,
        connection: Connection | None = None,
        /,
        *,
        size: str = "full",
        usd_per_image: Decimal | str | None = None,
        rate_limiter: RateLimiter | None = None,
        **settings,
    ):
        """size: "full" or "preview". usd_per_image: the price of one image (1
        credit). rate_limiter: instead of the key's shared one (a test's clock).
        connection, or its fields by name: see HostedClient."""
        if size not in SIZES:
            raise InvalidRequestError(f"Photoroom size must be one of {', '.join(SIZES)}, got {size!r}.")
        super().__init__(connection, **settings)
        self.size = size
        self.usd_per_image = configured_price(usd_per_image, PRICE_ENV, self.id, "a Photoroom image")
        self._limiter = rate_limiter

    @property
    def sandbox(self) -> bool:
        """Whether the key is a sandbox key (free calls, watermarked results)."""
        return (self._key() or "").startswith(SANDBOX_PREFIX)

    def options(self) -> Mapping[str, object]:
        return {"size": self.size, "sandbox": True} if self.sandbox else {"size": self.size}

    def estimate(self) -> Cost:
        """What one call costs: free with a sandbox key; else the size's credits x the price per image."""
        if self.sandbox:
            return Cost(Decimal(0), "free", SANDBOX_NOTE, watermarked=True)
        credits = CREDITS[self.size]
        if credits == 1 and self.usd_per_image == price_table()[self.id]:
            return super().estimate()
        configured = "" if self.usd_per_image == price_table()[self.id] else " (configured)"
        per = f"${format_usd(self.usd_per_image)} per image{configured}"
        if credits == 1:
            return Cost(self.usd_per_image, "estimated", per)
        return Cost(credits * self.usd_per_image, "estimated", f"preview: {credits:g} credit x {per}")

    def limiter(self, key: str) -> RateLimiter:
        """The rate limiter of `key` (its sandbox form shares it: sandbox calls count too)."""
        if self._limiter is not None:
            return self._limiter
        try:
            per_minute = current().integer(RATE_ENV, RATE_PER_MINUTE)
        except ValueError as exc:
            raise InvalidRequestError(f"{exc}.") from None
        if per_minute < 1:
            raise InvalidRequestError(f"{RATE_ENV} must be 1 or more (calls a minute), got {per_minute}.")
        return shared_limiter(self.id, key.removeprefix(SANDBOX_PREFIX), per_minute)

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via Photoroom."""
        key = self._require_key()
        name, data, mime = upload_file(image, MAX_UPLOAD_BYTES, "Photoroom")
        endpoint = self._endpoint(photoroom_reason)
        deadline = Deadline(self.retry)
        start = time.perf_counter()
        meter = charging.current()
        counted_at = time.time()  # the day and month this call is counted in, and given back to
        counts = self._count_sandbox(key, counted_at) if self.sandbox else None
        with charging.metered() as sent:
            try:
                self.limiter(key).acquire(self.id, deadline.remaining(), f"Photoroom's rate limit ({RATE_ENV})")
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
            except BaseException:
                if counts is not None and sent.state is charging.Charge.NOT_SENT:
                    self._give_back(counts, key, counted_at)
                raise
        meter.accepted(self.id)  # a successful call: Photoroom consumed a credit
        try:
            check_image_answer(response, self.id)
            alpha, scaled = fitted_alpha(response.content, image.size, self.id)
        except RmbgError as exc:
            raise meter.annotate(exc)  # billed all the same: the budget keeps it
        estimate = self.estimate()
        meta = {"model": "Photoroom Remove Background", "size": self.size}
        if estimate.watermarked:
            cost, meta["watermark"] = estimate, SANDBOX_NOTE
        else:
            cost = Cost(estimate.usd, "estimated", f"{estimate.note}; Photoroom reports no cost")
        if scaled:
            meta["scaled_from"] = f"{scaled[0]}x{scaled[1]}"
        return Matte(alpha=alpha, cost=cost, seconds=time.perf_counter() - start, meta=meta)

    def _count_sandbox(self, key: str, now: float):
        """Count this sandbox call against its day and month (sandbox_quota); refused with words at the quota."""
        from ...money.ledger import LedgerError
        from . import sandbox_quota

        counts = sandbox_quota.book()
        try:
            full = counts.take(key, now) if counts is not None else None
        except LedgerError as exc:
            sandbox_quota.log.warning("Photoroom sandbox calls are not counted: %s", exc)
            return None
        if full is not None:
            raise sandbox_quota.full_words(self.id, *full)
        return counts

    def _give_back(self, counts, key: str, counted_at: float) -> None:
        """The call given back to the day and month it was counted in (not the next day's, past midnight)."""
        from ...money.ledger import LedgerError

        try:
            counts.give_back(key, counted_at)
        except LedgerError:
            pass  # counted one call too many: the quota errs towards stopping early


def photoroom_reason(response) -> str:
    """Photoroom's own error text: `error.detail` (documented for 402), else `detail` or `message`."""
    body = error_object(response)
    if isinstance(body, str):
        return body
    inner = body.get("error")
    for holder in (inner if isinstance(inner, dict) else {}, body):
        for name in ("detail", "message"):
            if isinstance(holder.get(name), str) and holder[name].strip():
                return holder[name].strip()[:200]
    return excerpt(str(body), limit=120)


@connected
def photoroom(connection: Connection, *, size: str = "full", usd_per_image=None, rate_limiter=None) -> Photoroom:
    """Registry factory for "photoroom"."""
    return Photoroom(connection, size=size, usd_per_image=usd_per_image, rate_limiter=rate_limiter)
