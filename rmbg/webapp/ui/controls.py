"""The render options' controls, made from their one declaration (rmbg.options): the Remove tab's
look and framing controls, the MCP tool's arguments, and the page's CSS for its option radios.

A flag is a checkbox; a choice a radio on the page (a text box for a program); a size a text
box, or a menu that takes any typed value where the option suggests some. Each is named and
labelled as declared, so a new render option appears on the page and in the tool by itself.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...options import FRAMING_TITLE, Option, at


def page_control(option: Option) -> Any:
    """`option`'s control on the page: its label, first value, id and width as declared."""
    common: dict[str, Any] = {"label": option.label, "elem_id": option.control_id}
    if option.width is not None:
        common["min_width"] = option.width
    if option.kind == "flag":
        return gr.Checkbox(bool(option.first_value), **common)
    if option.kind == "choice":
        return gr.Radio(list(option.choices), value=option.first_value, **common)
    if option.suggestions:
        return gr.Dropdown(list(option.suggestions), value=option.first_value, allow_custom_value=True, **common)
    return gr.Textbox(option.first_value, max_lines=1, **common)


def look_controls(declared: set[str]) -> dict[str, Any]:
    """The page's look options but those in `declared` (which the tab lays out itself), by form field:
    the flags in a row, the choices under them."""
    look = [o for o in at("page", "look") if o.name not in declared]
    made: dict[str, Any] = {}
    with gr.Row(elem_id="look-row"):
        made.update({o.page_name: page_control(o) for o in look if o.kind == "flag"})
    made.update({o.page_name: page_control(o) for o in look if o.kind != "flag"})
    return made


def framing_controls() -> dict[str, Any]:
    """The page's framing options by form field, in their accordion, two a row."""
    framing = at("page", "framing")
    made: dict[str, Any] = {}
    with gr.Accordion(FRAMING_TITLE, open=False, elem_id="framing"):
        for start in range(0, len(framing), 2):
            with gr.Row():
                made.update({o.page_name: page_control(o) for o in framing[start : start + 2]})
    return made


def tool_controls() -> dict[str, Any]:
    """The MCP tool's render arguments, by name: a checkbox for a flag, else a text box showing the
    default as a program sends it ("none", "0", "center")."""
    return {
        o.name: gr.Checkbox(bool(o.default), label=o.name)
        if o.kind == "flag"
        else gr.Textbox(o.default if o.shown is None else o.shown, label=o.name)
        for o in at("mcp")
    }


def tool_arguments(names: tuple[str, ...], indent: str) -> str:
    """The MCP tool's docstring Args lines for the render arguments among `names`, in that order."""
    said = {o.name: o.tool or o.said for o in at("mcp")}
    return "".join(f"{indent}{name}: {said[name]}\n" for name in names if name in said)


def radio_css() -> str:
    """The page's CSS for its radios: the background's and each choice option's, closer together."""
    ids = ["background", *(o.control_id for o in at("page") if o.kind == "choice")]
    return (
        ", ".join(f"#{i} .wrap" for i in ids)
        + " {gap: 6px;}\n"
        + ", ".join(f"#{i} label" for i in ids)
        + " {padding: 5px 10px;}\n"
    )
