"""What the APIs that take a file and answer with image bytes share
(remove.bg, Photoroom): the file we upload, and the check of the answer."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ...errors import InvalidImageError, InvalidRequestError, ProviderResponseError
from .payload import excerpt

if TYPE_CHECKING:
    from decimal import Decimal

    import httpx
    from PIL import Image


def upload_file(image: Image.Image, max_bytes: int, vendor: str) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of an RGB image to upload: a PNG
    (lossless), or a JPEG at quality 95 when the PNG is over the vendor's
    `max_bytes`; refused before anything is sent when both are."""
    png = io.BytesIO()
    image.save(png, format="PNG")
    if png.tell() <= max_bytes:
        return "image.png", png.getvalue(), "image/png"
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, format="JPEG", quality=95)
    if jpeg.tell() <= max_bytes:
        return "image.jpg", jpeg.getvalue(), "image/jpeg"
    raise InvalidImageError(  # megabytes of 10^6 bytes, as the vendors write their limits
        f"The image is too large for {vendor}: {jpeg.tell() / 1e6:.1f} MB even as a JPEG, over its "
        f"{max_bytes / 1e6:.4g} MB limit. Use a smaller image."
    )


def check_image_answer(response: httpx.Response, provider_id: str) -> None:
    """A 2xx answer must carry an image (or untyped bytes, left to the
    decoder): a JSON or HTML body served with 200 is refused with its excerpt."""
    mime = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mime and not mime.startswith("image/") and mime != "application/octet-stream":
        raise ProviderResponseError(
            provider_id,
            f"answered with {mime[:60]} where an image was expected.",
            status=response.status_code,
            excerpt=excerpt(response.text[:2000]),
        )


def configured_price(value: Decimal | str | None, env_var: str, provider_id: str, what: str) -> Decimal:
    """A configurable USD price: the argument, else `env_var` (declared in
    rmbg.settings), else the price declared for `provider_id` (rmbg.registry).
    A value that is not a non-negative number -> InvalidRequestError naming
    `what` and, for the variable, its name."""
    from decimal import Decimal, InvalidOperation

    from ...money.pricing import price_table
    from ...settings import current

    if value is None:
        try:
            return current().decimal(env_var, price_table()[provider_id])
        except ValueError as exc:
            raise InvalidRequestError(f"The price of {what}: {exc}.") from None
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        price = Decimal(-1)
    if not price.is_finite() or price < 0:
        raise InvalidRequestError(f"The price of {what} must be a number of USD, got {str(value)[:40]!r}.")
    return price
