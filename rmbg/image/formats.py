"""What every image source shares, below the loader (rmbg.image.io) and the
fetchers (rmbg.image.fetch for http(s), rmbg.image.stores for s3:// and
friends): which strings name a URL or a store, the formats Pillow may open,
HEIC registration on demand, and file names from URLs.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from PIL import Image

from ..errors import InvalidImageError

URL = re.compile(r"^https?://", re.I)
STORE_URI = re.compile(r"^(?!https?://)[a-z][a-z0-9+.-]*://", re.I)  # s3://, gs://, file://: rmbg.image.stores


def url_name(url: str) -> str:
    """A file name from a URL's last path segment ("image" when it has none), safe for an output name."""
    from urllib.parse import unquote, urlsplit

    last = unquote(urlsplit(url.strip()).path.rsplit("/", 1)[-1])
    return re.sub(r"[^A-Za-z0-9._-]+", "_", last).strip("._")[:80] or "image"


# The formats Pillow may open: photos and the usual web/scan formats. Not EPS/PS
# (Pillow hands those to Ghostscript), PDF, or exotic plugins nobody uploads.
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF", "ICO", "TGA", "PPM")


def allowed_formats() -> list[str]:
    """FORMATS that this Pillow can open now (HEIF once pillow-heif is registered)."""
    Image.init()
    return [name for name in FORMATS if name in Image.OPEN]


ICO_MAGIC = b"\0\0\1\0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def damaged(name: str = "") -> str:
    """The one sentence for a file of any format cut short or damaged, in its header or its pixels
    (never Pillow's words, which differ by format: "Truncated File Read", "could not create decoder object")."""
    return f"{name or 'The image'} is damaged or truncated and could not be decoded: send the whole file again."


def embedded_size(fh: BinaryIO) -> tuple[int, int] | None:
    """The largest image an ICO holds, from each embedded image's own header (a PNG's IHDR, a
    bitmap's header), nothing decoded: the icon's directory says 256x256 at most whatever it
    holds, and Pillow decodes the image as it opens the file, so the pixel limit is checked on
    this before Image.open. None for every other format of FORMATS: their header's size is the
    size that decodes (a GIF frame larger than its screen grows the size Pillow reports at open).
    A damaged icon is refused (an InvalidImageError). `fh` is read from its start, left there."""
    fh.seek(0)
    if fh.read(4) != ICO_MAGIC:
        fh.seek(0)
        return None
    from PIL import BmpImagePlugin, IcoImagePlugin, PngImagePlugin

    sizes = []
    try:
        fh.seek(0)
        for entry in IcoImagePlugin.IcoFile(fh).entry:  # the directory, as Pillow reads it
            fh.seek(entry.offset)
            png = fh.read(8) == PNG_MAGIC
            fh.seek(entry.offset)
            width, height = (PngImagePlugin.PngImageFile if png else BmpImagePlugin.DibImageFile)(fh).size
            sizes.append((width, height if png else height // 2))  # a bitmap's height counts its mask too
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise InvalidImageError(damaged("The icon")) from None
    finally:
        fh.seek(0)
    return max(sizes, key=lambda size: size[0] * size[1], default=None)


HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1")


def register_optional_openers(head: bytes) -> None:
    """Teach Pillow HEIC/HEIF (pillow-heif) when a file's first bytes say it
    is one, so `import rmbg` never imports it. AVIF is Pillow's own (Pillow
    >= 11.3). Opening still reads only the header: the pixel limit is checked
    before anything decodes."""
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            raise InvalidImageError("This is a HEIC/HEIF image: pip install pillow-heif to read it.") from None
        register_heif_opener()
