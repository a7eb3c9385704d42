"""The render options, declared once: how a matte becomes what a person gets.

Each door's spelling of them is generated from `OPTIONS` (a clip's from `VIDEO`): the command
line's flags (rmbg.cli.choosing), the REST models (rmbg.webapp.rest.types), the page's form fields
and controls and the MCP tool's arguments (rmbg.webapp.ui.forms, .controls), the Python keywords
(`RenderKeywords`, read by rmbg.result.render_options). An option is declared here and done where
its work is (rmbg.types.RenderOptions, rmbg.image.compose, rmbg.image.framing).

One name each, in every door; older spellings stay accepted where people use them (`old`):
`refine_foreground=` (with a DeprecationWarning), `--refine-edges`, and the page's named-API
parameter `refine_edges` (a gradio parameter has one name). Plain data, stdlib only: `import rmbg`
and the lowest modules (rmbg.wording) read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Door = Literal["python", "cli", "rest", "mcp", "page"]
Kind = Literal["text", "flag", "choice", "size"]
ALL: frozenset[Door] = frozenset({"python", "cli", "rest", "mcp", "page"})


@dataclass(frozen=True)
class Option:
    """One render option.

    name: its one name; kind: "flag", "choice" (of `choices`), "size" (text or a number) or "text",
        checked as such in every door; default: what leaving it out means everywhere.
    help: the CLI's help; said: the REST and MCP schemas' (py, tool: Python's and MCP's, where other).
    label: the page's; group: "look" or "framing" (a framing option that does not `frames` needs one
        that does: a margin needs crop or a canvas); doors: where it is offered.
    flag: the CLI spelling when not derived (--name-with-dashes; --no-name for a flag on by default);
        short, metavar, cli_choices (where the CLI's differ: jpg, an extension).
    page_value: the page control's first value, shown: a program's text field's, where not `default`;
        suggestions: a menu's entries (others can be typed); elem_id, width: the control's.
    old: older spellings still accepted, by door; check: the name of its kind of value where not the
        name (an image's format and a clip's are two kinds).
    takes, numbers: a size's values as a value of the wrong kind is told them ("margin must be
        {takes}, got ..."), and whether a bare number is one (a margin's; a canvas is text).
    """

    name: str
    kind: Kind
    default: Any
    help: str
    said: str
    label: str = ""
    group: Literal["look", "framing"] = "look"
    frames: bool = False
    doors: frozenset[Door] = ALL
    choices: tuple[str, ...] = ()
    flag: str = ""
    short: str = ""
    metavar: str | None = None
    cli_choices: tuple[str, ...] = ()
    page_value: Any = None
    shown: Any = None
    suggestions: tuple[str, ...] = ()
    elem_id: str = ""
    width: int | None = None
    old: Mapping[str, str] = field(default_factory=dict)
    py: str = ""
    tool: str = ""
    check: str = ""
    takes: str = ""
    numbers: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        """The command line's spellings, the first the one to use."""
        if self.flag:
            main = self.flag
        elif self.kind == "flag" and self.default is True:
            main = "--no-" + self.name.replace("_", "-")
        else:
            main = "--" + self.name.replace("_", "-")
        return tuple(s for s in (main, self.short, self.old.get("cli", "")) if s)

    @property
    def page_name(self) -> str:
        """The page's named-API parameter (the name, unless an older one is kept there)."""
        return self.old.get("page", self.name)

    @property
    def control_id(self) -> str:
        return self.elem_id or self.name.replace("_", "-")

    @property
    def first_value(self) -> Any:
        """The page control's first value."""
        return self.default if self.page_value is None else self.page_value


OPTIONS: tuple[Option, ...] = (
    Option(
        "background",
        "text",
        None,
        "background: '#RRGGBB', a CSS name, 'r,g,b', an image path or URL",
        '"transparent", a colour ("white", "#ff0000"), or "image" with background_image.',
        "Background",
        flag="--bg",
        metavar="COLOUR|IMAGE",
        shown="transparent",
        tool='"transparent", or a colour for the new background ("white", "#f4f4f4").',
        py='None (transparent), a colour ("#RRGGBB", a CSS name, an RGB tuple) or a PIL image (fitted to cover).',
    ),
    Option(
        "mask_only",
        "flag",
        False,
        "write the alpha matte itself (greyscale)",
        "The black-and-white mask itself (white = kept).",
        "Mask only",
        width=120,
    ),
    Option(
        "clean_edges",
        "flag",
        False,
        "clean edge colours: estimate the foreground colour of soft edges (hair) so the old background does not show",
        "On a colour or an image too, the subject's colour estimated at soft edges (clean edges; a cut-out "
        "has it unless edge_colours is false).",
        "Clean edges",
        doors=ALL - {"mcp"},
        elem_id="refine-edges",
        width=120,
        old={"python": "refine_foreground", "cli": "--refine-edges", "page": "refine_edges"},
    ),
    Option(
        "edge_colours",
        "flag",
        True,
        "cut-outs keep the photo's colours at soft edges, as rembg writes them (faster; the old background "
        "tints hair); default: the subject's colour is estimated there",
        "A transparent cut-out estimates the subject's colour at soft edges (default true); false keeps the "
        "photo's colours there (faster; the edges keep the old background's tint).",
        doors=frozenset({"python", "cli", "rest"}),
    ),
    Option(
        "format",
        "choice",
        "png",
        "output format (default png)",
        "Output format; png and webp keep transparency.",
        "Format",
        choices=("png", "webp", "jpeg"),
        doors=ALL - {"python"},  # a Result is encoded by save(path, fmt) / encode(fmt)
        short="-f",
        cli_choices=("png", "webp", "jpg"),
    ),
    Option(
        "crop",
        "flag",
        False,
        "crop to the subject (alpha >= 16 of 255) plus --margin",
        "Crop to the subject (plus margin).",
        "Crop to subject",
        group="framing",
        frames=True,
        width=120,
        py="True crops to the subject plus the margin (a product photo's frame; a new frame costs nothing).",
    ),
    Option(
        "canvas",
        "size",
        None,
        "place the subject on a canvas: a size (2000x2000: scaled to fit inside the margins) "
        "or an aspect (1:1: the crop widened to it)",
        '"none", a size such as "2000x2000" or an aspect such as "1:1".',
        "Canvas (size or aspect)",
        group="framing",
        frames=True,
        metavar="WxH|W:H",
        page_value="none",
        shown="none",
        suggestions=("none", "1:1", "4:5", "3:2", "2000x2000", "1600x1600", "1000x1000"),
        width=140,
        py='"2000x2000" places the subject on exactly that size, "1:1" widens the crop to that aspect; (w, h) '
        "is a size.",
        takes="text: 'none', a size such as '2000x2000' or an aspect such as '1:1'",
    ),
    Option(
        "margin",
        "size",
        None,
        "space around the subject with --crop / --canvas: 10%% (of the subject's longer side; of "
        "the canvas's shorter side for a WxH canvas) or pixels (40px); default 0",
        'Space around the subject with crop or canvas: "10%" or "40px".',
        "Margin (% or px)",
        group="framing",
        metavar="N%|Npx",
        page_value="5%",
        shown="0",
        width=100,
        py='Space around the subject with crop or canvas: "10%", "40px", 40 (pixels) or a fraction (0.1).',
        takes="a size such as '10%' or '40px', or a number of pixels",
        numbers=True,
    ),
    Option(
        "align",
        "choice",
        None,
        "subject centred (default) or on the bottom margin",
        '"center", or "bottom" (the subject stands on the bottom margin).',
        "Subject position",
        group="framing",
        choices=("center", "bottom"),
        page_value="center",
        shown="center",
        width=140,
    ),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# A clip's settings (rmbg.video.remove_video's keywords of the same names): the background, drawn
# into an mp4, and the format, which the command line also reads from -o's extension; the sound
# and the temporal filter on the command line.
VIDEO: tuple[Option, ...] = (
    Option(
        "background",
        "text",
        None,
        "background for mp4: '#RRGGBB', a CSS name, 'r,g,b', an image",
        '"transparent", a colour ("white", "#00b140"; drawn into an mp4), or "image".',
        "Background",
        doors=frozenset({"cli", "rest", "page"}),
        flag="--bg",
        metavar="COLOUR|IMAGE",
    ),
    Option(
        "format",
        "choice",
        None,
        "webm (transparent), mov (ProRes 4444), mp4 (on --bg, white by default), matte (the alpha as MP4), "
        "gif, webp; default: -o's extension, else webm (mp4 with --bg)",
        "webm (VP9 with alpha; the default), mov (ProRes 4444 with alpha), mp4 (on the background, "
        "white by default), matte (the alpha as an mp4), gif, webp.",
        "Format",
        doors=frozenset({"cli", "rest", "page"}),
        choices=("webm", "mov", "mp4", "matte", "gif", "webp"),
        check="video format",
        short="-f",
        page_value="webm",
    ),
    Option(
        "audio",
        "flag",
        True,
        "drop the sound (default: kept in webm, mov, mp4)",
        "Keep the clip's sound (webm, mov, mp4).",
        doors=frozenset({"cli"}),
    ),
    Option(
        "smooth",
        "flag",
        True,
        "no temporal smoothing: each frame's matte as it comes",
        "Smooth the mattes over time (the temporal filter).",
        doors=frozenset({"cli"}),
    ),
)
FRAMING_TITLE = "Product photo: crop and canvas"  # the page's accordion of the framing options


def at(
    door: Door | None = None, group: str | None = None, among: tuple[Option, ...] | None = None
) -> tuple[Option, ...]:
    """The options `door` offers (every door's: None), of one group if given, in declaration order;
    an image's (OPTIONS), or those `among` (VIDEO: a clip's)."""
    return tuple(
        o
        for o in (OPTIONS if among is None else among)
        if (door is None or door in o.doors) and (group is None or o.group == group)
    )


def video(name: str) -> Option:
    """A clip's setting by name."""
    return next(o for o in VIDEO if o.name == name)


def framing() -> tuple[Option, ...]:
    """The framing options (rmbg.image.framing.framing_of's keywords)."""
    return tuple(o for o in OPTIONS if o.group == "framing")


def label(name: str) -> str:
    """An option's label on the page, without its aside ("Canvas (size or aspect)" -> "Canvas")."""
    return BY_NAME[name].label.split(" (")[0] if name in BY_NAME else name


class Rerender(TypedDict, total=False):
    """The render options as Python keywords but the background (Result.render takes it first).

    Declared beside OPTIONS, which says what each means (tests/test_options.py holds the two equal);
    refine_foreground is clean_edges' older name, accepted with a DeprecationWarning.
    """

    mask_only: bool
    clean_edges: bool
    edge_colours: bool
    crop: bool
    canvas: str | tuple[int, int] | None
    margin: str | int | float | None
    align: str | None
    refine_foreground: bool


class RenderKeywords(Rerender, total=False):
    """Rerender's keywords and the background (remove_background's keywords)."""

    background: Any


def python_help(indent: str = "    ") -> str:
    """The render keywords as docstring lines (remove_background's and Result.render's)."""
    lines = [f"{indent}{o.name}: {o.py or o.said} Default {o.default!r}." for o in at("python")]
    return "\n".join(lines)
