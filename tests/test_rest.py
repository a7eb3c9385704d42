"""POST /api/remove against the launched app, with httpx, counting calls at the fake fal server."""

from __future__ import annotations

import base64
import io
import os
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from rmbg.image.framing import subject_box  # noqa: E402
from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve  # noqa: E402
from tests.test_background_colour_alpha import refusal  # noqa: E402


@pytest.fixture(scope="module")
def fakes():
    with FalFake() as fal, RunwareFake() as runware:
        yield fal, runware


@pytest.fixture(scope="module")
def url(fakes):
    with serve(app_config(*fakes)) as base:
        yield base + "api/remove"


@pytest.fixture(autouse=True)
def _fresh(fakes):
    for fake in fakes:
        fake.reset()


def posts(fal: FalFake) -> int:
    return sum(1 for call in fal.calls if call.method == "POST")


def png(seed: int, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def call(url, image: bytes | None = None, key: str | None = FAL_KEY, **fields):
    headers = {"X-Fal-Key": key} if key else {}
    files = {"image": ("photo.png", image, "image/png")} if image is not None else None
    return httpx.post(url, files=files, data={k: str(v) for k, v in fields.items()}, headers=headers, timeout=60)


def test_a_file_in_the_image_bytes_out_with_provider_seconds_and_cost(url, fakes):
    fal, _ = fakes
    answer = call(
        url,
        EXAMPLE.read_bytes(),
        provider="fal-bria",
        canvas="500x400",
        background="white",
        format="jpeg",
        align="bottom",
        margin="20px",
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["content-disposition"] == 'inline; filename="photo-nobg.jpg"'
    assert answer.headers["x-rmbg-provider"] == "fal-bria"
    assert answer.headers["x-rmbg-cost-usd"] == "0.018" and answer.headers["x-rmbg-cost-source"] == "estimated"
    assert answer.headers["x-rmbg-cached"] == "false" and float(answer.headers["x-rmbg-seconds"]) > 0
    out = Image.open(io.BytesIO(answer.content))
    assert out.format == "JPEG" and out.size == (500, 400)
    assert posts(fal) == 1

    again = call(url, EXAMPLE.read_bytes(), provider="fal-bria", crop="true")  # the cached matte: free
    assert again.status_code == 200 and again.headers["x-rmbg-cached"] == "true"
    assert again.headers["x-rmbg-cost-usd"] == "0" and again.headers["x-rmbg-cost-source"] == "free"
    cut = Image.open(io.BytesIO(again.content))
    assert cut.mode == "RGBA" and subject_box(cut.getchannel("A")) == (0, 0, *cut.size)
    assert posts(fal) == 1


@pytest.mark.parametrize(
    "image, fields, key, status, message",
    [
        (
            b"png",
            {"provider": "fal-bria"},
            None,
            401,
            "fal-bria needs an API key (this server does not share its own keys with visitors). Send your key in the "
            "X-Fal-Key header, or choose a local provider.",
        ),
        (
            b"png",
            {"provider": "fal-bria", "background": "zzz"},
            FAL_KEY,
            400,
            "'zzz' is not a colour: use '#RRGGBB', a CSS name such as 'white', or an (r, g, b) tuple.",
        ),
        (
            b"png",
            {"provider": "fal-bria", "canvas": "huge"},
            FAL_KEY,
            400,
            "Canvas 'huge' is neither a size such as '2000x2000' nor an aspect such as '1:1'.",
        ),
        (
            b"png",
            {"provider": "fal-bria", "background": "image"},
            FAL_KEY,
            400,
            'background "image" needs the image itself in the background_image field.',
        ),
        (
            b"png",
            {"provider": "fal-bria", "colour": "red"},
            FAL_KEY,
            400,
            "Unknown field(s) colour: use provider, background, mask_only, clean_edges, edge_colours, format, crop, "
            "canvas, margin, align, url, cpu, escalate, escalate_below.",
        ),
        (b"png", {"provider": "nope"}, FAL_KEY, 400, None),
        (
            b"not an image at all",
            {"provider": "fal-bria"},
            FAL_KEY,
            400,
            "The file is not an image we can read (PNG, JPEG, WebP, GIF, BMP, TIFF and others are supported).",
        ),
        (
            None,
            {"provider": "fal-bria"},
            FAL_KEY,
            400,
            'Send the image as the multipart field "image", or JSON {"url": "https://..."}.',
        ),
    ],
)
def test_bad_requests_are_json_errors_and_nothing_is_paid(url, fakes, image, fields, key, status, message):
    fal, _ = fakes
    answer = call(url, png(1) if image == b"png" else image, key, **fields)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    if message is not None:
        assert answer.json() == {"error": message}
    else:
        assert answer.json()["error"].startswith("Unknown provider 'nope'")
    assert posts(fal) == 0


def test_an_output_its_format_cannot_hold_is_a_400_before_the_paid_call(url, fakes):
    """A 16384x4 photo (0.07 MP) as a WebP, whose side limit is 16383 px: the provider was paid, then the
    encoder's ValueError was a 500 ("Something went wrong"). Now refused in a sentence, nothing paid; as a
    PNG it is cut."""
    fal, _ = fakes
    wide = png(2, size=(16384, 4))
    answer = call(url, wide, provider="fal-bria", format="webp")
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": "A WebP image can be at most 16383 pixels on a side, and this output would be 16384x4: "
        "choose PNG, or a smaller photo or frame."
    }
    assert posts(fal) == 0
    answer = call(url, wide, provider="fal-bria", format="png")
    assert answer.status_code == 200, answer.text
    assert Image.open(io.BytesIO(answer.content)).size == (16384, 4) and posts(fal) == 1


def test_a_data_uri_in_lines_or_unpadded_is_read_as_a_browser_reads_it(url, fakes):
    """`base64 photo.png` (lines of 76) or base64 without its "=" in "url": was a 400 "not valid base64"."""
    data = png(5)
    data += b"\0" * (4 - len(data) % 3)  # after IEND, where PNG readers stop: a length that base64 pads
    text = base64.b64encode(data).decode()
    assert text.endswith("=")
    for coded in (base64.encodebytes(data).decode(), text.rstrip("=")):
        answer = httpx.post(
            url, json={"url": "data:image/png;base64," + coded, "provider": "fal-bria"}, headers={"X-Fal-Key": FAL_KEY}
        )
        assert answer.status_code == 200, answer.text
        assert Image.open(io.BytesIO(answer.content)).size == (64, 48)


def test_a_background_picture_is_used_or_refused_never_dropped(url, fakes):
    """background_image with no background asks for it as the background (the same file as with
    background=image); beside another background, or unreadable, it is refused in a sentence that
    says it is the background's, and nothing is paid."""
    fal, _ = fakes
    photo, picture = png(30), png(31, (32, 24))

    def send(picture: bytes, **fields):
        files = {"image": ("photo.png", photo, "image/png"), "background_image": ("sky.png", picture, "image/png")}
        data = {"provider": "fal-bria", **fields}
        return httpx.post(url, files=files, data=data, headers={"X-Fal-Key": FAL_KEY}, timeout=60)

    implied, asked = send(picture), send(picture, background="image")
    assert implied.status_code == asked.status_code == 200 and implied.content == asked.content
    assert Image.open(io.BytesIO(implied.content)).mode == "RGB"  # on the picture: no transparency left
    paid = posts(fal)
    clash, unreadable = send(picture, background="white"), send(b"not a picture", background="image")
    assert (clash.status_code, clash.json()) == (
        400,
        {
            "error": 'background_image is the picture for background "image", and this request asks for '
            "'white': send background=image, or leave out background_image."
        },
    )
    assert (unreadable.status_code, unreadable.json()) == (
        400,
        {
            "error": "The background image: The file is not an image we can read (PNG, JPEG, WebP, GIF, BMP, "
            "TIFF and others are supported)."
        },
    )
    assert posts(fal) == paid


@pytest.mark.parametrize("background", ["#ff000080", "rgba(255, 0, 0, 0.5)", "rgba(255, 0, 0, 128)"])
def test_a_see_through_background_colour_is_refused_in_parse_colours_words(url, fakes, background):
    """Its alpha was dropped and an opaque colour drawn: now a 400 with the sentence every door says, unpaid."""
    fal, _ = fakes
    answer = call(url, png(40), provider="fal-bria", background=background)
    assert (answer.status_code, answer.json()) == (400, {"error": refusal(background)})
    assert posts(fal) == 0


def test_an_opaque_alpha_is_drawn_as_the_opaque_colour(url, fakes):
    photo = Image.new("RGB", (64, 48), (128, 128, 128))  # the fake's matte: 0 on the grey, 255 on the white
    photo.paste((255, 255, 255), (16, 12, 48, 36))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    for background in ("#ff0000ff", "rgba(255, 0, 0, 1)", "red"):
        answer = call(url, buf.getvalue(), provider="fal-bria", background=background)
        assert answer.status_code == 200, answer.text
        out = Image.open(io.BytesIO(answer.content))
        assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 0, 0) and out.getpixel((32, 24)) == (255, 255, 255)


def test_a_refused_key_is_401_and_never_echoed(url, fakes):
    fal, _ = fakes
    answer = call(url, png(2), "wrong-id:wrong-secret", provider="fal-bria")
    assert answer.status_code == 401 and "wrong-secret" not in answer.text
    assert posts(fal) == 1


def test_not_a_form_nor_json_and_too_large(url):
    answer = httpx.post(url, content=b"raw bytes", headers={"content-type": "image/png"}, timeout=30)
    assert answer.status_code == 415 and answer.json() == {
        "error": 'Send multipart/form-data (a file in "image") or application/json (a "url"), not image/png.'
    }
    huge = httpx.post(url, files={"image": ("big.png", b"\0" * (25 * 2**20 + 1), "image/png")}, timeout=60)
    assert huge.status_code == 413 and huge.json() == {"error": "The request is over 25 MB."}


def test_the_session_cap_holds_for_a_rest_client(fakes):
    fal, _ = fakes
    with serve(app_config(*fakes, cap_usd=Decimal("0.05"))) as base:
        codes = [call(base + "api/remove", png(10 + i), provider="fal-bria").status_code for i in range(4)]
        refused = call(base + "api/remove", png(20), provider="fal-bria")
    # $0.05 cap at $0.018 an image: two paid calls, then refused before the third is sent
    assert codes == [200, 200, 402, 402] and posts(fal) == 2
    assert refused.status_code == 402 and "cap" in refused.json()["error"]


def test_json_with_a_url_is_fetched_behind_the_guard(url, fakes, monkeypatch, tmp_path):
    from tests.support.fetch import PNG, serving

    fal, _ = fakes
    with serving() as server:
        image_url = server.url("/img.png")
        monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
        refused = httpx.post(
            url, json={"url": image_url, "provider": "fal-bria"}, headers={"X-Fal-Key": FAL_KEY}, timeout=60
        )
        assert refused.status_code == 400
        assert refused.json() == {"error": "Refused to fetch from 127.0.0.1: 127.0.0.1 is a loopback address."}
        assert server.requests == [] and posts(fal) == 0
        monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")  # a trusted deployment's explicit choice
        answer = httpx.post(
            url,
            json={"url": image_url, "provider": "fal-bria", "format": "webp"},
            headers={"X-Fal-Key": FAL_KEY},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(answer.content)).size == Image.open(io.BytesIO(PNG)).size
        inline = httpx.post(
            url,
            json={
                "url": "data:image/png;base64," + __import__("base64").b64encode(PNG).decode(),
                "provider": "fal-bria",
            },
            headers={"X-Fal-Key": FAL_KEY},
            timeout=60,
        )
        assert inline.status_code == 200 and inline.headers["x-rmbg-cached"] == "true"  # same pixels: no new call
        assert posts(fal) == 1


def test_the_page_url_box_keeps_the_fetched_image(monkeypatch, tmp_path):
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.remove import actions
    from tests.support.fetch import PNG, serving

    with serving() as server:
        app = App.create(store=OutputStore(tmp_path))
        with pytest.raises(Exception, match="loopback address"):
            actions.image_from_url(server.url("/img.png"), app)
        monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
        path = actions.image_from_url(server.url("/text-png"), app)
        assert path.name == "text-png.png" and path.read_bytes() == PNG
        with pytest.raises(Exception, match="Paste an http"):
            actions.image_from_url("photo.jpg", app)


def test_an_image_sent_without_a_file_name_is_told_how_to_send_it(url, fakes):
    """httpx and requests leave out filename= for an empty name: the part reaches the server as a text field."""
    fal, _ = fakes
    answer = httpx.post(url, files={"image": ("", png(7), "image/png")}, headers={"X-Fal-Key": FAL_KEY}, timeout=60)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "The image field came without a file name, so it was read as text, not as a file: send it with one "
        "(curl -F image=@photo.jpg; Python's httpx or requests: files={'image': ('photo.jpg', data)})."
    )
    assert posts(fal) == 0


@pytest.mark.parametrize(
    "fault, op, status, cost, sent",
    [
        ("drop", "submit", 502, "0.018", 1),  # it left, no answer: may have been billed, not sent again
        ("rate-limit", "status", 429, "0.018", 1),  # accepted, then its polls refused: counted
        ("rate-limit", "submit", 429, None, 4),  # refused each of its 4 attempts: nothing counted, no cost told
    ],
)
def test_a_failed_paid_call_tells_what_it_counted_against_the_caps(url, fakes, fault, op, status, cost, sent):
    """A REST client reads what a failed call counted from the same headers a result carries
    (the page shows it in its spending line); a call nothing was counted for says nothing."""
    fal, _ = fakes
    fal.inject(fault, op=op, times=9)
    answer = call(url, png(71 + sent), provider="fal-bria")
    assert answer.status_code == status and posts(fal) == sent
    assert answer.headers.get("x-rmbg-cost-usd") == cost
    assert answer.headers.get("x-rmbg-cost-source") == (cost and "may have been billed")
