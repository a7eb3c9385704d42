"""A 16-bit RGB PNG's colour key (its tRNS chunk) as its alpha, compared at 16 bits.

Pillow reads a 16-bit RGB PNG as 8-bit RGB (each sample's high byte) but keeps
the key's three 16-bit values, so its own conversion compares 8-bit pixels with
a 16-bit key: the key never matches and the transparency is lost (or, for a key
under 256, it matches pixels it should not). Here the file is decoded a second
time keeping each sample's low byte: Pillow undoes the PNG's filters on bytes
before it unpacks samples, and its little-endian unpacker, given big-endian
samples, keeps their second byte. A pixel is transparent where each of its
three 16-bit samples, high byte and low byte, equals the key's.

The other colour keys (8-bit grey and RGB, 1-bit, 16-bit grey) Pillow keeps
exact: rmbg.image.io reads those.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile


def keyed(img: Image.Image) -> Image.Image:
    """`img` loaded, or, for a 16-bit RGB PNG with a colour key, its pixels as RGBA with the key's pixels
    transparent and its info (EXIF, colour profile) kept, the key left out."""
    key = img.info.get("transparency")
    if not (isinstance(img, ImageFile.ImageFile) and img.fp is not None and isinstance(key, tuple)) or (
        img.format != "PNG" or img.mode != "RGB" or [tile[3] for tile in img.tile] != ["RGB;16B"]
    ):
        img.load()
        return img
    with Image.open(img.fp, formats=["PNG"]) as second:  # the same file, decoded again: its samples' low bytes
        second.tile = [tile._replace(args="RGB;16L") for tile in second.tile]
        low = np.asarray(second)
    img.load()
    high = np.asarray(img)
    clear = np.ones(high.shape[:2], bool)
    for channel, value in enumerate(key):
        clear &= (high[..., channel] == value >> 8) & (low[..., channel] == value & 0xFF)
    info = {name: value for name, value in img.info.items() if name != "transparency"}
    rgba = Image.fromarray(np.dstack([high, np.where(clear, 0, 255).astype(np.uint8)]), "RGBA")
    rgba.info.update(info)
    return rgba
