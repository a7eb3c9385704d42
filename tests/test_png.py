"""rmbg.image.png: a large image's PNG written in row bands on threads decodes to the
very pixels, keeps Pillow's chunks (text, ICC) and is no larger than Pillow's file."""

from __future__ import annotations

import functools
import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from rmbg.image import png
from rmbg.image.compose import PNG_LEVEL, PNG_STRATEGY, cutout, encode


def _photo(width: int, height: int, mode: str) -> Image.Image:
    """Smooth gradients with noise and a hard-edged disc: rows that pick different filters
    (a new image each call, made from the one RGBA photo of that size)."""
    return _rgba(width, height).convert(mode)


@functools.cache
def _rgba(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(width + height)
    ys, xs = np.mgrid[0:height, 0:width]
    planes = [xs * 255 // width, ys * 255 // height, (xs ^ ys) & 255, np.hypot(xs - width / 2, ys - height / 2) < 300]
    arr = np.dstack([(p * (255 if p.dtype == bool else 1)) for p in planes]).astype(np.int16)
    arr += rng.integers(-3, 4, arr.shape, dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")


def _pillow(image: Image.Image, info: PngImagePlugin.PngInfo | None = None) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", pnginfo=info, compress_level=PNG_LEVEL, compress_type=PNG_STRATEGY)
    return buf.getvalue()


def _texts() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("rmbg:provider", "u2netp")
    info.add_text("note", "é ∑ 你好")  # not latin-1: Pillow writes iTXt
    return info


@functools.cache
def _large(mode: str) -> tuple[Image.Image, int]:
    """The banded tests' photo in `mode` (odd height: bands of unequal rows) and the length of
    Pillow's own file of it with _texts(): made once for the three worker counts that read them."""
    image = _photo(1100, 1001, mode)
    return image, len(_pillow(image, _texts()))


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "LA"])
@pytest.mark.parametrize("workers", [2, 3, 7])
def test_banded_png_decodes_to_the_same_pixels_and_is_no_larger(mode, workers):
    image, pillows = _large(mode)
    info = _texts()
    buf = io.BytesIO()
    png.save_png(image, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, info=info, workers=workers)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as out:
        out.load()
        assert (out.mode, out.size) == (image.mode, image.size)
        assert out.tobytes() == image.tobytes()
        assert out.text == {"rmbg:provider": "u2netp", "note": "é ∑ 你好"}
    assert len(data) <= pillows * 1.001  # the seams cost under 0.1 %
    # One zlib stream: Pillow's own decoder would have refused a bad checksum; check
    # it too with zlib, over the concatenated IDAT payloads.
    import zlib

    stream = b"".join(payload for kind, payload in png._chunks(data) if kind == b"IDAT")
    stride = 1 + image.size[0] * len(image.getbands())
    assert len(zlib.decompress(stream)) == stride * image.size[1]


def test_an_icc_profile_and_small_or_palette_images_go_through_pillow_unchanged():
    small = _photo(300, 200, "RGBA")
    buf = io.BytesIO()
    png.save_png(small, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, workers=4)
    assert buf.getvalue() == _pillow(small)  # under BANDED_MIN_PIXELS: Pillow's bytes exactly
    palette = _photo(1100, 1001, "RGB").convert("P")
    buf = io.BytesIO()
    png.save_png(palette, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, workers=4)
    assert buf.getvalue() == _pillow(palette)
    big = _photo(1100, 1001, "RGB")
    big.info["icc_profile"] = b"\x01" * 128  # what the image says is not what is written: `icc` is
    buf = io.BytesIO()
    png.save_png(big, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, icc=b"\x00" * 128, workers=2)
    chunks = png._chunks(buf.getvalue())
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and b"iCCP" in kinds and kinds[-1] == b"IEND"
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT")
    assert zlib.decompress(chunks[kinds.index(b"iCCP")][1].split(b"\0", 1)[1][1:]) == b"\x00" * 128
    buf = io.BytesIO()
    png.save_png(big, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, workers=2)  # icc None: none written
    assert b"iCCP" not in [kind for kind, _ in png._chunks(buf.getvalue())]


def test_a_large_dirty_rgba_image_is_cleaned_and_a_made_cut_out_is_kept():
    """encode() cleans RGB under alpha 0 of any RGBA image it did not make, large too."""
    dirty = _photo(1100, 1001, "RGBA")
    decoded = np.asarray(Image.open(io.BytesIO(encode(dirty, "png"))))
    hidden = decoded[..., 3] == 0
    assert hidden.any() and not decoded[hidden][:, :3].any()
    made = cutout(dirty.convert("RGB"), dirty.getchannel("A"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode(made, "png")))), np.asarray(made))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000), st.integers(0, 200_000))
def test_joined_adler32_is_the_adler32_of_the_joined_bytes(first, second, padding):
    """Each band's Adler-32 is taken in its own thread and the checksums joined: the same
    value as over the whole stream, long runs included (the sums wrap mod 65521)."""
    second = second + b"\xff" * padding
    joined = png.adler32_join(zlib.adler32(first), zlib.adler32(second), len(second))
    assert joined == zlib.adler32(first + second)
