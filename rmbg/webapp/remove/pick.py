"""Picking the subject with SAM 2 on the Remove tab: clicks on the photo (or
on its marked copy) become keep/drop points or a box, kept as text fields
that the Remove form sends (rmbg.webapp.remove.marks does the geometry)."""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from . import marks


def pick_controls() -> dict[str, Any]:
    """SAM 2 subject picking, right under the photo: what a click marks, the
    photo with its marks (click it too; a click on a mark removes it), undo,
    clear, and the marks as exact values (editable)."""
    with gr.Accordion("Pick the subject (SAM 2): click the photo", open=False, elem_id="pick") as section:
        with gr.Row(elem_id="pick-row"):
            mode = gr.Radio(
                ["keep", "drop", "box corner"], value="keep", label="A click marks", elem_id="click-mode", min_width=200
            )
            undo = gr.Button("Undo last point", size="sm", elem_id="sam-undo", min_width=100)
            clear = gr.Button("Clear marks", size="sm", elem_id="sam-clear", min_width=100)
        marked = gr.Image(
            label="Your marks",
            show_label=False,
            type="pil",
            format="jpeg",
            interactive=False,
            height=300,
            elem_id="sam-marks",
            buttons=[],
        )
        gr.Markdown(
            "Marks: **green** keep, **red** drop, **blue** box; click a point to remove it. "
            "*Remove background* then keeps only that subject; the first click on a new photo starts anew.",
            elem_id="pick-help",
        )
        with gr.Row():
            points = gr.Textbox(label="Points (x, y, keep|drop; …)", elem_id="sam-points", max_lines=2, min_width=160)
            box = gr.Textbox(label="Box (x0, y0, x1, y1)", elem_id="sam-box", max_lines=1, min_width=140)
    return {
        "points": points,
        "box": box,
        "mode": mode,
        "clear": clear,
        "undo": undo,
        "marked": marked,
        "section": section,
    }


def wire_pick(image: gr.Image, pick: dict[str, Any]) -> None:
    """A click on the photo, or on its marked copy, adds a point, or (mode
    "box corner") one corner of the box, two clicks making a box; a click on a
    point removes it. The first click on a new photo starts new prompts (the
    photo they belong to is kept with them). The marked copy follows the fields."""
    points, box, mode, marked, section = (pick[k] for k in ("points", "box", "mode", "marked", "section"))
    owner = gr.State("")

    def on_click(
        current: str,
        corners: str,
        chosen: str,
        photo: str | None,
        belongs_to: str,
        evt: gr.SelectData,
        scaled: bool = False,
    ) -> tuple[Any, ...]:
        size = marks.photo_size(photo)
        if size is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if belongs_to != photo:
            current, corners = "", ""
        factor = marks.scale_of(size) if scaled else 1.0
        x, y = evt.index[0] * factor, evt.index[1] * factor
        current, corners = marks.click(current, corners, x, y, chosen, marks.reach_of(size))
        return current, corners, photo, gr.update(open=True)

    def on_marks_click(
        current: str, corners: str, chosen: str, photo: str | None, belongs_to: str, evt: gr.SelectData
    ) -> tuple[Any, ...]:
        return on_click(current, corners, chosen, photo, belongs_to, evt, scaled=True)

    outs = [points, box, owner, section]
    ins = [points, box, mode, image, owner]
    image.select(on_click, ins, outs, api_visibility="private", show_progress="hidden")
    marked.select(on_marks_click, ins, outs, api_visibility="private", show_progress="hidden")
    gr.on(
        [points.change, box.change, image.change],
        functools.partial(marks.drawn_file, folder=get_upload_folder()),  # a file written once per picture
        [image, points, box],
        marked,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    pick["clear"].click(None, None, [points, box], js="() => ['', '']", api_visibility="private")
    pick["undo"].click(marks.undo, points, points, api_visibility="private", show_progress="hidden")
