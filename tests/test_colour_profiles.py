"""Colour profiles: a photo shot in a wide gamut (a phone's Display P3) keeps its colours in the
cut-out, in every format; a colour or a backdrop behind it looks as it was asked for; a mask and a
profile that describes no RGB carry none; the app's previews are shown as the download looks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import rmbg
from rmbg.image.io import icc_of, load_image
from tests.support.colour import DISPLAY_P3, cmyk_profile, grey_profile, rgb_profile
from tests.support.providers import RedIsSubject

SUBJECT, BACKDROP = (255, 40, 20), (0, 200, 90)  # RedIsSubject: alpha is the red channel


def photo(fmt: str = "PNG", icc: bytes | None = DISPLAY_P3, mode: str = "RGB", turned: bool = False) -> bytes:
    """Left half the subject, right half the old background; saved with `icc` embedded."""
    arr = np.zeros((24, 40, 3), np.uint8)
    arr[:, :20], arr[:, 20:] = SUBJECT, BACKDROP
    img = Image.fromarray(arr).convert(mode)
    extra = {"icc_profile": icc} if icc is not None else {}
    if turned:
        exif = img.getexif()
        exif[0x0112] = 6  # shown turned a quarter: the output is the upright photo
        extra["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}), **extra)
    return buf.getvalue()


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def seen_in_srgb(img: Image.Image) -> np.ndarray:
    """What a colour-managed viewer shows: the numbers through the file's profile, into sRGB."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    own = img.info.get("icc_profile")
    rgb = img.convert("RGB")
    if not own:
        return np.asarray(rgb)
    shown = ImageCms.profileToProfile(rgb, ImageCms.ImageCmsProfile(io.BytesIO(own)), srgb, renderingIntent=1)
    return np.asarray(shown)


def cut(data: bytes, **render_as) -> rmbg.Result:
    return rmbg.remove_background(data, RedIsSubject(), cache=None, **render_as)


@pytest.mark.parametrize("source", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("out", ["png", "webp", "jpg"])
def test_a_cutout_keeps_the_photos_profile_and_numbers_in_every_format(source, out):
    data = photo(source)
    written = opened(cut(data).encode(out))
    assert written.info.get("icc_profile") == DISPLAY_P3
    if out != "jpg":  # lossless: the subject's numbers are the photo's own, exactly
        theirs = np.asarray(opened(data).convert("RGB"))[:, :18]
        assert np.array_equal(np.asarray(written)[:, :18, :3], theirs)
        assert np.asarray(written)[:, 22:, 3].max() == 0


def test_an_upright_turned_photo_and_a_photo_with_its_own_alpha_keep_theirs_too():
    turned = opened(cut(photo("JPEG", turned=True)).encode("png"))
    assert turned.size == (24, 40) and turned.info.get("icc_profile") == DISPLAY_P3
    with_alpha = opened(cut(photo("PNG", mode="RGBA")).encode("webp"))
    assert with_alpha.mode == "RGBA" and with_alpha.info.get("icc_profile") == DISPLAY_P3


def test_a_colour_background_looks_as_asked_on_a_wide_gamut_photo():
    result = cut(photo("PNG"), background="#ff0000")
    written = opened(result.encode("png"))
    assert written.info.get("icc_profile") == DISPLAY_P3
    behind = np.asarray(written)[:, 30]
    assert tuple(behind[0]) != (255, 0, 0)  # the numbers of sRGB red in Display P3: not P3's own red
    assert np.abs(seen_in_srgb(written)[:, 30].astype(int) - (255, 0, 0)).max() <= 1
    # The subject is still the photo's own numbers, seen as the photo is.
    assert tuple(np.asarray(written)[0, 0]) == SUBJECT


def test_a_backdrop_image_looks_as_it_did_behind_a_wide_gamut_photo():
    teal = (20, 160, 170)
    untagged = Image.new("RGB", (8, 8), teal)  # no profile: sRGB numbers, as the web reads them
    written = opened(cut(photo("PNG"), background=untagged).encode("png"))
    assert np.abs(seen_in_srgb(written)[:, 30].astype(int) - teal).max() <= 1
    # A backdrop in the photo's own space goes behind it unchanged.
    same = Image.new("RGB", (8, 8), teal)
    same.info["icc_profile"] = DISPLAY_P3
    written = opened(cut(photo("PNG"), background=same).encode("png"))
    assert {tuple(p) for p in np.asarray(written)[:, 30]} == {teal}


@pytest.mark.parametrize("out", ["png", "webp", "jpg"])
def test_a_mask_carries_no_colour_profile(out):
    written = opened(cut(photo("PNG"), mask_only=True).encode(out))
    assert written.mode == ("RGB" if out == "webp" else "L")  # WebP has no grey: three equal planes
    assert "icc_profile" not in written.info


@pytest.mark.parametrize(
    "mode, icc",
    [
        ("RGB", b"\0" * 300),  # damaged: not a profile at all
        ("RGB", DISPLAY_P3[:200]),  # cut short
        ("L", DISPLAY_P3),  # an RGB profile on grey numbers describes nothing here
        ("CMYK", DISPLAY_P3),
    ],
)
def test_a_profile_that_does_not_describe_the_rgb_is_dropped_and_the_photo_still_cut(mode, icc):
    img = Image.new("RGB", (16, 8), SUBJECT).convert(mode)
    img.info["icc_profile"] = icc
    assert icc_of(img) is None
    loaded = load_image(img)
    assert "icc_profile" not in loaded.rgb.info
    assert img.info["icc_profile"] == icc  # the caller's image is left as it was given
    written = opened(cut(img).encode("png"))
    assert "icc_profile" not in written.info


def test_a_cmyk_photo_is_read_through_its_own_profile():
    """A print file's CMYK JPEG (with its press profile, as Photoshop saves one): its cyan is the ink's
    as the profile says, (0, 161, 224) here, where Pillow's plain conversion gave (0, 255, 255), a cyan
    no press prints and no browser shows for that file. The cut-out is sRGB, untagged."""
    img = Image.new("CMYK", (24, 8), (255, 0, 0, 0))
    img.paste((0, 0, 0, 0), (12, 0, 24, 8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=100, icc_profile=cmyk_profile("Press (test)"))
    loaded = load_image(buf.getvalue())
    assert max(abs(a - b) for a, b in zip(loaded.rgb.getpixel((4, 4)), (0, 161, 224))) <= 2
    assert loaded.rgb.getpixel((20, 4)) == (255, 255, 255) and "icc_profile" not in loaded.rgb.info
    written = opened(cut(buf.getvalue()).encode("png"))
    assert "icc_profile" not in written.info


@pytest.mark.parametrize("damaged", [lambda p: p[:140], lambda p: p[:16] + b"RGB " + p[20:]])
def test_a_cmyk_photo_with_a_damaged_or_foreign_profile_is_read_plainly(damaged):
    img = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    img.info["icc_profile"] = damaged(cmyk_profile("Press (test)"))
    assert load_image(img).rgb.getpixel((0, 0)) == (0, 255, 255)


def test_a_grey_photo_is_read_through_its_own_profile():
    """A grey scan whose profile says its numbers are linear light (gamma 1): grey 128 is half the
    light, sRGB 188, as a browser shows it; read plainly it was 128."""
    img = Image.new("L", (8, 8), 128)
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=grey_profile("Linear grey (test)", 1.0))
    assert max(abs(a - 188) for a in load_image(buf.getvalue()).rgb.getpixel((0, 0))) <= 1
    img.info["icc_profile"] = grey_profile("Grey 2.2 (test)", 2.2)
    assert max(abs(a - 128) for a in load_image(img).rgb.getpixel((0, 0))) <= 2


def test_an_srgb_photo_is_unchanged_by_its_profile():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = np.asarray(opened(cut(photo("PNG", icc=None), background="#3366cc").encode("png")))
    tagged = opened(cut(photo("PNG", icc=srgb), background="#3366cc").encode("png"))
    assert tagged.info.get("icc_profile") == srgb
    assert np.array_equal(np.asarray(tagged), plain)


def test_another_wide_gamut_profile_is_carried_as_it_came():
    wide = rgb_profile("Wide (test)", ((0.6, 0.28, 0.0), (0.25, 0.7, 0.05), (0.11, 0.02, 0.78)), gamma=1.8)
    assert opened(cut(photo("JPEG", icc=wide)).encode("webp")).info.get("icc_profile") == wide


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_the_apps_before_and_after_previews_are_seen_as_the_photo(fmt):
    """The page's slider gets PNGs (gradio writes a PIL image's profile into them): both sides
    carry the photo's profile, the download too."""
    from rmbg.webapp.look import Look, OutputStore, download, preview_of, shown, shrink

    result = cut(photo("JPEG"))
    look = Look.of(fmt=fmt)
    rendered = shown(result, look)
    assert shrink(result.source, 16).info.get("icc_profile") == DISPLAY_P3
    assert preview_of(rendered, look, 16).info.get("icc_profile") == DISPLAY_P3
    path = download(rendered, look, "phone", OutputStore())
    assert opened(path.read_bytes()).info.get("icc_profile") == DISPLAY_P3


def test_a_profile_of_megabytes_is_not_carried_into_every_output():
    """A photo may say anything is its profile: one over MAX_PROFILE_BYTES (a display profile is a few KB)
    is read as none, so it is neither kept with each result nor written into each output."""
    from rmbg.image.io import MAX_PROFILE_BYTES

    padded = bytearray(DISPLAY_P3 + bytes(MAX_PROFILE_BYTES))
    padded[0:4] = len(padded).to_bytes(4, "big")  # the header's own size agrees: LittleCMS reads it whole
    img = Image.new("RGB", (8, 8), SUBJECT)
    img.info["icc_profile"] = bytes(padded)
    assert icc_of(img) is None
    assert "icc_profile" not in opened(cut(img).encode("png")).info
    img.info["icc_profile"] = DISPLAY_P3
    assert icc_of(img) == DISPLAY_P3
