"""A field's value of the wrong kind, or spelt in digits that are not ASCII, gets the same sentence at
every door (REST, the MCP tool, the Python API), in that field's own words: against the app served on
a real socket (U²-Net-p on this CPU) and through the official MCP client.

- a canvas of the wrong kind was told a margin's examples ("a size such as '10%' or '40px'");
- "１００x１００" (full-width digits) was taken as a 100x100 canvas: \\d and int() read any digit;
- a margin of "-0" was refused while 0, -0 and -0.0 passed;
- the MCP tool's wrong kinds got the MCP SDK's schema words ("'maybe' is not of type 'boolean'");
- every other number a person types (a colour, a fraction, a seed, a count, a volume, SAM points and box,
  an amount of USD, the command line's numbers) was refused in a sentence of its own that did not say
  why ("not a number: '０.５'"), or taken: int() and Decimal() read "２" as 2. Now each field says the
  one sentence (rmbg.wording.number_text) at every door it has.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

import rmbg  # noqa: E402
from rmbg.cli.cascade import fraction  # noqa: E402
from rmbg.cli.main import main  # noqa: E402
from rmbg.errors import RmbgError  # noqa: E402
from rmbg.image.compose import parse_colour  # noqa: E402
from rmbg.image.framing import framing_of  # noqa: E402
from rmbg.webapp.costs import volume_of  # noqa: E402
from rmbg.webapp.remove.marks import prompts_of  # noqa: E402
from rmbg.webapp.replace.replacing import seed_of  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve  # noqa: E402
from tests.support.mcp import data_uri, session_run  # noqa: E402

pytest.importorskip("mcp")
IMAGE = data_uri(EXAMPLE)
CANVAS = "canvas must be text: 'none', a size such as '2000x2000' or an aspect such as '1:1', got {}."
MARGIN = "margin must be a size such as '10%' or '40px', or a number of pixels, got {}."
WIDE = "Canvas '１００x１００' uses full-width digits; type them as 0-9, such as '100x100'."


@pytest.fixture(scope="module")
def base(u2netp_path):
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url:
        yield url


def rest(base: str, **fields) -> httpx.Response:
    return httpx.post(base + "api/remove", json={"url": IMAGE, "provider": "u2netp", **fields}, timeout=120)


def tool(base: str, **arguments) -> tuple[bool, str]:
    """(isError, the first text) of a remove_background call through the MCP client."""

    async def work(session):
        result = await session.call_tool("remove_background", {"image": IMAGE, "provider": "u2netp", **arguments})
        return result.isError, next((c.text for c in result.content if c.type == "text"), "")

    return session_run(base, work)


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"canvas": 1e30}, CANVAS.format("1e+30")),  # was: "Canvas 1e+30 must be (width, height) in whole pixels."
        ({"canvas": True}, CANVAS.format("True")),
        ({"canvas": [100, 100]}, CANVAS.format("[100, 100]")),
        ({"canvas": {"w": 1}}, CANVAS.format("{'w': 1}")),
        ({"crop": True, "margin": [1]}, MARGIN.format("[1]")),
        ({"crop": True, "margin": False}, MARGIN.format("False")),
        ({"canvas": "１００x１００"}, WIDE),  # was a 100x100 canvas (200)
        (
            {"crop": True, "margin": "１０px"},
            "Margin '１０px' uses full-width digits; type them as 0-9, such as '10px'.",
        ),
        ({"crop": True, "margin": "-5%"}, "Margin '-5%' is negative: use 0 or more, such as '10%' or '40px'."),
    ],
)
def test_a_size_field_is_refused_in_its_own_words_over_rest_and_mcp(base, fields, said):
    answer = rest(base, **fields)
    assert (answer.status_code, answer.json()) == (400, {"error": said})
    assert tool(base, **fields) == (True, said)


@pytest.mark.parametrize("margin", ["0", "-0", "+0", "0px", "-0%", 0, -0.0])
def test_a_margin_of_minus_zero_is_zero_as_zero_is(base, margin):
    assert rest(base, crop=True, margin=margin).status_code == 200  # "-0" was refused as no size
    assert framing_of(crop=True, margin=margin).margin == 0


@pytest.mark.parametrize(
    "arguments, said",
    [
        ({"crop": "maybe"}, "crop must be true or false, got 'maybe'."),  # was the SDK's "is not of type 'boolean'"
        ({"mask_only": 5}, "mask_only must be true or false, got 5."),
        ({"cpu": ["yes"]}, "cpu must be true or false, got ['yes']."),
        ({"escalate_below": "abc"}, "escalate_below must be a number from 0 to 1, got 'abc'."),
        ({"escalate_below": "１"}, "escalate_below '１' uses full-width digits; type them as 0-9, such as '1'."),
        ({"provider": ["u2netp"]}, "provider must be text, got a list."),
    ],
)
def test_the_mcp_tool_says_what_rest_says_of_a_value_of_the_wrong_kind(base, arguments, said):
    answer = rest(base, **arguments)
    assert (answer.status_code, answer.json()) == (400, {"error": said})
    assert tool(base, **arguments) == (True, said)


def test_the_mcp_tool_takes_what_rest_takes_in_its_other_spellings(base):
    """A flag as "true"/"no", a number as its text, a margin in pixels as a number: REST takes them; the
    SDK's schema check refused them."""
    for arguments in ({"crop": "true", "margin": 10}, {"mask_only": "no", "escalate_below": "0.5"}):
        assert rest(base, **arguments).status_code == 200
        refused, said = tool(base, **arguments)
        assert not refused and "image-u2netp" in said, said


@pytest.mark.parametrize(
    "read, value",
    [
        (lambda v: framing_of(canvas=v), "１００x１００"),
        (lambda v: framing_of(canvas=v), "１:１"),
        (lambda v: framing_of(crop=True, margin=v), "５%"),
        (parse_colour, "rgb(２５５, 0, 0)"),
        (volume_of, "１０"),
        (seed_of, "４２"),
        (lambda v: prompts_of(v, None), "１２０, ８０"),
        (lambda v: prompts_of(None, v), "1, 2, 3, ４"),
    ],
)
def test_numbers_in_a_visitors_text_are_ascii_digits_only(read, value):
    with pytest.raises(RmbgError):
        read(value)


def test_the_command_lines_fractions_are_ascii_digits_only():
    assert fraction("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        fraction("0.5x")
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        fraction("０.５")
    assert str(caught.value) == "'０.５' uses full-width digits; type them as 0-9, such as '0.5'."


@pytest.mark.parametrize(
    "fields, said",
    [
        (
            {"canvas": "２０００x２０００"},
            "Canvas '２０００x２０００' uses full-width digits; type them as 0-9, such as '2000x2000'.",
        ),
        ({"canvas": "１:１"}, "Canvas '１:１' uses full-width digits; type them as 0-9, such as '1:1'."),
        ({"canvas": "４：５"}, "Canvas '４：５' uses full-width digits; type them as 0-9, such as '4:5'."),
        ({"canvas": "٣٠٠x٢٠٠"}, "Canvas '٣٠٠x٢٠٠' uses digits other than 0-9; type them as 0-9, such as '300x200'."),
        ({"crop": True, "margin": "５%"}, "Margin '５%' uses full-width digits; type them as 0-9, such as '5%'."),
        ({"crop": True, "margin": "4０"}, "Margin '4０' uses full-width digits; type them as 0-9, such as '40'."),
    ],
)
def test_digits_that_are_not_ascii_are_named_as_such_over_rest_and_in_python(base, fields, said):
    """They were told "neither a size nor an aspect" (a margin: "not a size"), which a visitor who typed
    "２０００x２０００" cannot see the reason of."""
    answer = rest(base, **fields)
    assert (answer.status_code, answer.json()) == (400, {"error": said})
    with pytest.raises(RmbgError) as caught:
        rmbg.remove_background(EXAMPLE, "u2netp", **fields)
    assert str(caught.value) == said


def said(field: str, typed: str, value: str) -> str:
    """The one sentence of digits other than 0-9 (rmbg.wording.other_digits), `field` "" at the command
    line, where argparse names the flag."""
    which = "full-width digits" if any("０" <= c <= "９" for c in value) else "digits other than 0-9"
    return f"{field} {value!r}".lstrip() + f" uses {which}; type them as 0-9, such as {typed!r}."


@pytest.mark.parametrize(
    "field, name, value, typed",
    [
        ("background", "Background colour", "rgb(２５５, 0, 0)", "rgb(255, 0, 0)"),  # was "not a colour"
        ("background", "Background colour", "#ff٠٠٠٠", "#ff0000"),
        ("escalate_below", "escalate_below", "０.５", "0.5"),  # was "must be a number from 0 to 1"
        ("escalate_below", "escalate_below", "٠.٥", "0.5"),
    ],
)
def test_a_number_in_other_digits_gets_the_one_sentence_over_rest_mcp_and_python(base, field, name, value, typed):
    sentence = said(name, typed, value)
    answer = rest(base, **{field: value})
    assert (answer.status_code, answer.json()) == (400, {"error": sentence})
    assert tool(base, **{field: value}) == (True, sentence)
    if field == "background":
        with pytest.raises(RmbgError) as caught:
            rmbg.remove_background(EXAMPLE, "u2netp", background=value)
        assert str(caught.value) == sentence


@pytest.mark.parametrize("value", ["０.５", "٠.٥"])
def test_pythons_spending_cap_in_other_digits_gets_the_one_sentence(value):
    with pytest.raises(RmbgError) as caught:  # Decimal() read it as 0.5
        rmbg.cascade([EXAMPLE], "u2netp", "u2netp", max_cost=value)
    assert str(caught.value) == said("max_cost", "0.5", value)


@pytest.mark.parametrize(
    "api, fields, sentence",
    [
        ("/remove", {"monthly_volume": "１０"}, said("Images per month", "10", "１０")),
        ("/remove", {"monthly_volume": "٣"}, said("Images per month", "3", "٣")),
        ("/remove", {"points": "１２０, ８０"}, said("Point", "120, 80", "１２０, ８０")),  # was "write x, y, keep"
        ("/remove", {"box": "٠, ٠, ١٠, ١٠"}, said("Box", "0, 0, 10, 10", "٠, ٠, ١٠, ١٠")),
        ("/replace", {"prompt": "a beach", "seed": "４２"}, said("Seed", "42", "４２")),
        ("/replace", {"prompt": "a beach", "num_images": "٢"}, said("num_images", "2", "٢")),
    ],
)
def test_the_pages_numbers_in_other_digits_get_the_one_sentence(base, api, fields, sentence):
    from gradio_client import Client, handle_file

    client = Client(base, verbose=False)
    with pytest.raises(Exception) as caught:
        client.predict(image=handle_file(str(EXAMPLE)), api_name=api, **fields)
    assert str(caught.value) == sentence


@pytest.mark.parametrize(
    "argv, sentence",
    [
        (["remove", "--escalate", "u2netp", "--escalate-below", "０.５"], said("", "0.5", "０.５")),
        (["remove", "--max-cost", "٠.٥"], said("", "0.5", "٠.٥")),  # was taken as 0.5
        (["remove", "--jobs", "２"], said("", "2", "２")),  # was taken as 2
        (["replace", "--seed", "４２"], said("", "42", "４２")),
        (["replace", "--num-images", "٢"], said("", "2", "٢")),
        (["remove", "--bg", "rgb(２５５,0,0)"], said("--bg", "rgb(255,0,0)", "rgb(２５５,0,0)")),  # "not a colour"
        (["remove", "--canvas", "２０００x２０００"], said("Canvas", "2000x2000", "２０００x２０００")),
    ],
)
def test_the_command_lines_numbers_in_other_digits_get_the_one_sentence(argv, sentence, tmp_path, capsys):
    code = main([*argv, "--provider", "u2netp", "-o", str(tmp_path / "out"), str(EXAMPLE)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert (code, last.endswith(f": {sentence}")) == (2, True), last
    assert not Path(tmp_path / "out").exists() or not any(Path(tmp_path / "out").iterdir())
