"""A background colour with an alpha: rmbg.image.compose.parse_colour takes it only when it is opaque
and refuses a see-through one in one sentence, for every door (Python here, the CLI's `main` as
`rmbg` runs it here, REST in tests/test_rest.py, MCP in tests/test_mcp.py); the alpha is never dropped in silence."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import rmbg
from rmbg.cli.main import main
from rmbg.errors import InvalidImageError
from rmbg.image.compose import parse_colour
from rmbg.wording import other_digits
from tests.support.providers import CountingProvider

# (a see-through colour as each door takes it, the CLI's --bg spelling of it)
SEE_THROUGH = [
    ("#ff000080", "#ff000080"),
    ("#f008", "#f008"),
    ("rgba(255, 0, 0, 0.5)", "rgba(255, 0, 0, 0.5)"),
    ("rgba(255, 0, 0, 128)", "rgba(255, 0, 0, 128)"),
    ((255, 0, 0, 128), "255,0,0,128"),
    ((255, 0, 0, 0), "255,0,0,0"),
]
OPAQUE = ["#ff0000ff", "#f00f", "rgba(255, 0, 0, 1)", "rgba(255, 0, 0, 255)", "rgb(255, 0, 0)", (255, 0, 0, 255)]


def refusal(value: object) -> str:
    """The one sentence every door refuses a see-through background colour with."""
    return (
        f"{value!r} is see-through, and a background is always opaque: give the colour as #rrggbb, "
        "or ask for the transparent cut-out instead."
    )


def half_black() -> Image.Image:
    """Black on the left (CountingProvider's alpha, the red channel: 0), white on the right (255)."""
    image = Image.new("RGB", (8, 4), (0, 0, 0))
    image.paste((255, 255, 255), (4, 0, 8, 4))
    return image


@pytest.mark.parametrize("value", [given for given, _ in SEE_THROUGH])
def test_parse_colour_refuses_a_see_through_colour_in_one_sentence(value):
    with pytest.raises(InvalidImageError) as refused:
        parse_colour(value)
    assert str(refused.value) == refusal(value)
    assert type(refused.value).__name__ == "SeeThroughColour"


@pytest.mark.parametrize("value", OPAQUE)
def test_an_opaque_alpha_is_the_colour_itself(value):
    assert parse_colour(value) == (255, 0, 0)


@pytest.mark.parametrize("value", [given for given, _ in SEE_THROUGH])
def test_the_python_api_refuses_a_see_through_background_before_any_call(value):
    provider = CountingProvider()
    with pytest.raises(InvalidImageError) as refused:
        rmbg.remove_background(half_black(), provider, background=value, cache=None)
    assert str(refused.value) == refusal(value) and provider.calls == 0
    result = rmbg.remove_background(half_black(), provider, cache=None)
    with pytest.raises(InvalidImageError) as again:
        result.render(background=value)
    assert str(again.value) == refusal(value)


@pytest.mark.parametrize("value", OPAQUE)
def test_the_python_api_draws_an_opaque_alpha_as_an_opaque_background(value):
    out = rmbg.remove_background(half_black(), CountingProvider(), background=value, cache=None).image
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 0, 0) and out.getpixel((7, 3)) == (255, 255, 255)


def cli(tmp: Path, capsys, *args: str) -> tuple[int, str]:
    """`rmbg remove in.png -o out --provider u2netp ARGS` in `tmp`, as the console script runs it: its exit
    status (a usage error's SystemExit included) and what it wrote to stderr."""
    here = os.getcwd()
    os.chdir(tmp)
    try:
        status = main(["remove", "in.png", "-o", "out", "--provider", "u2netp", *args])
    except SystemExit as exit:
        status = exit.code
    finally:
        os.chdir(here)
    return status, capsys.readouterr().err


def test_the_cli_refuses_a_see_through_bg_with_the_same_sentence_as_a_usage_error(tmp_path, u2netp_path, capsys):
    half_black().resize((64, 32)).save(tmp_path / "in.png")
    for value, spelled in SEE_THROUGH:
        status, err = cli(tmp_path, capsys, "--bg", spelled)
        assert status == 2, err  # 'r,g,b,a' is read as the tuple, and shown as one
        assert err.endswith(f"rmbg: error: --bg {refusal(value)}\n"), err
        assert not (tmp_path / "out").exists()


def test_the_cli_draws_an_opaque_alpha_as_the_opaque_colour(tmp_path, u2netp_path, capsys):
    half_black().resize((64, 32)).save(tmp_path / "in.png")
    written = {}
    for spelled in ("red", "#ff0000ff", "rgba(255, 0, 0, 1)", "255,0,0,255"):
        status, err = cli(tmp_path, capsys, "--bg", spelled, "--overwrite")
        assert status == 0, err
        with Image.open(tmp_path / "out" / "in.png") as out:
            assert out.mode == "RGB"
            written[spelled] = out.tobytes()
    assert len(set(written.values())) == 1  # each is the same opaque red as 'red'


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"\A#[0-9a-fA-F]{3,8}\Z"),
        st.from_regex(r"\Argba?\(\s?[\d.]{1,6},\s?[\d.]{1,6},\s?[\d.]{1,6}(,\s?[\d.]{1,5})?\)\Z"),
        st.lists(st.integers(-5, 300), max_size=5).map(tuple),
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
        st.lists(st.floats(allow_nan=True), max_size=4).map(tuple),
    )
)
@example("#ff000080")
@example("rgba(1, 2, 3, .5)")
@example("rgb(., ., .)")
def test_parse_colour_gives_an_opaque_rgb_or_its_documented_error(value):
    """Anything a caller may give is an (r, g, b) of whole numbers 0-255, or an InvalidImageError: the
    alpha of a 4-tuple or '#rrggbbaa' is never dropped unless it is 255 (ff)."""
    try:
        colour = parse_colour(value)
    except InvalidImageError as exc:
        said = str(exc)
        digits = isinstance(value, str) and said == other_digits("Background colour", value)  # "２５５", "᪀"
        assert digits or said == refusal(value) or said.startswith(f"{value!r} is not a colour: "), said
        return
    assert isinstance(colour, tuple) and len(colour) == 3
    assert all(type(c) is int and 0 <= c <= 255 for c in colour)
    hex8 = isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{8}", value.strip())
    if isinstance(value, tuple) and len(value) == 4 or hex8:
        last = value[3] if isinstance(value, tuple) else int(value.strip()[7:], 16)
        assert last == 255, f"{value!r}'s alpha was dropped"


@pytest.mark.parametrize("typed", ["#ff000080", "ff000080", "#f008", "f008", "rgba(255, 0, 0, 0.5)"])
def test_the_pages_hex_field_leaves_the_swatch_and_says_the_shared_sentence(typed):
    """gradio's ColorPicker sends '#rrggbb' only (tinycolor's toHexString, in gradio 6's frontend); the Hex
    field beside it is where an alpha can be typed: the swatch does not jump to the colour without it, and
    the field says why in the words every door says (not "is not a colour": it is one, see-through)."""
    from rmbg.image.compose import SeeThroughColour, parse_colour
    from rmbg.webapp.ui.common import hex_typed

    swatch, field = hex_typed(typed)
    assert swatch == {"__type__": "update"}  # gr.skip(): the swatch keeps its colour
    with pytest.raises(SeeThroughColour) as refused:
        parse_colour(typed if typed.startswith(("#", "rgba")) else "#" + typed)
    assert field["info"] == str(refused.value)


def test_the_pages_hex_field_takes_an_opaque_alpha_and_words_what_is_no_colour():
    from rmbg.webapp.ui.common import hex_typed

    assert hex_typed("#ff0000ff")[0] == hex_typed("ff0000ff")[0] == hex_typed("#f00f")[0] == "#ff0000"
    swatch, field = hex_typed("#12345z")
    assert swatch == {"__type__": "update"}
    assert field["info"] == "'#12345z' is not a colour: write #RRGGBB, #RGB or a colour name (white, navy…)"
