"""What every image source shares, below the loader (rmbg.image.io) and the
fetchers (rmbg.image.fetch for http(s), rmbg.image.stores for s3:// and
friends): which strings name a URL or a store, the formats Pillow may open,
HEIC registration on demand, and file names from URLs.
"""

from __future__ import annotations

import re

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
