"""Safe loading of untrusted images.

load_image() accepts a path, bytes, a binary file object or a PIL image and
returns an RGB image ready for a provider plus the input's own alpha (if any).
Every failure is an InvalidImageError with a message a person can act on.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidImageError
from ..settings import current
from .formats import STORE_URI, URL, allowed_formats, damaged, embedded_size, register_optional_openers, url_name
from .png import keyed

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP; configurable per call and by RMBG_MAX_PIXELS

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, Image.Image]


@dataclass(frozen=True)
class LoadedImage:
    """An input image, validated.

    rgb: mode "RGB", EXIF orientation applied; the photo's RGB colour profile,
        if it has one, in rgb.info["icc_profile"] (icc_of).
    alpha: the input's own alpha channel (mode "L") or None when it has none
        or it is fully opaque.
    digest: sha256 of the decoded pixels (size, bytes): the cache key, computed when
        first asked for (a 12 MP photo's costs ~0.05 s, paid only where a cache
        or a caller uses it).
    name: file name when loaded from a path, else "".
    """

    rgb: Image.Image
    alpha: Image.Image | None
    name: str = ""

    @functools.cached_property
    def digest(self) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self.rgb.size}".encode())
        digest.update(self.rgb.tobytes())
        if self.alpha is not None:
            digest.update(self.alpha.tobytes())
        return digest.hexdigest()

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


def max_pixels_default() -> int:
    try:
        return current().integer("RMBG_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    except ValueError as exc:
        raise InvalidImageError(f"{exc}.") from None


def _bomb_message(what: str, exc: Exception) -> str:
    """Pillow refused to even open the file (far over its own limit)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({int(found.group(1)) / 1e6:.0f} MP)" if found else ""
    return f"{what} is far too large to decode safely{size}; it may be a decompression bomb."


def _signed(fh: BinaryIO) -> bool:
    """Whether the file starts as a format read here does (TGA has none): if Pillow could not open it, damaged."""
    fh.seek(0)
    head = fh.read(16)
    formats = allowed_formats()
    return any(accept is not None and accept(head) for fmt, (_, accept) in Image.OPEN.items() if fmt in formats)


def _within(what: str, size: tuple[int, int], limit: int) -> None:
    """Refuse an image of `size` over `limit` pixels, or with none."""
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{what} has no pixels ({width}x{height}).")
    if width * height > limit:
        raise InvalidImageError(
            f"{what} is {width}x{height} = {width * height / 1e6:.1f} MP, over the limit of "
            f"{limit / 1e6:.0f} MP. Resize it first, or raise the limit (max_pixels=..., RMBG_MAX_PIXELS)."
        )


def _open(source: ImageInput, limit: int) -> tuple[Image.Image, str]:
    if isinstance(source, Image.Image):
        return source, ""
    name = ""
    fh: BinaryIO
    if isinstance(source, str) and URL.match(source.strip()):
        from .fetch import fetch_image  # behind the SSRF guard; httpx only when a URL is given

        fh = io.BytesIO(fetch_image(source))
        name = url_name(source)
    elif isinstance(source, str) and STORE_URI.match(source):
        from .stores import read_uri  # s3://, gs://, file://: pyarrow's file systems, only when named

        fh = io.BytesIO(read_uri(source))
        name = url_name(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = path.name
        if not path.exists():
            raise InvalidImageError(f"No such file: {path}")
        if path.is_dir():
            raise InvalidImageError(f"{path} is a folder, not an image.")
        if path.stat().st_size == 0:
            raise InvalidImageError(f"{name} is empty (0 bytes).")
        fh = open(path, "rb")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InvalidImageError("The image is empty (0 bytes).")
        fh = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        data = source.read()
        if not data:
            raise InvalidImageError("The image is empty (0 bytes).")
        fh = io.BytesIO(data)
        name = os.path.basename(getattr(source, "name", "") or "")
    else:
        raise InvalidImageError(
            f"Cannot read an image from a {type(source).__name__}; pass a path, bytes or a PIL image."
        )
    what = name or "The file"
    try:
        register_optional_openers(fh.read(64))
        inner = embedded_size(fh)  # an icon: Pillow decodes its image as it opens it, so its size is read first
        if inner is not None:
            _within(name or "The image", inner, limit)
    except InvalidImageError:
        fh.close()
        raise
    fh.seek(0)
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves, below, before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=allowed_formats())
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(_bomb_message(what, exc)) from None
    except UnidentifiedImageError:
        if _signed(fh):  # it starts as one of our formats does, and its header is cut short or damaged
            raise InvalidImageError(damaged(name)) from None
        raise InvalidImageError(
            f"{what} is not an image we can read (PNG, JPEG, WebP, GIF, BMP, TIFF and others are supported)."
        ) from None
    except (OSError, SyntaxError, ValueError):  # a header cut short: "Truncated File Read", a WebP's decoder...
        raise InvalidImageError(damaged(name)) from None
    return img, name


# File name endings taken as images when a folder or glob is expanded
# (the batch) or indexed (evaluation data sets).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".avif")


def is_image_file(path: Path) -> bool:
    """A regular, non-hidden file whose suffix is one of IMAGE_SUFFIXES."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit single-channel images -> mode L, keeping their range
    (16-bit: round(v * 255 / 65535)). Shared by image loading and ground truth."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return Image.fromarray(arr, "L")
    if (
        img.mode.startswith("I;16")
        or arr.dtype == np.uint16
        or (arr.dtype.kind in "iu" and arr.max(initial=0) <= 65535 and arr.min(initial=0) >= 0)
    ):
        arr8 = (arr.astype(np.uint32) * 255 + 32767) // 65535
        return Image.fromarray(arr8.astype(np.uint8), "L")
    if arr.dtype.kind == "f":  # mode F: assume [0, 1] when it fits, else min-max
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if lo >= 0.0 and hi <= 1.0:
            scaled = arr
        else:
            scaled = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(np.nan_to_num(scaled) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    lo, hi = int(arr.min()), int(arr.max())
    scaled = (arr.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(arr.shape)
    return Image.fromarray((scaled * 255 + 0.5).astype(np.uint8), "L")


def _split(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Any PIL mode -> (RGB, alpha or None); a grey or RGB image's colour key (a PNG's tRNS) is its alpha."""
    if "transparency" in img.info and img.mode in ("1", "L", "I", "I;16", "RGB"):  # img: load_image's own copy
        key_alpha = img.convert("RGBA" if img.mode == "RGB" else "LA").getchannel("A")
        del img.info["transparency"]
        rgb, _ = _split(img)
        return rgb, (None if key_alpha.getextrema()[0] == 255 else key_alpha)
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return to_8bit(img).convert("RGB"), None
    if mode in ("CMYK", "L"):
        return _through_profile(img), None
    if mode in ("RGBA", "LA", "RGBa", "La"):
        if mode in ("RGBa", "La"):  # premultiplied (a PIL image given in Python): Pillow takes La only to LA
            img = img.convert("RGBA" if mode == "RGBa" else "LA")
        alpha = img.getchannel("A")
        lo, _ = alpha.getextrema()
        return img.convert("RGB"), (None if lo == 255 else alpha)
    if mode == "RGB":
        return img, None
    return img.convert("RGB"), None


# Colour profiles. A photo's embedded ICC profile says what its numbers mean (a phone's Display P3,
# a camera's Adobe RGB); shown without it, they are read as sRGB and the colours go dull or shift.
# The RGB we load keeps the photo's numbers and its profile (rgb.info["icc_profile"]), and every
# output rendered from it carries the profile (rmbg.image.compose), so a cut-out looks as the photo
# did. A CMYK or grey photo is converted to sRGB through its own profile (_through_profile). A
# profile LittleCMS cannot read is dropped: the numbers are then read as sRGB, as a browser reads a
# photo whose profile is damaged.


RGB_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "P", "PA"})  # numbers an RGB profile describes
# An RGB profile kept with a photo (and written into each of its outputs) is at most this: a display's
# is a few KB, one with lookup tables some hundreds; a larger one is read as none (sRGB), so an upload
# cannot make every output and every kept result carry megabytes the memory budgets do not count.
MAX_PROFILE_BYTES = 1 << 20


def cms_profile(data: bytes | None) -> Any:
    """LittleCMS's reading of ICC profile bytes (None: sRGB); PyCMSError (or OSError) when it cannot."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(data) if data else ImageCms.createProfile("sRGB"))


def _declared(img: Image.Image, space: bytes) -> bytes | None:
    """The profile embedded in `img` when its header says it is of colour space `space`, else None."""
    data = img.info.get("icc_profile")
    if isinstance(data, (bytes, bytearray)) and len(data) >= 128 and bytes(data[16:20]) == space:
        return bytes(data)
    return None


def icc_of(img: Image.Image) -> bytes | None:
    """The ICC profile embedded in `img` when it is a readable RGB profile of RGB numbers, else None."""
    data = _declared(img, b"RGB ") if img.mode in RGB_MODES else None
    if data is None or len(data) > MAX_PROFILE_BYTES:
        return None
    from PIL import ImageCms

    try:
        cms_profile(data)
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return None
    return data


def _through_profile(img: Image.Image) -> Image.Image:
    """A CMYK or grey image in sRGB as its embedded profile says (LittleCMS, the profile's own
    rendering intent), as a browser shows it: a print file's cyan is the ink's, not (0, 255, 255).
    Without a profile of those numbers (or one LittleCMS cannot read), Pillow's plain conversion."""
    data = _declared(img, b"CMYK" if img.mode == "CMYK" else b"GRAY")
    if data is not None:
        from PIL import ImageCms

        try:
            own = cms_profile(data)
            intent = ImageCms.Intent(ImageCms.getDefaultIntent(own))
            converted = ImageCms.profileToProfile(img, own, cms_profile(None), renderingIntent=intent, outputMode="RGB")
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
            converted = None  # a damaged profile is read as none, as a browser reads it
        if converted is not None:
            return converted
    return img.convert("RGB")


def _described(rgb: Image.Image, icc: bytes | None) -> Image.Image:
    """`rgb` with `icc` as its only profile (a copy when that changes an image the caller gave)."""
    if rgb.info.get("icc_profile") == icc:
        return rgb
    rgb = rgb.copy()
    rgb.info.pop("icc_profile", None)
    if icc is not None:
        rgb.info["icc_profile"] = icc
    return rgb


def _upright(img: Image.Image) -> tuple[int, int]:
    """The size after EXIF orientation (read from the header; nothing decoded)."""
    try:
        turned = img.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception:  # a damaged EXIF block: the decode below says so
        turned = False
    return (img.size[1], img.size[0]) if turned else img.size


def load_image(
    source: ImageInput, *, max_pixels: int | None = None, check: Callable[[tuple[int, int]], None] | None = None
) -> LoadedImage:
    """Open, validate and normalise an image.

    - EXIF orientation is applied; animated images use their first frame.
    - Any mode (RGBA, LA, P with transparency, L, I;16, CMYK, ...) becomes RGB,
      with the input's own alpha returned separately.
    - An embedded RGB colour profile stays with the pixels (rgb.info["icc_profile"]);
      any other is dropped (icc_of).
    - Inputs over `max_pixels` (default 40 MP, or RMBG_MAX_PIXELS) are refused
      before their pixels are decoded, so decompression bombs cost nothing.
    - `check(size)`, when given, runs on the size read from the header, also
      before decoding (the output budget of a framing: rmbg.image.framing).
    """
    limit = max_pixels if max_pixels is not None else max_pixels_default()
    img, name = _open(source, limit)
    what = name or "The image"
    _within(what, img.size, limit)
    if check is not None:
        check(_upright(img))
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = keyed(img)  # loaded; a 16-bit RGB PNG's colour key, which Pillow loses, as its alpha
            img = ImageOps.exif_transpose(img) or img
        rgb, alpha = _split(img)
        rgb = _described(rgb, icc_of(img))
        rgb.load()
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(_bomb_message(what, exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImageError(damaged(name)) from None
    return LoadedImage(rgb=rgb, alpha=alpha, name=name)
