"""Rendering and encoding, to exact pixel values on synthetic images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from rmbg.compose import encode, fit_cover, parse_colour, preview, render
from rmbg.errors import InvalidImageError


def _solid(colour, size=(4, 2)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _alpha(values, size=(4, 2)) -> Image.Image:
    return Image.fromarray(np.array(values, dtype=np.uint8).reshape(size[1], size[0]), "L")


ALPHA = [0, 51, 128, 255, 0, 51, 128, 255]


def test_transparent_keeps_rgb_and_sets_alpha():
    out = render(_solid((10, 20, 30)), _alpha(ALPHA))
    assert out.mode == "RGBA"
    assert [tuple(p) for p in np.asarray(out).reshape(-1, len(out.getbands()))[:4].tolist()] == [(10, 20, 30, 0), (10, 20, 30, 51), (10, 20, 30, 128), (10, 20, 30, 255)]


@pytest.mark.parametrize(
    "fg, bg, expected",
    [
        # hand-computed: round(fg*a/255 + bg*(255-a)/255) for a = 0, 51, 128, 255
        ((255, 255, 255), "#000000", [0, 51, 128, 255]),
        ((100, 100, 100), (200, 200, 200), [200, 180, 150, 100]),
        ((0, 0, 0), "white", [255, 204, 127, 0]),
    ],
)
def test_colour_background_exact(fg, bg, expected):
    out = render(_solid(fg), _alpha(ALPHA), background=bg)
    assert out.mode == "RGB"
    assert [p[0] for p in [tuple(p) for p in np.asarray(out).reshape(-1, len(out.getbands()))[:4].tolist()]] == expected


def test_colour_forms():
    assert parse_colour("#ff8000") == (255, 128, 0)
    assert parse_colour("#f80") == (255, 136, 0)
    assert parse_colour("rebeccapurple") == (102, 51, 153)
    assert parse_colour("rgb(1, 2, 3)") == (1, 2, 3)
    assert parse_colour((9, 8, 7)) == (9, 8, 7)
    for bad in ("notacolour", (300, 0, 0), (1, 2)):
        with pytest.raises(InvalidImageError, match="not a colour"):
            parse_colour(bad)


def test_image_background_is_fitted_to_cover():
    bg = Image.new("RGB", (20, 10), (255, 0, 0))
    bg.paste((0, 0, 255), (10, 0, 20, 10))
    covered = fit_cover(bg, (10, 10))
    row = [covered.getpixel((x, 5)) for x in range(10)]
    assert row[:5] == [(255, 0, 0)] * 5 and row[5:] == [(0, 0, 255)] * 5
    out = render(_solid((0, 255, 0), (10, 10)), Image.new("L", (10, 10), 0), background=bg)
    assert out.getpixel((0, 0)) == (255, 0, 0) and out.getpixel((9, 9)) == (0, 0, 255)


def test_mask_only_returns_the_matte():
    alpha = _alpha(ALPHA)
    out = render(_solid((1, 2, 3)), alpha, background="red", mask_only=True)
    assert out.mode == "L" and np.asarray(out).ravel().tolist() == ALPHA


def test_alpha_must_match():
    with pytest.raises(ValueError, match="alpha must be mode L"):
        render(_solid((0, 0, 0)), Image.new("L", (3, 3)))


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_png_and_webp_keep_alpha_exactly():
    cut = render(_solid((10, 20, 30)), _alpha(ALPHA))
    for fmt in ("png", "webp"):
        back = _decode(encode(cut, fmt))
        assert back.mode == "RGBA", fmt
        assert np.asarray(back)[..., 3].ravel().tolist() == ALPHA, fmt


def test_png_carries_provenance_text():
    data = encode(render(_solid((0, 0, 0)), _alpha(ALPHA)), "png", meta={"rmbg:provider": "rmbg-1.4"})
    assert _decode(data).text["rmbg:provider"] == "rmbg-1.4"


def test_jpeg_is_flattened_on_white_by_default_and_on_a_colour_on_request():
    cut = render(_solid((0, 0, 0), (16, 16)), Image.new("L", (16, 16), 0))
    assert _decode(encode(cut, "jpg")).getpixel((8, 8)) == (255, 255, 255)
    # Pure blue is not exactly representable after JPEG's YCbCr round trip: 254.
    assert _decode(encode(cut, "jpeg", background=(0, 0, 255))).getpixel((8, 8)) == (0, 0, 254)


def test_unknown_format():
    with pytest.raises(InvalidImageError, match="Unknown output format 'gif'"):
        encode(_solid((0, 0, 0)), "gif")


def test_preview_shows_a_checkerboard_under_transparency():
    cut = render(_solid((0, 0, 0), (32, 32)), Image.new("L", (32, 32), 0))
    shown = preview(cut)
    assert shown.mode == "RGB"
    assert shown.getpixel((0, 0)) == (255, 255, 255) and shown.getpixel((16, 0)) == (204, 204, 204)
