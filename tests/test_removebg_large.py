"""remove-bg above remove.bg's PNG cap and at its upload limit, against the
fake remove.bg API over real sockets: `format=zip` for a full-resolution
matte over 10 MP (size "50MP" over 25 MP), nothing sent over 50 MP, the
12 MB upload limit as remove.bg writes it (12,000,000 bytes), and the ZIP
answer read as untrusted input."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import InvalidImageError, ProviderResponseError
from rmbg.providers.hosted.removebg import RemoveBg
from rmbg.providers.hosted.removebg_zip import alpha_from_zip
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.common import form_fields, simple_matte
from tests.fakes.fixtures import removebg_fake  # noqa: F401
from tests.support.archives import zip_of

KEY = "rbg-test-key"


def make(fake, **config) -> RemoveBg:
    # A 12 MP round trip (encode, the fake's matte and zip, decode) takes seconds on a loaded 2-core machine.
    return get_provider(
        "remove-bg",
        api_key=KEY,
        base_url=fake.url,
        retry=RetryPolicy.immediate(deadline_s=300),
        timeout=httpx.Timeout(300),
        **config,
    )


def scene(size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, (30, 160, 40))
    w, h = size
    ImageDraw.Draw(img).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(220, 30, 20))
    return img


def sent_fields(call) -> dict[str, str]:
    return {k: v.text for k, v in form_fields(call).items() if k != "image_file"}


def test_a_12_mp_input_gets_a_full_resolution_matte_through_format_zip(removebg_fake):
    image = scene((4000, 3000))  # 12 MP: a PNG answer would be capped at 10 MP and scaled back up

    matte = make(removebg_fake).matte(image)

    (call,) = removebg_fake.calls
    assert sent_fields(call) == {"size": "full", "type": "auto", "format": "zip", "channels": "rgba"}
    assert matte.alpha.size == (4000, 3000) and "scaled_from" not in matte.meta
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))  # the fake's own matte, exactly
    assert matte.meta["format"] == "zip" and matte.meta["credits_charged"] == "1"
    assert removebg_fake.credits_charged == 1


@pytest.mark.parametrize(
    ("size", "pixels", "form"),
    [
        ("full", (4000, 2500), ("full", "png")),  # exactly 10 MP: a PNG holds it
        ("full", (4001, 2500), ("full", "zip")),
        ("full", (5000, 5000), ("full", "zip")),  # exactly 25 MP: "full" holds it as a ZIP
        ("full", (6000, 4500), ("50MP", "zip")),  # 27 MP: only "50MP" keeps the resolution
        ("full", (7071, 7071), ("50MP", "zip")),  # just under 50 MP
        ("auto", (4000, 3000), ("auto", "zip")),
        ("preview", (7000, 7000), ("preview", "png")),  # 0.25 MP whatever the input
    ],
)
def test_the_form_asks_for_what_keeps_the_inputs_resolution(removebg_fake, size, pixels, form):
    fields = make(removebg_fake, size=size).form(pixels)
    assert (fields["size"], fields["format"]) == form and fields["channels"] == "rgba"


def test_over_50_mp_is_refused_before_anything_is_sent(removebg_fake, monkeypatch):
    monkeypatch.setenv("RMBG_MAX_PIXELS", "60000000")
    with pytest.raises(InvalidImageError, match=r"at most 50 megapixels; this one is 7072x7072 \(50.0 MP\)"):
        make(removebg_fake).matte(Image.new("RGB", (7072, 7072)))
    assert removebg_fake.calls == [] and removebg_fake.credits_charged == 0


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_the_fake_refuses_over_50_mp_and_over_12_mb_with_the_documented_errors(removebg_fake):
    big = _png(Image.new("L", (7072, 7072)))  # 50.01 MP, a small file
    with httpx.Client(base_url=removebg_fake.url, headers={"X-Api-Key": KEY}) as http:
        too_high = http.post("/v1.0/removebg", data={"size": "50MP", "format": "zip"}, files={"image_file": big})
        over = http.post("/v1.0/removebg", files={"image_file": b"\0" * 12_000_001})
        at_limit = http.post("/v1.0/removebg", files={"image_file": b"\0" * 12_000_000})
    assert too_high.status_code == 400 and too_high.json()["errors"][0] == {
        "title": "Image resolution too high",
        "code": "resolution_too_high",
        "detail": "Input image has 50 megapixels, maximum supported input resolution is 50 megapixels",
    }
    assert over.status_code == 400 and over.json()["errors"][0] == {
        "title": "File too large",
        "code": "file_too_large",
        "detail": "File exceeds limit of 12MB",
    }
    assert at_limit.json()["errors"][0]["code"] == "failed_to_read_image"  # 12,000,000 bytes pass the size check
    assert removebg_fake.credits_charged == 0


def test_a_png_over_12_mb_but_under_12_mib_is_sent_as_a_jpeg_under_12_mb(removebg_fake):
    noise = np.random.default_rng(0).integers(0, 256, (2000, 2050, 3), dtype=np.uint8)
    image = Image.fromarray(noise)  # its PNG: 12.3 MB, over remove.bg's 12,000,000 bytes, under 12 MiB
    assert 12_000_000 < len(_png(image)) <= 12 * 2**20

    matte = make(removebg_fake).matte(image)

    upload = form_fields(removebg_fake.calls[0])["image_file"]
    assert upload.filename == "image.jpg" and len(upload.data) <= 12_000_000
    assert matte.alpha.size == image.size and removebg_fake.credits_charged == 1


# --- the ZIP answer is untrusted input -----------------------------------------------------


def _jpeg(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def test_the_matte_is_the_zips_grayscale_png_whatever_its_name():
    matte = Image.new("L", (40, 30), 0)
    ImageDraw.Draw(matte).rectangle((10, 5, 30, 25), fill=200)
    alpha, scaled = alpha_from_zip(zip_of({"x.jpg": _jpeg(), "folder/m": _png(matte)}), (40, 30), "remove-bg")
    assert scaled is None and np.array_equal(np.asarray(alpha), np.asarray(matte))
    half, scaled = alpha_from_zip(zip_of({"alpha.png": _png(matte.resize((20, 15)))}), (40, 30), "remove-bg")
    assert half.size == (40, 30) and scaled == (20, 15)


def test_the_documented_alpha_png_is_the_matte_beside_another_png():
    """remove.bg names the members color.jpg and alpha.png: a second PNG beside alpha.png is not a matte."""
    matte = Image.new("L", (40, 30), 0)
    ImageDraw.Draw(matte).rectangle((4, 4, 20, 20), fill=255)
    members = {"color.jpg": _jpeg(), "preview.png": _png(Image.new("L", (40, 30), 90)), "alpha.png": _png(matte)}
    alpha, scaled = alpha_from_zip(zip_of(members), (40, 30), "remove-bg")
    assert scaled is None and np.array_equal(np.asarray(alpha), np.asarray(matte))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"color.jpg": _jpeg()}, "without its alpha matte"),
        ({f"{i}.jpg": _jpeg() for i in range(5)}, "a ZIP file of 5 files"),
        ({"a.png": _png(Image.new("L", (40, 30))), "b.png": _png(Image.new("L", (40, 30)))}, "two PNG mattes"),
        ({"alpha.png": _png(Image.new("L", (41, 30)))}, "a 41x30 matte for a 40x30 input"),
        ({"alpha.png": _png(Image.new("L", (80, 60)))}, "a 80x60 matte for a 40x30 input"),
        ({"alpha.png": b"\x89PNG\r\n\x1a\n but no image"}, "whose matte is not an image"),
    ],
)
def test_a_zip_without_one_matte_of_the_inputs_shape_is_refused(members, message):
    with pytest.raises(ProviderResponseError, match=message):
        alpha_from_zip(zip_of(members), (40, 30), "remove-bg")


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = zip_of({"alpha.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 30_000_000})  # 30 MB of zeros: a few KB deflated
    assert len(bomb) < 100_000
    with pytest.raises(ProviderResponseError, match=r"would inflate to 30 MB, over the 1 MB .*before decompressing"):
        alpha_from_zip(bomb, (40, 30), "remove-bg")


def test_a_zip_whose_header_understates_a_member_is_refused():
    honest = zip_of({"alpha.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 3_000_000})
    declared = (3_000_008).to_bytes(4, "little")
    lying = honest.replace(declared, (1000).to_bytes(4, "little"))  # local header and central directory
    assert lying != honest
    with pytest.raises(ProviderResponseError, match="cannot be read|not an image"):
        alpha_from_zip(lying, (40, 30), "remove-bg")


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 broken", b"not a zip at all"])
def test_an_unreadable_zip_is_refused_in_words(data):
    with pytest.raises(ProviderResponseError, match=r"returned a ZIP file that cannot be read \(\d+ bytes\)"):
        alpha_from_zip(data, (40, 30), "remove-bg")


def test_a_json_body_where_the_zip_was_asked_for_is_refused_and_billed(removebg_fake):
    removebg_fake.inject("json-200")
    with pytest.raises(ProviderResponseError, match="application/json where a ZIP file was expected") as err:
        make(removebg_fake).matte(scene((3200, 3200)))  # 10.24 MP: just over the PNG cap
    assert KEY not in str(err.value) and removebg_fake.credits_charged == 1 and len(removebg_fake.calls) == 1


def test_an_image_over_12_mb_even_as_a_jpeg_is_refused_before_sending_in_remove_bgs_megabytes(removebg_fake):
    from rmbg.providers.hosted.upload import upload_file

    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (1200, 1200, 3), dtype=np.uint8))
    with pytest.raises(
        InvalidImageError, match=r"too large for remove.bg: 1.\d MB even as a JPEG, over its 1 MB limit"
    ):
        upload_file(noise, 1_000_000, "remove.bg")
    assert upload_file(noise, 12_000_000, "remove.bg")[0] == "image.png"  # 4.3 MB: well under, sent losslessly
