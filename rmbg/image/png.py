"""PNG files where Pillow alone falls short: a large image written on every core (Pillow's
filters, zlib's deflate, in row bands), a 16-bit RGB PNG's colour key read at 16 bits.

Pillow writes a PNG on one core: its adaptive filter picks one of PNG's five
filters per row, then zlib deflates the filtered rows. For a 12 MP cut-out
that is about 0.55 s, the largest single step of a cut-out's path. Both steps
parallelise by rows without changing what is written:

- **Filtering.** A row's filter depends only on that row and the one above,
  so each band of rows is given to Pillow with the last row of the band above
  it and stored uncompressed (`compress_level=0`); dropping that extra row's
  bytes leaves exactly the rows Pillow would have filtered in one piece.
- **Deflate.** Each band is deflated on its own (raw deflate, the same level
  and strategy), primed with the last 32 KB of the band above as its
  dictionary so matches across the seam are kept, and ended with a sync flush
  (the last band with the stream's end); the pieces concatenate into one zlib
  stream whose Adler-32 is each band's, taken in its thread, then joined.

Pillow and zlib release the GIL, so the bands run in threads. The chunks
before the image data (IHDR, text, ICC ...) are Pillow's own, with IHDR's
height set to the whole image's. Small images, and modes other than 8-bit
L / LA / RGB / RGBA, go through Pillow in one piece.

Reading, one PNG Pillow gets wrong: a 16-bit RGB PNG's colour key (its tRNS
chunk) as its alpha, compared at 16 bits (`keyed`, which rmbg.image.io calls).
Pillow reads a 16-bit RGB PNG as 8-bit RGB (each sample's high byte) but keeps
the key's three 16-bit values, so its own conversion compares 8-bit pixels with
a 16-bit key: the key never matches and the transparency is lost (or, for a key
under 256, it matches pixels it should not). Here the file is decoded a second
time keeping each sample's low byte: Pillow undoes the PNG's filters on bytes
before it unpacks samples, and its little-endian unpacker, given big-endian
samples, keeps their second byte. A pixel is transparent where each of its
three 16-bit samples, high byte and low byte, equals the key's. The other
colour keys (8-bit grey and RGB, 1-bit, 16-bit grey) Pillow keeps exact:
rmbg.image.io reads those.
"""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageFile, PngImagePlugin

from ..threads import BUDGET

BANDED_MODES = frozenset({"L", "LA", "RGB", "RGBA"})
BANDS_PER_THREAD = 4
BANDED_MIN_PIXELS = 1_000_000  # below this, threads cost more than they save (measured: benchmarks/vs_rembg.py)
_WINDOW = 32 * 1024  # deflate's window: the dictionary a band is primed with
_IDAT_CHUNK = 1 << 20


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of a PNG file, in order."""
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _filtered(
    band: Image.Image, info: PngImagePlugin.PngInfo | None, icc: bytes | None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Pillow's chunks of `band` stored without compression, and its filtered rows."""
    buf = io.BytesIO()
    band.save(buf, "PNG", pnginfo=info, icc_profile=icc, compress_level=0)
    chunks = _chunks(buf.getvalue())
    rows = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    return chunks, rows


_ADLER_BASE = 65521


def adler32_join(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of A + B from A's, B's and B's length. Adler-32 is two sums mod 65521:
    a = 1 + the bytes, b = the running a after each byte. Behind A, every running a of B
    is larger by a(A) - 1, so b(AB) = b(A) + b(B) + len(B) * (a(A) - 1) and
    a(AB) = a(A) + a(B) - 1."""
    a1, b1, a2, b2 = first & 0xFFFF, first >> 16, second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


def _deflate(rows: memoryview, primer: bytes, level: int, strategy: int, last: bool) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy, zdict=primer) if primer else None
    packer = packer or zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return packer.compress(rows) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def save_png(
    image: Image.Image,
    buf: io.BytesIO,
    *,
    level: int,
    strategy: int,
    info: PngImagePlugin.PngInfo | None = None,
    icc: bytes | None = None,
    workers: int | None = None,
) -> None:
    """Write `image` as PNG into `buf`: in row bands on `workers` threads (None: as
    many as the process's thread budget has free, rmbg.threads) when it is large,
    else through Pillow in one piece. `icc`: the colour profile written (iCCP), whatever
    image.info holds; None writes none."""
    if workers is not None:
        return _save(image, buf, level, strategy, info, icc, workers)
    if image.mode not in BANDED_MODES or image.width * image.height < BANDED_MIN_PIXELS:
        return _save(image, buf, level, strategy, info, icc, 1)  # in the request's own thread
    with BUDGET.take(BUDGET.total) as granted:
        return _save(image, buf, level, strategy, info, icc, granted)


def _save(
    image: Image.Image,
    buf: io.BytesIO,
    level: int,
    strategy: int,
    info: PngImagePlugin.PngInfo | None,
    icc: bytes | None,
    threads: int,
) -> None:
    width, height = image.size
    # Several bands per thread: their contents compress at different speeds (transparent
    # rows fly), so small bands keep every thread busy to the end (measured at 12 MP:
    # 2 bands 0.48 s, 8 bands 0.36 s, Pillow in one piece 0.51 s).
    bands = min(BANDS_PER_THREAD * threads, height // 8, 64)
    if image.mode not in BANDED_MODES or width * height < BANDED_MIN_PIXELS or threads < 2 or bands < 2:
        image.save(buf, "PNG", pnginfo=info, icc_profile=icc, compress_level=level, compress_type=strategy)
        return
    image.load()
    stride = 1 + width * len(image.getbands())  # a filtered row: the filter's byte, then the pixels
    lead = -(-_WINDOW // stride)  # rows above a band whose filtered bytes prime its deflate
    edges = [height * k // bands for k in range(bands + 1)]

    def band(k: int) -> tuple[list[tuple[bytes, bytes]], int, int, bytes]:
        """Filter rows lead+1 above the band too (the first of them only gives the next its
        context), deflate the band primed with the filtered rows just above it."""
        top, bottom = edges[k], edges[k + 1]
        start = max(top - lead - 1, 0)
        chunks, rows = _filtered(image.crop((0, start, width, bottom)), *((info, icc) if k == 0 else (None, None)))
        above = memoryview(rows)[: (top - start) * stride]
        own = memoryview(rows)[(top - start) * stride :]
        primer = bytes(above[stride if start > 0 else 0 :][-_WINDOW:])  # the first row only if it is row 0
        return chunks, zlib.adler32(own), len(own), _deflate(own, primer, level, strategy, k == bands - 1)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rmbg-cpu") as pool:
        done = list(pool.map(band, range(bands)))
    pieces = [piece for *_, piece in done]
    adler = 1
    for _, own_adler, length, _ in done:  # each band's checksum, taken in its thread, chained
        adler = adler32_join(adler, own_adler, length)
    header = bytes([0x78, 0xDA if level >= 7 else 0x9C if level >= 6 else 0x5E if level >= 2 else 0x01])
    stream = header + b"".join(pieces) + struct.pack(">I", adler)
    kinds = [kind for kind, _ in done[0][0]]
    first, last = kinds.index(b"IDAT"), len(kinds) - 1 - kinds[::-1].index(b"IDAT")
    buf.write(b"\x89PNG\r\n\x1a\n")
    for kind, payload in done[0][0][:first]:  # IHDR (the whole height), then text, ICC ... as Pillow wrote them
        if kind == b"IHDR":
            payload = payload[:4] + struct.pack(">I", height) + payload[8:]
        buf.write(_chunk(kind, payload))
    for start in range(0, len(stream), _IDAT_CHUNK):
        buf.write(_chunk(b"IDAT", stream[start : start + _IDAT_CHUNK]))
    for kind, payload in done[0][0][last + 1 :]:  # what Pillow writes after the image data, IEND last
        buf.write(_chunk(kind, payload))


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
