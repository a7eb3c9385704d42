"""What crosses the wire besides HTTP itself: keys (read, checked, scrubbed
from every message), short excerpts of response bodies (HTML reduced to its
text), images as data URIs, and the alpha channel of a returned cut-out."""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ...errors import (
    InvalidImageError,
    ProviderAuthError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from ...vendors import KEY_VARS  # every vendor's key variable(s)

if TYPE_CHECKING:
    from PIL import Image

EXCERPT_CHARS = 300
T = TypeVar("T")


# --- secrets -----------------------------------------------------------------


def read_key(explicit: str | None, env_var: str) -> str | None:
    """The API key: the explicit argument first, then the environment;
    surrounding whitespace (a pasted newline) removed; empty -> None."""
    value = explicit if explicit else os.environ.get(env_var, "")
    return value.strip() or None


def check_key(provider_id: str, key: str, env_var: str) -> None:
    """Refuse a key that cannot go into an HTTP header, without echoing it."""
    if not key.isascii() or not key.isprintable():
        raise ProviderAuthError(provider_id, f"the API key contains characters that cannot be sent. Check {env_var}.")


_AUTH_RE = re.compile(r"(?i)\b(key|bearer)\s+[A-Za-z0-9._:\-+/=]{6,}")
FRAGMENT = 8  # any run of this many characters of a key is redacted
_PART = 6  # each side of "id:secret" at least this long is redacted on its own too
_KNOWN: dict[str, None] = {}  # keys this process has used (ordered, bounded): for log lines
_KNOWN_MAX = 256


def remember(secret: str | None) -> None:
    """Note a key this process uses, so log lines are scrubbed of it too (SecretFilter)."""
    if secret:
        _KNOWN[secret] = None
        while len(_KNOWN) > _KNOWN_MAX:
            del _KNOWN[next(iter(_KNOWN))]


def known_secrets() -> tuple[str, ...]:
    """The configured keys (environment) and those remember()ed."""
    configured = tuple(v.strip() for v in (os.environ.get(n, "") for n in KEY_VARS) if v.strip())
    return configured + tuple(_KNOWN)


def scrub(text: str, secrets: Iterable[str] = (), *, header_values: bool = True) -> str:
    """`text` with every part of every secret replaced by '***': the whole
    key, each side of an "id:secret" key, and any run of FRAGMENT or more of
    its characters (a provider may quote only the secret half, or a cut
    piece); also, with `header_values`, anything shaped like an auth header
    value ("Key ...", "Bearer ...": for provider bodies, not our own sentences)."""
    keys = [s for s in secrets if s]
    parts = sorted({p for k in keys for p in (k, *k.split(":")) if len(p) >= _PART or p == k}, key=len, reverse=True)
    for part in parts:
        text = text.replace(part, "***")
    grams = {k[i : i + FRAGMENT] for k in keys for i in range(len(k) - FRAGMENT + 1)}
    if grams:
        text = _cut_fragments(text, grams)
    return _AUTH_RE.sub(lambda m: f"{m.group(1)} ***", text) if header_values else text


def _cut_fragments(text: str, grams: set[str]) -> str:
    """Every character covered by a FRAGMENT-long window found in `grams`, as '***' per run."""
    covered = bytearray(len(text))
    for i in range(len(text) - FRAGMENT + 1):
        if text[i : i + FRAGMENT] in grams:
            covered[i : i + FRAGMENT] = b"\1" * FRAGMENT
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append("***")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class SecretFilter(logging.Filter):
    """A logging filter that scrubs known_secrets() from each record's
    message and traceback text (attach it to the handlers: app.py does)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if secrets:
            record.msg = scrub(record.getMessage(), secrets)
            record.args = None
            if record.exc_info:
                formatted = logging.Formatter().formatException(record.exc_info)
                record.exc_info, record.exc_text = None, scrub(formatted, secrets)
        return True


_HTML_RE = re.compile(r"<\s*(!doctype|html|head|body|title|h1|center)\b", re.I)
_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.I | re.S)


def html_text(text: str) -> str:
    """The visible text of an HTML error page (a proxy's 502), else `text` as is."""
    if not _HTML_RE.search(text):
        return text
    import html

    return html.unescape(_TAG_RE.sub(" ", text))


def excerpt(text: str, secrets: Iterable[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """A short, key-free, single-line excerpt of a response body (HTML reduced to its text): scrubbed of
    `secrets` and of every key this process uses (known_secrets), so a caller that forgot the call's own
    cannot quote it (a vendor's body echoing the key reaches ProviderHTTPError.excerpt)."""
    flat = " ".join(scrub(html_text(text), (*secrets, *known_secrets())).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_object(response) -> dict | str:
    """A vendor's error answer as the JSON object its `*_reason` reads its own text from; when the body is
    not one (not JSON, or JSON but not an object), a short excerpt of it: the reason itself then."""
    try:
        body = response.json()
    except ValueError:
        return excerpt(response.text, limit=120)
    return body if isinstance(body, dict) else excerpt(str(body), limit=120)


# --- data URIs and images ------------------------------------------------------


def png_data_uri(image: Image.Image) -> str:
    """The image as `data:image/png;base64,...` (lossless; nothing to host)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def decode_base64(text: str, provider_id: str) -> bytes:
    """Bytes of a bare base64 string; malformed -> ProviderResponseError."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderResponseError(provider_id, "returned image data that is not valid base64.") from None


def decode_data_uri(uri: str, provider_id: str) -> bytes:
    """Bytes of a `data:<mime>;base64,<payload>` URI."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise ProviderResponseError(provider_id, "returned a data URI that is not base64-encoded.")
    return decode_base64(payload, provider_id)


RESULT_ATTEMPTS = 3  # a result file is fetched at most this often (a CDN's 5xx, a dropped connection)


def fetch_retrying(
    fetch: Callable[[float], T], provider_id: str, seconds_left: Callable[[], float], amount: Callable[[int, int], str]
) -> T:
    """`fetch(deadline_s)` of a result file (rmbg.image.fetch's guard), asked again while it fails in a way
    that may pass (a CDN's 5xx, a dropped connection) up to RESULT_ATTEMPTS times within the deadline; every
    refusal a ProviderHTTPError saying why. amount(size, limit): the words for a result over the byte cap."""
    from ...image.fetch import FetchFailed, TooLarge, URLRefused

    attempt = 0
    while True:
        attempt += 1
        try:
            return fetch(max(0.001, seconds_left()))
        except URLRefused as exc:
            raise ProviderResponseError(provider_id, f"pointed to a result this server will not fetch: {exc}") from None
        except TooLarge as exc:
            raise ProviderResponseError(provider_id, f"sent {amount(exc.size, exc.limit)} limit; refused.") from None
        except FetchFailed as exc:
            if exc.retryable and attempt < RESULT_ATTEMPTS and seconds_left() > 0:
                continue
            kind = ProviderTimeoutError if exc.timed_out else ProviderUnavailableError
            raise kind(provider_id, f"the result could not be downloaded: {exc}") from None
        except InvalidImageError as exc:  # the guard's other refusals: a host not found, a bad redirect
            raise ProviderResponseError(provider_id, f"the result could not be downloaded: {exc}") from None


def download_result(
    url: str,
    provider_id: str,
    *,
    base_url: str,
    max_bytes: int,
    seconds_left: Callable[[], float],
    size: tuple[int, int] | None = None,
) -> bytes:
    """A result file a provider points to (fal's result URL, Runware's imageURL),
    fetched as a visitor's URL is (rmbg.image.fetch: http(s) only, every
    address checked, redirects checked, one overall deadline), streamed with a
    byte cap, its type and pixel size read from the header before anything
    decodes it: at most the pixel limit (RMBG_MAX_PIXELS), and exactly `size`
    when given. The provider's own host (from `base_url`, the operator's
    configuration) is trusted as configured; any other host must be public.
    Every refusal is a ProviderHTTPError saying why; no key is ever sent."""
    from urllib.parse import urlsplit

    from ...image.fetch import fetch_bytes

    trusted = {urlsplit(base_url).hostname or ""} - {""}

    def fetch(deadline_s: float) -> tuple[bytes, str]:
        data, content_type, _ = fetch_bytes(url, allow_hosts=trusted, max_bytes=max_bytes, deadline_s=deadline_s)
        return data, content_type

    data, content_type = fetch_retrying(
        fetch,
        provider_id,
        seconds_left,
        lambda got, cap: f"{got / 2**20:.1f} MiB or more, over the {cap / 2**20:g} MiB",
    )
    check_result(data, content_type, provider_id, size)
    return data


def check_result(data: bytes, content_type: str, provider_id: str, size: tuple[int, int] | None) -> None:
    """An image of an allowed size, by its type and header: nothing is decoded here."""
    from PIL import Image, UnidentifiedImageError

    from ...image.io import max_pixels_default

    mime = content_type.partition(";")[0].strip().lower()
    if mime and not mime.startswith("image/") and mime != "application/octet-stream":
        raise ProviderResponseError(provider_id, f"returned a {mime[:60]} file where an image was expected.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, in our words
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        raise ProviderResponseError(
            provider_id, "returned an image far over the pixel limit; refused before decoding."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ProviderResponseError(
            provider_id, f"returned a result that is not an image ({len(data)} bytes)."
        ) from None
    if size is not None and (width, height) != tuple(size):
        raise ProviderResponseError(provider_id, f"returned a {width}x{height} image for a {size[0]}x{size[1]} input.")
    limit = max_pixels_default()
    if width * height > limit:
        raise ProviderResponseError(
            provider_id,
            f"returned a {width}x{height} image ({width * height / 1e6:.0f} MP), "
            f"over the {limit / 1e6:.0f} MP limit; refused before decoding.",
        )


def alpha_from_image_bytes(data: bytes, size: tuple[int, int], provider_id: str) -> Image.Image:
    """The alpha channel (mode L) of a returned cut-out, checked against the
    input size. Not an image, no transparency or another size ->
    ProviderResponseError."""
    from PIL import Image, UnidentifiedImageError

    check_result(data, "", provider_id, size)  # the size from the header, before decoding
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ProviderResponseError(
            provider_id, f"returned a result that is not an image ({len(data)} bytes)."
        ) from None
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode != "RGBA":
        raise ProviderResponseError(
            provider_id, f"returned a {img.format or 'non-PNG'} image without transparency (mode {img.mode})."
        )
    return img.getchannel("A")


def fitted_alpha(data: bytes, size: tuple[int, int], provider_id: str) -> tuple[Image.Image, tuple[int, int] | None]:
    """The alpha channel of a returned cut-out at the input's `size`, and the
    size it was scaled up from (None when it came at the input's size).

    For the APIs that return a smaller result by design (remove.bg's and
    Photoroom's "preview" sizes, remove.bg's PNG cap on large inputs): a
    result of the same aspect ratio (within a pixel of rounding) that is not
    larger than the input is scaled up with a bicubic filter; any other size
    is refused as alpha_from_image_bytes refuses it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            got = probe.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        got = size  # let the full check name the problem
    if got == size or not same_shape(got, size):
        return alpha_from_image_bytes(data, size, provider_id), None
    alpha = alpha_from_image_bytes(data, got, provider_id)
    return alpha.resize(size, Image.Resampling.BICUBIC), got


def same_shape(got: tuple[int, int], want: tuple[int, int]) -> bool:
    """A scaled-down copy of `want`: not larger, and each side within one
    pixel of the aspect ratio the other side implies."""
    (gw, gh), (w, h) = got, want
    if not (0 < gw <= w and 0 < gh <= h):
        return False
    return abs(gw - w * gh / h) <= 1 and abs(gh - h * gw / w) <= 1
