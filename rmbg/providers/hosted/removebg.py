"""remove.bg: its background removal API, the commercial reference.

Protocol (remove.bg's API reference, https://www.remove.bg/api, and its OpenAPI
document, version 1.0), one request:
  POST {base}/v1.0/removebg, header `X-Api-Key: <key>`, a multipart form with
  the image as `image_file` and `size`, `type`, `format=png`, `channels=rgba`;
  answer 200 with the result's bytes (a PNG whose alpha channel is the matte)
  and the headers `X-Credits-Charged`, `X-Width`, `X-Height`, `X-Type` and
  `X-RateLimit-Limit` / `-Remaining` / `-Reset` (epoch seconds);
  or an error `{"errors": [{"title", "code", "detail"}]}`: 400 (the image or a
  parameter), 402 (insufficient credits), 403 (the key), 429 (rate limit).

Sizes: "preview" (up to 0.25 MP, 0.25 credit), "full" (up to 25 MP, 10 MP as a
PNG; 1 credit), "auto" (the highest resolution the image and the credits
allow: up to 1 credit). A result smaller than the input (preview) is scaled up
to the input's size (payload.fitted_alpha); the meta says so. The default is
"full": the matte at the input's resolution, at a known price.

Above 10 MP a PNG answer would be capped at 10 MP, so "full" and "auto" ask
for `format=zip` instead (a colour JPG and the alpha matte as a PNG, at the
original resolution; rmbg.providers.hosted.removebg_zip reads it), and "full"
above 25 MP asks for size "50MP" (1 credit, up to 50 MP with ZIP: remove.bg's
current reference, mirrored at https://registry.lap.sh/v1/apis/remove-bg.lap).
An input over 50 MP, the most remove.bg takes (its documented 400
`resolution_too_high`), is refused before anything is sent, as is a file over
its upload limit, which it writes as 12 MB ("File exceeds limit of 12MB",
its OpenAPI document's `file_too_large` example): 12,000,000 bytes.

Cost: the credits remove.bg reports in `X-Credits-Charged` times the price of
one credit (`usd_per_credit=`, else RMBG_REMOVEBG_USD_PER_CREDIT, else the
declared price in rmbg.registry). remove.bg sells credits at several prices
(plans, pay as you go); the USD figure is therefore labelled "estimated" even
though the credits are reported.

`bg_color` and `crop` are not sent: rmbg renders backgrounds and framing
itself from the matte (rmbg.image), so every provider's result is composed
the same way. `image_url` is not used: rmbg hands providers decoded images,
and uploading them keeps a private image private.

Charge (rmbg.money.charging): a refused connection is NOT_SENT; an answer 4xx is
REFUSED (remove.bg: errors charge no credits; 429 alone is sent again); a
dropped connection, a read timeout or a 5xx is UNKNOWN (kept, never re-sent);
a 2xx is ACCEPTED, billed X-Credits-Charged credits even when its body turns
out unusable.

Rate limit: 500 images a minute, weighted by the input's megapixels (its
reference: 1 MP counts one, 10 MP ten, 25 MP twenty-five, so 20 a minute).
Kept on our side by one limiter per key in the process (ratelimit.py),
each call weighing its megapixels rounded up: a batch waits its turn rather
than earning 429s (a 429 all the same is not billed, and sent again).

Not documented, and what we chose:
- Whether 5xx answers are billed: remove.bg says errors charge no credits, but
  a 5xx may come from a proxy after the image was processed. The paid POST is
  re-sent only when it certainly was not processed (no connection, 408, 429;
  rmbg.providers.hosted.http), never after a 5xx.
- Whether a 429 carries `Retry-After`: honoured when present; otherwise the
  rate-limit error names the reset time from `X-RateLimit-Reset`.
- A 200 without `X-Credits-Charged`: costed at the size's price (estimated).

Configuration: key from `api_key=` or REMOVEBG_API_KEY; host from `base_url=`
or RMBG_REMOVEBG_URL (default https://api.remove.bg).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from ...errors import (
    InvalidImageError,
    InvalidRequestError,
    ProviderAuthError,
    ProviderHTTPError,
    ProviderRateLimitError,
    RmbgError,
)
from ...money import charging
from ...money.pricing import checked_cost, price_table
from ...types import Cost, Matte, format_usd
from ...vendors import vendor
from .base import Connection, HostedProvider, connected
from .payload import error_object, excerpt, fitted_alpha, scrub
from .ratelimit import RateLimiter, shared_limiter
from .removebg_zip import alpha_from_zip, check_zip_answer
from .retry import Deadline
from .upload import check_image_answer, configured_price, upload_file

VENDOR = vendor("removebg")  # the vendor its key is paid to (rmbg.vendors)
KEY_ENV = VENDOR.key_env
URL_ENV = "RMBG_REMOVEBG_URL"
PRICE_ENV = "RMBG_REMOVEBG_USD_PER_CREDIT"
DEFAULT_URL = "https://api.remove.bg"
PATH = "/v1.0/removebg"
# The most a call of each size can charge, in credits (remove.bg's API docs).
SIZE_CREDITS = {"preview": Decimal("0.25"), "full": Decimal(1), "auto": Decimal(1)}
TYPES = ("auto", "person", "product", "car")
MAX_UPLOAD_BYTES = 12_000_000  # "up to 12 MB" as remove.bg writes it (its OpenAPI document): decimal megabytes
MAX_RESULT_BYTES = 128 * 2**20
PNG_MAX_PIXELS = 10_000_000  # "up to 10 megapixels ... with PNG" (size, remove.bg's OpenAPI document)
FULL_MAX_PIXELS = 25_000_000  # "full": "up to 25 megapixels ... with formats ZIP or JPG"
MAX_PIXELS = 50_000_000  # "maximum supported input resolution is 50 megapixels" (its resolution_too_high example)
RATE_PER_MINUTE = 500  # "up to 500 images per minute", counted in megapixels (module docstring)


class RemoveBg(HostedProvider):
    """remove.bg's background removal. Cost: reported credits x USD per credit (estimated)."""

    id = "remove-bg"
    label = "remove.bg"
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_URL

    def __init__(
        self,
        connection: Connection | None = None,
        /,
        *,
        size: str = "full",
        type: str = "auto",
        usd_per_credit: Decimal | str | None = None,
        rate_limiter: RateLimiter | None = None,
        **settings,
    ):
        """size: "full", "preview" or "auto". type: "auto", "person", "product"
        or "car" (what the foreground is). usd_per_credit: the price of one
        credit. rate_limiter: instead of the key's shared one (a test's clock).
        connection, or its fields by name: see HostedClient."""
        if size not in SIZE_CREDITS:
            raise InvalidRequestError(f"remove.bg size must be one of {', '.join(SIZE_CREDITS)}, got {size!r}.")
        if type not in TYPES:
            raise InvalidRequestError(f"remove.bg type must be one of {', '.join(TYPES)}, got {type!r}.")
        super().__init__(connection, **settings)
        self.size, self.type = size, type
        self._limiter = rate_limiter
        self.usd_per_credit = configured_price(usd_per_credit, PRICE_ENV, self.id, "a remove.bg credit")

    def options(self) -> Mapping[str, object]:
        return {"size": self.size, "type": self.type}

    def estimate(self) -> Cost:
        """The most this call can cost: the size's credits x USD per credit."""
        credits = SIZE_CREDITS[self.size]
        if credits == 1 and self.usd_per_credit == price_table()[self.id]:
            return super().estimate()
        return Cost(
            credits * self.usd_per_credit,
            "estimated",
            f"price table: {credits:g} credit x ${format_usd(self.usd_per_credit)} per credit",
        )

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via remove.bg."""
        key = self._require_key()
        fields = self.form(image.size)
        name, data, mime = upload_file(image, MAX_UPLOAD_BYTES, "remove.bg")
        endpoint = self._endpoint(removebg_reason, self._classify)
        deadline = Deadline(self.retry)
        start = time.perf_counter()
        meter = charging.current()
        limiter = self._limiter or shared_limiter(f"{self.id} at {self.base_url}", key, RATE_PER_MINUTE)
        weight = megapixel_weight(*image.size)
        limiter.acquire(self.id, deadline.remaining(), "remove.bg's rate limit (500 images a minute at 1 MP)", weight)
        response = self._send(
            endpoint,
            deadline,
            "POST",
            f"{self.base_url}{PATH}",
            data=fields,
            files={"image_file": (name, data, mime)},
            headers={"X-Api-Key": key, "Accept": "image/*"},
            max_bytes=MAX_RESULT_BYTES,
            paid=True,
        )
        meter.accepted(self.id)  # a 2xx: remove.bg processed the image and charged its credits
        credits = _credits(response.headers.get("x-credits-charged"))
        cost = self._cost(credits)
        try:
            if fields["format"] == "zip":
                check_zip_answer(response, self.id)
                alpha, scaled = alpha_from_zip(response.content, image.size, self.id)
            else:
                check_image_answer(response, self.id)
                alpha, scaled = fitted_alpha(response.content, image.size, self.id)
        except RmbgError as exc:
            raise meter.annotate(exc)  # billed all the same: the budget keeps it
        meta = {
            "model": "remove.bg",
            "size": fields["size"],
            "format": fields["format"],
            "credits_charged": "unknown" if credits is None else f"{credits:g}",
        }
        if scaled:
            meta["scaled_from"] = f"{scaled[0]}x{scaled[1]}"
        if response.headers.get("x-type"):
            meta["foreground_type"] = response.headers["x-type"][:40]
        return Matte(alpha=alpha, cost=cost, seconds=time.perf_counter() - start, meta=meta)

    def form(self, size: tuple[int, int]) -> dict[str, str]:
        """The form fields for an input of `size`: a PNG up to 10 MP; above, a
        ZIP (full resolution), with size "50MP" for "full" above 25 MP; over
        50 MP refused here, before anything is sent or billed."""
        pixels = size[0] * size[1]
        if pixels > MAX_PIXELS:
            raise InvalidImageError(
                f"remove.bg takes images of at most 50 megapixels; this one is {size[0]}x{size[1]} "
                f"({pixels / 1e6:.1f} MP). Use a smaller image or another provider."
            )
        big = self.size != "preview" and pixels > PNG_MAX_PIXELS
        size_field = "50MP" if self.size == "full" and pixels > FULL_MAX_PIXELS else self.size
        return {"size": size_field, "type": self.type, "format": "zip" if big else "png", "channels": "rgba"}

    def _cost(self, credits: Decimal | None) -> Cost:
        per = f"${format_usd(self.usd_per_credit)} per credit (estimated)"
        if credits is None:
            fallback = self.estimate()
            return Cost(fallback.usd, "estimated", f"no X-Credits-Charged header; {fallback.note}")
        reported = Cost(
            credits * self.usd_per_credit, "estimated", f"{credits:g} credit charged (X-Credits-Charged) x {per}"
        )
        return checked_cost(reported, self.id, self.estimate().usd)

    def _classify(self, response) -> ProviderHTTPError | None:
        """remove.bg's 403 is its answer to a missing or wrong key; a 429
        names when the limit resets (X-RateLimit-Reset, epoch seconds)."""
        status = response.status_code
        if status not in (403, 429):
            return None
        secrets = self._secrets()
        body = excerpt(response.text, secrets)
        if status == 403:
            reason = scrub(removebg_reason(response), secrets) or "authentication failed"
            return ProviderAuthError(
                self.id,
                f"the API key was rejected (HTTP 403: {reason}). Check {self._key_hint()}.",
                status=403,
                excerpt=body,
            )
        reset = response.headers.get("x-ratelimit-reset", "")
        wait = f" The limit resets in {max(0, int(reset) - int(time.time()))} s." if reset.isdigit() else ""
        reason = scrub(removebg_reason(response), secrets) or "rate limit exceeded"
        return ProviderRateLimitError(
            self.id, f"rate limited (HTTP 429: {reason}).{wait} Try again later.", status=429, excerpt=body
        )


def removebg_reason(response) -> str:
    """remove.bg's own error text: the first item of `errors` (title, detail, code)."""
    body = error_object(response)
    if isinstance(body, str):
        return body
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
    if first is None:
        return excerpt(str(body), limit=120)
    words = [str(first.get(k) or "").strip()[:160] for k in ("title", "detail")]
    text = ": ".join(w for w in dict.fromkeys(words) if w)
    code = str(first.get("code") or "").strip()[:60]
    return f"{text} ({code})" if code else text


def megapixel_weight(width: int, height: int) -> int:
    """How much of remove.bg's rate limit an image uses: its megapixels rounded up, at least one."""
    return max(1, -(-width * height // 1_000_000))


def _credits(value: str | None) -> Decimal | None:
    """X-Credits-Charged as a number of credits; absent or unreadable -> None."""
    if value is None:
        return None
    try:
        credits = Decimal(value.strip())
    except (InvalidOperation, ValueError):
        return None
    return credits if credits.is_finite() and credits >= 0 else None


@connected
def remove_bg(
    connection: Connection, *, size: str = "full", type: str = "auto", usd_per_credit=None, rate_limiter=None
) -> RemoveBg:
    """Registry factory for "remove-bg"."""
    return RemoveBg(connection, size=size, type=type, usd_per_credit=usd_per_credit, rate_limiter=rate_limiter)
