"""The app as an MCP server, driven by the official `mcp` Python client over
streamable HTTP: list the tools, call removal on an image, read the result.
Paid calls are counted at the fake fal server."""

from __future__ import annotations

import base64
import dataclasses
import io
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.photoroom import TEST_KEY as PHOTOROOM_KEY  # noqa: E402
from tests.fakes.photoroom import PhotoroomFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve  # noqa: E402
from tests.support.mcp import data_uri, session_run  # noqa: E402
from tests.test_background_colour_alpha import refusal  # noqa: E402

pytest.importorskip("mcp")


@pytest.fixture(scope="module")
def photoroom():
    with PhotoroomFake() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(photoroom):
    with FalFake() as fal, RunwareFake() as runware:
        config = app_config(fal, runware)
        providers = {**config.provider_config, "photoroom": {"base_url": photoroom.url}}
        with serve(dataclasses.replace(config, provider_config=providers)) as url:
            yield url, fal


def test_one_tool_described_for_an_assistant(served):
    url, _ = served

    async def work(session):
        return (await session.list_tools()).tools

    tools = session_run(url, work)
    assert [t.name for t in tools] == ["remove_background"]  # the page's session endpoints are no tools
    tool = tools[0]
    assert tool.description.startswith("Remove the background of a photo")
    props = tool.inputSchema["properties"]
    assert "data: URI" in props["image"]["description"]
    assert "fal-bria $0.018" in props["provider"]["description"] and props["provider"]["default"] == "u2netp"
    assert props["canvas"]["default"] == "none" and "2000x2000" in props["canvas"]["description"]
    assert tool.inputSchema["required"] == ["image"]
    # Each description whole, however many lines the docstring gives it (gradio reads one line an argument).
    cut = {name: p["description"] for name, p in props.items() if not p["description"].endswith(".")}
    assert cut == {}
    assert props["cpu"]["description"].endswith(
        'what a "GPU time is used up" refusal suggests, with the provider it names).'
    )
    assert props["escalate"]["description"].endswith("the photo goes to it too (paid as above when hosted).")
    assert 'ends "-watermarked" when the vendor gave it free' in tool.description  # Returns: no commas put in


def test_removal_through_mcp_returns_the_image_and_its_cost(served):
    url, fal = served
    fal.reset()

    async def work(session):
        return await session.call_tool(
            "remove_background",
            {
                "image": data_uri(EXAMPLE),
                "provider": "fal-bria",
                "fal_key": FAL_KEY,
                "canvas": "300x200",
                "background": "white",
                "format": "png",
            },
        )

    result = session_run(url, work)
    assert not result.isError
    images = [c for c in result.content if c.type == "image"]
    texts = [c.text for c in result.content if c.type == "text"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    out = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert out.size == (300, 200) and out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)
    assert (
        len(texts) == 1 and texts[0].startswith("Image URL: " + url) and texts[0].endswith("/image-fal-bria-nobg.png")
    )
    assert sum(call.method == "POST" for call in fal.calls) == 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"image": "not a picture"}, "Give the image as an http(s) URL or a data: URI (data:image/png;base64,...)."),
        ({"background": "zzz"}, "'zzz' is not a colour"),
        ({"background": "#ff000080"}, refusal("#ff000080")),
        ({"background": "rgba(255, 0, 0, 0.5)"}, refusal("rgba(255, 0, 0, 0.5)")),
        ({"provider": "fal-bria"}, "fal-bria needs an API key"),
        # framing values are checked as REST, the CLI and Python check them (they were dropped without a word)
        (
            {"margin": "10%"},
            "A margin or alignment needs crop or a canvas. Send crop=true or a canvas, or leave out margin.",
        ),
        (
            {"align": "bottom"},
            "A margin or alignment needs crop or a canvas. Send crop=true or a canvas, or leave out align.",
        ),
        ({"margin": "-5%"}, "Margin '-5%' is negative: use 0 or more, such as '10%' or '40px'."),
    ],
)
def test_mcp_errors_are_readable_and_cost_nothing(served, arguments, message):
    url, fal = served
    fal.reset()

    async def work(session):
        return await session.call_tool("remove_background", {"image": data_uri(EXAMPLE), **arguments})

    result = session_run(url, work)
    assert result.isError and message in result.content[0].text
    assert not fal.calls


def test_a_photoroom_sandbox_result_says_watermarked_in_its_name_and_costs_nothing(served, photoroom):
    url, _ = served
    photoroom.reset()

    async def work(session):
        arguments = {"image": data_uri(EXAMPLE), "provider": "photoroom", "photoroom_key": "sandbox_" + PHOTOROOM_KEY}
        return await session.call_tool("remove_background", arguments)

    result = session_run(url, work)
    texts = [c.text for c in result.content if c.type == "text"]
    assert not result.isError and texts[0].endswith("/image-photoroom-watermarked-nobg.png"), texts
    assert photoroom.sandbox_calls == 1 and photoroom.images_billed == 0


def size_over_mcp(url: str, **arguments) -> tuple[int, int]:
    async def work(session):
        image = {"image": data_uri(EXAMPLE), "provider": "u2netp"}
        return await session.call_tool("remove_background", {**image, **arguments})

    result = session_run(url, work)
    assert not result.isError, result.content
    image = next(c for c in result.content if c.type == "image")
    return Image.open(io.BytesIO(base64.b64decode(image.data))).size


def size_over_rest(url: str, **fields) -> tuple[int, int]:
    body = {"url": data_uri(EXAMPLE), "provider": "u2netp", **fields}
    answer = httpx.post(url + "api/remove", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.content)).size


@pytest.mark.parametrize("number, text", [(0.1, "10%"), (40, "40px")])
def test_a_margin_sent_as_a_json_number_frames_as_rest_reads_it(served, u2netp_path, number, text):
    """A number under 1 is a fraction and a whole number is pixels, at every door: the MCP tool turned
    0.1 into the text "0.1" and refused it as "not a whole number of pixels"."""
    url, _ = served
    framed = {
        "mcp number": size_over_mcp(url, crop=True, margin=number),
        "mcp text": size_over_mcp(url, crop=True, margin=text),
        "rest number": size_over_rest(url, crop=True, margin=number),
        "rest text": size_over_rest(url, crop=True, margin=text),
    }
    assert len(set(framed.values())) == 1, framed
    assert framed["mcp number"] != size_over_rest(url, crop=True)  # the margin was applied
