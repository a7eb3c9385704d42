"""Every awkward input either works or fails with a human message."""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import InvalidImageError
from rmbg.image.io import load_image


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _gradient(w=40, h=30) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], -1), "RGB")


def test_rgb_bytes_roundtrip():
    img = _gradient()
    loaded = load_image(_png_bytes(img))
    assert loaded.rgb.mode == "RGB" and loaded.alpha is None
    assert np.array_equal(np.asarray(loaded.rgb), np.asarray(img))
    assert len(loaded.digest) == 64


def test_path_and_file_object(tmp_path):
    path = tmp_path / "in.png"
    _gradient().save(path)
    assert load_image(path).name == "in.png"
    with open(path, "rb") as fh:
        assert load_image(fh).digest == load_image(str(path)).digest


def test_exif_orientation_is_applied():
    img = _gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    loaded = load_image(buf.getvalue())
    assert loaded.rgb.size == (30, 40)


def test_rgba_keeps_its_own_alpha():
    img = _gradient().convert("RGBA")
    alpha = np.full((30, 40), 255, np.uint8)
    alpha[:, :10] = 0
    img.putalpha(Image.fromarray(alpha, "L"))
    loaded = load_image(_png_bytes(img))
    assert loaded.rgb.mode == "RGB"
    assert np.array_equal(np.asarray(loaded.alpha), alpha)


def test_opaque_alpha_is_dropped():
    loaded = load_image(_png_bytes(_gradient().convert("RGBA")))
    assert loaded.alpha is None


def test_la_grayscale_with_alpha():
    img = Image.new("LA", (8, 6), (100, 50))
    loaded = load_image(_png_bytes(img))
    assert loaded.rgb.getpixel((0, 0)) == (100, 100, 100)
    assert loaded.alpha.getpixel((0, 0)) == 50


def test_palette_with_transparency():
    img = Image.new("P", (8, 6), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.putpixel((0, 0), 0)
    loaded = load_image(_png_bytes(img, transparency=0))
    assert loaded.rgb.getpixel((1, 1)) == (255, 0, 0)
    assert loaded.alpha.getpixel((0, 0)) == 0 and loaded.alpha.getpixel((1, 1)) == 255


def test_grayscale_l():
    loaded = load_image(_png_bytes(Image.new("L", (5, 4), 77)))
    assert loaded.rgb.mode == "RGB" and loaded.rgb.getpixel((2, 2)) == (77, 77, 77)


def test_16bit_grayscale_scaled_to_8bit():
    arr = np.array([[0, 65535], [32768, 257 * 10]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    loaded = load_image(_png_bytes(img))
    assert [loaded.rgb.getpixel((x, y))[0] for y in range(2) for x in range(2)] == [0, 255, 128, 10]


def test_cmyk_jpeg():
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    r, g, b = load_image(buf.getvalue()).rgb.getpixel((8, 8))
    assert r > 240 and g < 15 and b < 15


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert load_image(buf.getvalue()).rgb.getpixel((5, 5)) == (255, 0, 0)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"this is a text file, not a picture", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
    ],
)
def test_bad_bytes(data, words):
    with pytest.raises(InvalidImageError, match=words):
        load_image(data)


def test_truncated_jpeg():
    buf = io.BytesIO()
    _gradient(200, 150).save(buf, "JPEG", quality=95)
    with pytest.raises(InvalidImageError, match="damaged or truncated"):
        load_image(buf.getvalue()[: len(buf.getvalue()) // 2])


CUT_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"]
CUT_FORMATS += ["HEIF"] if importlib.util.find_spec("pillow_heif") else []
CUT = "is damaged or truncated and could not be decoded: send the whole file again."


@pytest.mark.parametrize("fmt", CUT_FORMATS)
@pytest.mark.parametrize("kept", [0.05, 0.5, 0.9])
def test_a_file_cut_short_gets_one_sentence_whatever_its_format(tmp_path, fmt, kept):
    """A JPEG cut in its header said Pillow's "Truncated File Read", a cut WebP "could not create decoder
    object", a cut PNG "damaged or truncated": one sentence now, for bytes and for a named file."""
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    _gradient(160, 120).save(buf, fmt)
    cut = buf.getvalue()[: max(16, int(len(buf.getvalue()) * kept))]
    with pytest.raises(InvalidImageError) as refused:
        load_image(cut)
    assert str(refused.value) == f"The image {CUT}"
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(cut)
    with pytest.raises(InvalidImageError) as refused:
        load_image(path)
    assert str(refused.value) == f"{path.name} {CUT}"


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty.png is empty"):
        load_image(empty)
    with pytest.raises(InvalidImageError, match="No such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="is a folder"):
        load_image(tmp_path)


def test_zero_size_image():
    with pytest.raises(InvalidImageError, match="no pixels"):
        load_image(Image.new("RGB", (0, 0)))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    data += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    return data + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def test_decompression_bomb_is_refused_before_decoding():
    # Far over Pillow's own limit: refused when the header is read.
    with pytest.raises(InvalidImageError, match=r"far too large to decode safely \(10000 MP\)"):
        load_image(_bomb_png(100_000, 100_000))
    # Over our 40 MP limit but under Pillow's: refused by our check, still before decoding.
    with pytest.raises(InvalidImageError, match=r"10000x5000 = 50.0 MP, over the limit of 40 MP"):
        load_image(_bomb_png(10_000, 5_000))


def test_configurable_pixel_limit(monkeypatch):
    data = _png_bytes(_gradient(40, 30))
    with pytest.raises(InvalidImageError, match="over the limit"):
        load_image(data, max_pixels=1000)
    monkeypatch.setenv("RMBG_MAX_PIXELS", "1000")
    with pytest.raises(InvalidImageError, match="over the limit"):
        load_image(data)
    assert load_image(data, max_pixels=1200).size == (40, 30)


def test_unsupported_type():
    with pytest.raises(InvalidImageError, match="Cannot read an image from a int"):
        load_image(42)  # type: ignore[arg-type]


def _encoded(fmt: str, image: Image.Image, **kwargs) -> bytes:
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    buf = io.BytesIO()
    image.save(buf, fmt, quality=95, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_are_read(fmt):
    rgba = _gradient(64, 48).convert("RGBA")
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, 32:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    loaded = load_image(_encoded(fmt, rgba))
    assert loaded.size == (64, 48) and loaded.rgb.mode == "RGB"
    assert loaded.alpha is not None
    a = np.asarray(loaded.alpha)
    assert a[:, :28].max() < 20 and a[:, 36:].min() > 235  # lossy codecs: near, not exact
    got = np.asarray(loaded.rgb, dtype=np.int16)[:, 40:]
    assert np.abs(got - np.asarray(rgba.convert("RGB"), dtype=np.int16)[:, 40:]).mean() < 8


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_exif_orientation(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    loaded = load_image(_encoded(fmt, _gradient(64, 48), exif=exif.tobytes()))
    assert loaded.size == (48, 64)


@pytest.mark.parametrize(
    "fmt, plugin", [("HEIF", "pillow_heif.as_plugin:HeifImageFile"), ("AVIF", "PIL.AvifImagePlugin:AvifImageFile")]
)
def test_heic_and_avif_pixel_limit_before_decoding(monkeypatch, fmt, plugin):
    import importlib

    data = _encoded(fmt, _gradient(64, 48))
    module, _, name = plugin.partition(":")
    cls = getattr(importlib.import_module(module), name)
    decoded = []
    real = cls.load
    monkeypatch.setattr(cls, "load", lambda self, *a, **k: decoded.append(1) or real(self, *a, **k))
    with pytest.raises(InvalidImageError, match=r"64x48 = 0.0 MP, over the limit of 0 MP"):
        load_image(data, max_pixels=3000)
    assert decoded == []
    assert load_image(data, max_pixels=4000).size == (64, 48) and decoded


def test_heic_without_pillow_heif_says_how_to_read_it(monkeypatch):
    import sys

    data = _encoded("HEIF", _gradient(16, 12))
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(InvalidImageError, match="This is a HEIC/HEIF image: pip install pillow-heif to read it."):
        load_image(data)


def test_heic_opener_is_registered_on_demand_not_at_import(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "photo.heic"
    path.write_bytes(_encoded("HEIF", _gradient(16, 12)))
    code = (
        "import sys, rmbg; from rmbg.image.io import load_image; "
        "before = 'pillow_heif' in sys.modules; size = load_image(sys.argv[1]).size; "
        "print(before, size)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False (16, 12)"


def test_postscript_and_other_formats_outside_the_list_are_not_opened():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InvalidImageError, match="is not an image we can read"):
        load_image(eps)  # never handed to Ghostscript
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
    with pytest.raises(InvalidImageError, match="is not an image we can read"):
        load_image(pdf)


def _icon(image: bytes, said=(16, 16)) -> bytes:
    """An ICO of one image whose directory says `said` (at most 256x256), whatever the image is."""
    entry = struct.pack("<BBBBHHII", said[0] % 256, said[1] % 256, 0, 0, 1, 32, len(image), 22)
    return struct.pack("<HHH", 0, 1, 1) + entry + image


def _bitmap_header(width: int, height: int) -> bytes:
    """An icon's bitmap: its header (height counting the AND mask: twice the image's) and a few pixels."""
    return struct.pack("<IiiHHIIiiII", 40, width, height * 2, 1, 32, 0, 0, 0, 0, 0, 0) + b"\0" * 64


@pytest.mark.parametrize("inner", [_bomb_png(7000, 7000), _bitmap_header(7000, 7000)], ids=["png", "bitmap"])
def test_an_icon_is_held_to_the_pixel_limit_by_its_own_image_before_anything_decodes(monkeypatch, inner):
    decoders, real = [], Image._getdecoder
    monkeypatch.setattr(Image, "_getdecoder", lambda *a, **k: decoders.append(a[1]) or real(*a, **k))
    made = Image.core.get_stats()["new_count"]  # images Pillow allocated, in this process
    with pytest.raises(InvalidImageError, match=r"The image is 7000x7000 = 49.0 MP, over the limit of 40 MP"):
        load_image(_icon(inner))  # the directory says 16x16
    assert decoders == [] and Image.core.get_stats()["new_count"] == made
    with pytest.raises(InvalidImageError, match="The icon is damaged or truncated and could not be decoded"):
        load_image(_icon(inner)[:30])  # its image cut short


def test_an_icon_within_the_limit_is_read():
    buf = io.BytesIO()
    _gradient(48, 40).convert("RGBA").save(buf, "ICO", sizes=[(48, 40)])
    assert load_image(buf.getvalue()).size == (48, 40)
    with pytest.raises(InvalidImageError, match=r"48x40 = 0.0 MP, over the limit of 0 MP"):
        load_image(buf.getvalue(), max_pixels=1000)


@pytest.mark.parametrize(
    "mode, key, inside", [("RGB", (255, 0, 255), (200, 30, 30)), ("L", 0, 200), ("1", 0, 1), ("I;16", 0, 5000)]
)
def test_a_colour_key_is_the_inputs_own_alpha(mode, key, inside):
    """A grey or RGB PNG's tRNS (colour-keyed transparency: old logos, icons, GIF-era web art) shows as
    transparent in every browser. It was dropped: alpha None, and the key colour came back in the cut-out."""
    img = Image.new(mode, (8, 6), key)
    img.paste(inside, (2, 1, 6, 5))
    loaded = load_image(_png_bytes(img, transparency=key))
    held = np.zeros((6, 8), np.uint8)
    held[1:5, 2:6] = 255
    assert loaded.alpha is not None and np.array_equal(np.asarray(loaded.alpha), held)
    assert "transparency" not in loaded.rgb.info  # never written again into an output or a preview
    if mode != "1":  # a key no pixel has: opaque, no alpha
        assert load_image(_png_bytes(img, transparency=(1, 2, 3) if mode == "RGB" else 7)).alpha is None


def _deep_png(rgb16: np.ndarray, key: tuple[int, int, int], exif: bytes = b"") -> bytes:
    """A 16-bit RGB PNG of `rgb16` (H x W x 3 uint16) with the colour key `key` (tRNS, 16-bit samples), built
    by hand: Pillow writes no 16-bit RGB. Row 0 unfiltered, the others with the Sub filter (each byte less the
    one 6 bytes, a pixel, before it), so both decodes undo a filter that reads across a pixel's samples."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = []
    for y, row in enumerate(rgb16.astype(">u2").reshape(rgb16.shape[0], -1).view(np.uint8)):
        before = np.concatenate([np.zeros(6, np.uint8), row[:-6]])
        rows.append(b"\0" + row.tobytes() if y == 0 else b"\1" + (row - before).astype(np.uint8).tobytes())
    header = struct.pack(">IIBBBBB", rgb16.shape[1], rgb16.shape[0], 16, 2, 0, 0, 0)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"tRNS", struct.pack(">HHH", *key))]
        + ([chunk(b"eXIf", exif)] if exif else [])
        + [chunk(b"IDAT", zlib.compress(b"".join(rows))), chunk(b"IEND", b"")]
    )


def test_a_16_bit_rgb_colour_key_is_the_inputs_own_alpha(tmp_path):
    """Pillow reads a 16-bit RGB PNG as 8-bit but keeps its tRNS key's 16-bit values, so the key never matched:
    alpha None, the keyed pixels opaque. A key under 256 matched the wrong pixels (those whose high bytes it
    equals). Now each pixel's three 16-bit samples are compared with the key."""
    key = (0x1234, 0x5678, 0x9ABC)
    rgb = np.full((5, 7, 3), (0xFFFF, 0x0000, 0x8080), np.uint16)
    rgb[1:4, 2:5] = key  # the keyed pixels
    rgb[0, 0] = (0x1200, 0x5600, 0x9A00)  # the key's high bytes, other low bytes: opaque
    rgb[0, 1] = (0x1234, 0x5678, 0x9ABD)  # one low byte off: opaque
    rgb[4, 6] = (0x12FF, 0x5678, 0x9ABC)
    clear = np.full((5, 7), 255, np.uint8)
    clear[1:4, 2:5] = 0
    (tmp_path / "deep.png").write_bytes(_deep_png(rgb, key))
    for source in (_deep_png(rgb, key), tmp_path / "deep.png", Image.open(io.BytesIO(_deep_png(rgb, key)))):
        loaded = load_image(source)
        assert loaded.alpha is not None and np.array_equal(np.asarray(loaded.alpha), clear)
        assert np.array_equal(np.asarray(loaded.rgb), (rgb >> 8).astype(np.uint8))  # Pillow's 8 bits, unchanged
        assert "transparency" not in loaded.rgb.info
    assert load_image(_deep_png(rgb, (0x1234, 0x5678, 0x9ABB))).alpha is None  # a key no pixel has: opaque
    low = np.full((2, 2, 3), (0x0000, 0x0000, 0x5000), np.uint16)  # 8-bit (0, 0, 80): a key of (0, 0, 80)...
    low[1, 1] = (0, 0, 80)  # ...is this pixel only
    assert np.array_equal(np.asarray(load_image(_deep_png(low, (0, 0, 80))).alpha), [[255, 255], [255, 0]])


def test_a_16_bit_keyed_png_is_turned_upright_with_its_alpha():
    """The RGBA made from the key keeps the PNG's EXIF: orientation 6 (turn 90 degrees clockwise) turns both."""
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = np.full((2, 3, 3), 0xFFFF, np.uint16)
    rgb[0, 0] = (1, 2, 3)
    loaded = load_image(_deep_png(rgb, (1, 2, 3), exif=exif.tobytes()))
    assert loaded.size == (2, 3) and np.array_equal(np.asarray(loaded.alpha), [[255, 0], [255, 255], [255, 255]])


def test_a_colour_keyed_photo_is_cut_where_it_was_transparent():
    from rmbg import remove_background
    from tests.support.providers import CountingProvider

    img = Image.new("RGB", (8, 6), (255, 0, 255))  # magenta, the key: red 255 is "subject" to CountingProvider
    img.paste((200, 30, 30), (2, 1, 6, 5))
    result = remove_background(_png_bytes(img, transparency=(255, 0, 255)), CountingProvider(), cache=None)
    alpha = np.asarray(result.image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[2, 3] == 200  # the keyed magenta is gone; the subject kept


def test_a_premultiplied_grey_image_keeps_its_alpha():
    """A PIL image in mode La (grey premultiplied by its alpha) was "damaged or truncated ... send the whole
    file again": Pillow converts La to LA only, and it was converted to RGBA."""
    loaded = load_image(Image.new("La", (4, 3), (40, 128)))
    assert loaded.rgb.getpixel((0, 0)) == (79, 79, 79) and loaded.alpha.getpixel((0, 0)) == 128  # 40*255/128
