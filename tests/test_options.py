"""The render options are declared once (rmbg.options) and every door is generated from them: the
command line's flags, the REST request model, the page's form fields and controls, the MCP tool's
arguments and the Python keywords offer exactly the declared options, and an option added to the
declaration shows up in each of them with nothing else written."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
import warnings
from dataclasses import dataclass

import pytest
from PIL import Image

import rmbg.options
from rmbg.options import BY_NAME, OPTIONS, Option, RenderKeywords, at, framing
from rmbg.result import render_options
from rmbg.types import RenderOptions

SHADOW = Option("shadow", "flag", False, "add a soft shadow", "A soft shadow under the subject.", "Shadow")


def names(door: str) -> list[str]:
    return [o.name for o in at(door)]  # type: ignore[arg-type]


def render_flags() -> dict[str, argparse.Action]:
    """The remove command's render flags, by dest."""
    from rmbg.cli.choosing import add_render_flags

    parser = argparse.ArgumentParser()
    add_render_flags(parser)
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def test_the_command_line_offers_exactly_the_declared_options_with_their_spellings():
    from rmbg.cli.main import build_parser

    remove = build_parser()._subparsers._group_actions[0].choices["remove"]  # type: ignore[union-attr]
    flags = {a.dest: a for a in remove._actions}
    assert set(names("cli")) <= set(flags)
    assert {name: flags[name].option_strings for name in names("cli")} == {
        "background": ["--bg"],
        "mask_only": ["--mask-only"],
        "clean_edges": ["--clean-edges", "--refine-edges"],
        "edge_colours": ["--no-edge-colours"],
        "format": ["--format", "-f"],
        "crop": ["--crop"],
        "canvas": ["--canvas"],
        "margin": ["--margin"],
        "align": ["--align"],
    }
    assert flags["format"].choices == ["png", "webp", "jpg"] and flags["format"].default == "png"
    assert flags["align"].choices == ["center", "bottom"] and flags["align"].default is None
    assert {name: flags[name].help for name in names("cli")} == {o.name: o.help for o in at("cli")}
    args = remove.parse_args(["x", "-o", "out", "--refine-edges", "--no-edge-colours", "--margin", "5%"])
    assert (args.clean_edges, args.edge_colours, args.margin) == (True, False, "5%")


def test_the_rest_model_offers_exactly_the_declared_options_between_its_own_fields():
    from rmbg.webapp.rest.types import FIELDS, Fields, fields_of

    assert FIELDS == ("provider", *names("rest"), "url", "cpu", "escalate", "escalate_below")
    properties = Fields.model_json_schema()["properties"]
    assert {name: properties[name]["description"] for name in names("rest")} == {o.name: o.said for o in at("rest")}
    assert properties["align"]["enum"] == ["center", "bottom"]
    assert properties["format"]["enum"] == ["png", "webp", "jpeg"]
    with pytest.raises(Exception, match=r"crop must be true or false, got \[1\]"):
        fields_of({"crop": [1]})


def test_the_page_and_the_tool_offer_exactly_the_declared_options():
    import gradio as gr

    from rmbg.webapp.ui.controls import framing_controls, look_controls, tool_arguments, tool_controls
    from rmbg.webapp.ui.forms import McpForm, RemoveForm, RerenderForm

    page = [o.page_name for o in at("page")]
    assert page == ["background", "mask_only", "refine_edges", "format", "crop", "canvas", "margin", "align"]
    for form in (RemoveForm, RerenderForm):  # in the named API's order: the format before the clean edges
        assert [n for n in form.names() if n in page] == [*page[:2], page[3], page[2], *page[4:]]
    tool_names = ["background", "mask_only", "format", "crop", "canvas", "margin", "align"]
    assert names("mcp") == tool_names
    assert [n for n in McpForm.names() if n in BY_NAME] == [*tool_names[:2], *tool_names[3:], "format"]
    with gr.Blocks():
        shown = {**look_controls({"background"}), **framing_controls()}
        tool = tool_controls()
    assert list(shown) == page[1:]
    assert {n: (c.label, c.elem_id) for n, c in shown.items()} == {
        o.page_name: (o.label, o.control_id) for o in at("page")[1:]
    }
    assert (shown["margin"].value, shown["canvas"].value, shown["align"].value) == ("5%", "none", "center")
    assert list(tool) == names("mcp")
    assert {n: c.value for n, c in tool.items()} == {
        "background": "transparent",
        "mask_only": False,
        "format": "png",
        "crop": False,
        "canvas": "none",
        "margin": "0",
        "align": "center",
    }
    lines = tool_arguments(McpForm.names(), "").splitlines()
    assert [line.split(":")[0] for line in lines] == [n for n in McpForm.names() if n in names("mcp")]


def test_the_python_keywords_are_exactly_the_declared_options():
    declared = set(typing.get_type_hints(RenderKeywords))
    assert declared == {*names("python"), "refine_foreground"}  # and clean_edges' older name
    with pytest.raises(TypeError, match="unexpected keyword argument.s. shade: use background, mask_only"):
        render_options({"shade": True})
    with pytest.warns(DeprecationWarning, match="refine_foreground= is now called clean_edges="):
        assert render_options({"refine_foreground": True}).clean_edges is True
    made = render_options({"crop": True, "margin": "10%", "align": "bottom", "edge_colours": False})
    assert (made.framing.align, made.framing.margin, made.edge_colours) == ("bottom", 0.1, False)  # type: ignore[union-attr]
    assert [o.name for o in framing()] == ["crop", "canvas", "margin", "align"]
    import rmbg

    for name in names("python"):
        assert f"    {name}: " in (rmbg.remove_background.__doc__ or "")


def test_the_documented_python_keywords_still_work():
    import rmbg
    from tests.support.providers import CountingProvider

    image = Image.new("RGB", (20, 16))
    image.paste((255, 0, 0), (5, 4, 10, 8))  # the subject: alpha is the red channel
    result = rmbg.remove_background(image, CountingProvider(), cache=None, crop=True, margin=2, align="bottom")
    assert result.image.size == (5 + 4, 4 + 4)  # cropped to the subject plus the margin
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result.render("white", clean_edges=True).image.mode == "RGB"
    with pytest.warns(DeprecationWarning):
        result.render("white", refine_foreground=True)


@dataclass(frozen=True)
class WithShadow(RenderOptions):
    """Where a new option would be done: RenderOptions with its field (rmbg.types) and its work (compose)."""

    shadow: bool = False


@pytest.fixture
def shadow(monkeypatch):
    """rmbg.options with one more option, and RenderOptions with its field, in every door that builds one."""
    monkeypatch.setattr(rmbg.options, "OPTIONS", (*OPTIONS, SHADOW))
    monkeypatch.setitem(rmbg.options.BY_NAME, "shadow", SHADOW)
    for where in ("rmbg.result", "rmbg.cli.choosing", "rmbg.webapp.look"):
        monkeypatch.setattr(f"{where}.RenderOptions", WithShadow)
    return SHADOW


def test_an_option_added_to_the_declaration_shows_up_in_every_door(shadow):
    import gradio as gr

    from rmbg.cli.choosing import render_options as cli_options
    from rmbg.webapp.look import Look
    from rmbg.webapp.rest.routes import look_of
    from rmbg.webapp.rest.types import fields_model, validated
    from rmbg.webapp.ui.controls import framing_controls, look_controls, tool_arguments, tool_controls
    from rmbg.webapp.ui.forms import Form, Looks, with_options

    # the command line: a flag, read into the options
    flags = render_flags()
    assert flags["shadow"].option_strings == ["--shadow"] and flags["shadow"].help == "add a soft shadow"
    args = argparse.Namespace(**{a.dest: a.default for a in flags.values()} | {"shadow": True})
    assert cli_options(args, None, None).shadow is True  # type: ignore[attr-defined]
    # REST: a field with its check and description, read into the Look
    model = fields_model()
    assert model.model_json_schema()["properties"]["shadow"]["description"] == SHADOW.said
    assert list(model.model_fields)[-5:] == ["shadow", "url", "cpu", "escalate", "escalate_below"]
    sent = validated(model, {"shadow": "true"})
    assert look_of(sent, None).options().shadow is True  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="shadow must be true or false"):
        validated(model, {"shadow": [1]})

    # the page and the tool: a form field, a control, an argument with its description
    @with_options("page", after="monthly_volume")
    @dataclass(frozen=True)
    class Page(Form, Looks):
        background: str = "transparent"
        monthly_volume: int | None = None

    assert Page.names()[-1] == "shadow" and Page.checks()["shadow"].kind == "flag"
    assert Page(shadow="true").look().options().shadow is True  # type: ignore[attr-defined,call-arg]
    with gr.Blocks():
        look = look_controls({"background"})
        framed = framing_controls()
        tool = tool_controls()
    assert look["shadow"].label == "Shadow" and "shadow" not in framed
    assert isinstance(tool["shadow"], gr.Checkbox)
    assert tool_arguments(("shadow",), "  ") == "  shadow: A soft shadow under the subject.\n"
    # Python: a keyword, read into the options, and documented
    assert render_options({"shadow": True}).shadow is True  # type: ignore[attr-defined]
    assert Look.of(shadow=True).options().shadow is True  # type: ignore[attr-defined]
    assert "shadow: A soft shadow under the subject." in rmbg.options.python_help()


def test_every_option_is_declared_whole():
    for option in OPTIONS:
        assert option.help and option.said, option.name
        assert option.kind != "choice" or option.choices, option.name
        assert "page" not in option.doors or option.label, option.name
        assert option.default in (None, False, True) or option.default in option.choices, option.name
    assert dataclasses.fields(RenderOptions)  # the options every door builds
    assert {o.name for o in at(group="look")} <= {f.name for f in dataclasses.fields(RenderOptions)}


def test_a_clips_settings_are_declared_once_for_its_doors():
    """rmbg video's flags, POST /api/video's fields and the Video tab's format field are rmbg.options.VIDEO's,
    spelt as remove_video's keywords."""
    import inspect

    from rmbg.cli.main import build_parser
    from rmbg.options import VIDEO
    from rmbg.video.api import remove_video
    from rmbg.webapp.rest.video import VIDEO_FIELDS, VideoFields
    from rmbg.webapp.video.forms import VideoForm, VideoRerenderForm

    video = build_parser()._subparsers._group_actions[0].choices["video"]  # type: ignore[union-attr]
    flags = {a.dest: a.option_strings for a in video._actions}
    assert {o.name: flags[o.name] for o in at("cli", among=VIDEO)} == {
        "background": ["--bg"],
        "format": ["--format", "-f"],
        "audio": ["--no-audio"],
        "smooth": ["--no-smooth"],
    }
    args = video.parse_args(["clip.mp4", "-o", "out.webm", "--no-smooth"])
    assert (args.smooth, args.audio, args.format, args.background) == (False, True, None, None)
    assert VIDEO_FIELDS == ("provider", *(o.name for o in at("rest", among=VIDEO)), "url")
    described = VideoFields.model_json_schema()["properties"]["format"]
    assert described["enum"] == ["webm", "mov", "mp4", "matte", "gif", "webp"]
    for form in (VideoForm, VideoRerenderForm):
        assert form.checks()["format"].schema["enum"] == described["enum"]
    assert {o.name for o in VIDEO} <= set(inspect.signature(remove_video).parameters)


def test_a_size_options_wrong_kind_is_told_what_its_declaration_says_it_takes():
    """A size option's examples for a value of the wrong kind were a second table beside the declaration
    (rmbg.webapp.inputs.SIZES, canvas's and margin's); a size option added here was told a margin's."""
    from rmbg.errors import InvalidRequestError
    from rmbg.webapp.inputs import check_of, kind_of

    frame = Option("frame", "size", None, "a frame", "A frame.", "Frame", takes="a width such as '3px'")
    for option in (*(o for o in OPTIONS if o.kind == "size"), frame):
        check = check_of(kind_of(option))
        assert check is not None and option.takes, option.name
        with pytest.raises(InvalidRequestError) as caught:
            check(option.name, True)
        assert str(caught.value) == f"{option.name} must be {option.takes}, got True."
        assert ({"type": "number"} in check.schema.get("oneOf", [])) is option.numbers, option.name
        if option.numbers:
            check(option.name, 12)  # a bare number is one of its values
        else:
            with pytest.raises(InvalidRequestError, match=re.escape(f"{option.name} must be {option.takes}, got 12.")):
                check(option.name, 12)
    assert [o.name for o in OPTIONS if o.numbers] == ["margin"]
