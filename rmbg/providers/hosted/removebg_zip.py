"""remove.bg's `format=zip` answer, read as untrusted input.

remove.bg documents `format=zip` as "ZIP format, contains color image and
alpha matte image, supports transparency (recommended)" (its OpenAPI
document, https://www.remove.bg/api/swagger.yaml, `format`), and as the
format that keeps the original resolution: a PNG result is capped at 10
megapixels, a ZIP or JPG one is not (`size`: "full" up to 25 MP, "50MP" up to
50 MP; the current reference, mirrored at
https://registry.lap.sh/v1/apis/remove-bg.lap). remove.bg's API page names
the two files inside: `color.jpg` (the colour image) and `alpha.png` (the
matte). The matte is read from `alpha.png`; an archive without that name is
read by content (its one PNG), so a renamed member still works. The colour
JPG is not used: rmbg renders every result from the matte and its own copy
of the input (rmbg.image).

Every limit is checked before anything is decompressed or decoded: the
number of members, each member's declared size, then the bytes actually
inflated (read with a cap, so a header that lies cannot pass more), then the
PNG's dimensions from its header (at most the input's, the same shape).
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from ...errors import ProviderResponseError
from .payload import excerpt, same_shape

if TYPE_CHECKING:
    import httpx
    from PIL import Image

MAX_MEMBERS = 4  # the documented two (colour + alpha), with room for a readme or a folder entry
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MATTE_NAME = "alpha.png"  # remove.bg's API page: the archive holds color.jpg and alpha.png


def check_zip_answer(response: httpx.Response, provider_id: str) -> None:
    """A 2xx answer to `format=zip` must be a ZIP file (`application/zip`, as
    remove.bg documents it, or untyped bytes, left to the reader): a JSON or
    HTML body served with 200 is refused with its excerpt."""
    mime = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mime and mime not in ("application/zip", "application/x-zip-compressed", "application/octet-stream"):
        raise ProviderResponseError(
            provider_id,
            f"answered with {mime[:60]} where a ZIP file was expected.",
            status=response.status_code,
            excerpt=excerpt(response.text[:2000]),
        )


def alpha_from_zip(data: bytes, size: tuple[int, int], provider_id: str) -> tuple[Image.Image, tuple[int, int] | None]:
    """The matte (mode L, `size`) from a remove.bg ZIP answer, and the size it
    was scaled up from (None at full resolution). ProviderResponseError, in
    the user's words, for an archive that is broken, too large or has no matte."""
    width, height = size
    # A grayscale PNG of the input's size: one byte a pixel, one filter byte a row, and zlib's worst case
    # (5 bytes per 16 KiB stored block) with room for the chunks around it.
    limit = width * height + height + (width * height) // 16384 * 5 + 2**20
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise ProviderResponseError(
            provider_id, f"returned a ZIP file that cannot be read ({len(data)} bytes)."
        ) from None
    if len(members) > MAX_MEMBERS:
        raise ProviderResponseError(
            provider_id, f"returned a ZIP file of {len(members)} files where two (colour and matte) were expected."
        )
    matte = _matte_member(archive, members, limit, provider_id)
    if matte is None:
        raise ProviderResponseError(provider_id, "returned a ZIP file without its alpha matte (no PNG inside).")
    return _alpha(matte, size, provider_id)


def _matte_member(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limit: int, provider_id: str
) -> bytes | None:
    """`alpha.png` (remove.bg's name for the matte), else the one PNG among `members`, inflated at most
    `limit` bytes; None if there is none."""
    named = [m for m in members if not m.is_dir() and m.filename.rsplit("/", 1)[-1].lower() == MATTE_NAME]
    found: bytes | None = None
    for member in named[:1] or members:
        if member.is_dir():
            continue
        if member.file_size > limit:
            raise ProviderResponseError(
                provider_id,
                f"returned a ZIP file whose {_name(member)} would inflate to {member.file_size / 1e6:.0f} MB, "
                f"over the {limit / 1e6:.0f} MB a matte of this image can take; refused before decompressing.",
            )
        try:
            with archive.open(member) as stream:
                head = stream.read(len(PNG_SIGNATURE))
                if head != PNG_SIGNATURE:
                    continue  # the colour JPG (or anything else): not read further
                body = head + stream.read(limit + 1 - len(head))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError, EOFError):
            raise ProviderResponseError(
                provider_id, f"returned a ZIP file whose {_name(member)} cannot be read."
            ) from None
        if len(body) > limit:
            raise ProviderResponseError(
                provider_id,
                f"returned a ZIP file whose {_name(member)} inflates past the {limit / 1e6:.0f} MB a matte of this "
                "image can take (a decompression bomb?); refused.",
            )
        if found is not None:
            raise ProviderResponseError(provider_id, "returned a ZIP file with two PNG mattes; which one is meant?")
        found = body
    return found


def _alpha(png: bytes, size: tuple[int, int], provider_id: str) -> tuple[Image.Image, tuple[int, int] | None]:
    """The matte PNG (grayscale: the alpha itself) as mode L at `size`, its
    dimensions checked from its header before its pixels are decoded: the
    input's size, or a scaled-down copy of the same shape (scaled up here,
    as payload.fitted_alpha does for the other answers)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as img:
            got = img.size
            if got != size and not same_shape(got, size):
                raise ProviderResponseError(
                    provider_id, f"returned a {got[0]}x{got[1]} matte for a {size[0]}x{size[1]} input."
                )
            img.load()
            alpha = img.getchannel("A") if "A" in img.getbands() else img.convert("L")
    except ProviderResponseError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ProviderResponseError(
            provider_id, f"returned a ZIP file whose matte is not an image ({len(png)} bytes)."
        ) from None
    if got == size:
        return alpha, None
    return alpha.resize(size, Image.Resampling.BICUBIC), got


def _name(member: zipfile.ZipInfo) -> str:
    return repr(member.filename[:60])
