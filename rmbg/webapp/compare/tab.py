"""The Compare tab: one photo through several providers, side by side, with
seconds, cost and how far the mattes agree; values travel as CompareForm."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import catalog, guard, zerogpu
from ..catalog import Keys
from ..context import App
from ..inputs import Text
from ..look import Look, flag
from ..slots import COMPARE, admitted
from ..ui.common import (
    EXAMPLES,
    api_twin,
    colour_control,
    image_input,
    on_page,
    page_errors,
    results_gallery,
    session_of,
)
from ..ui.forms import Call, CompareForm, endpoint, key_controls
from . import comparing


def compare_tab(app: App, session: gr.State, keys: tuple[Any, ...], default_id: str) -> gr.CheckboxGroup:
    """The Compare tab: layout, then its events. Returns the provider checkboxes."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            image = image_input("Image", "compare-image", 300)
            gr.Examples(EXAMPLES, inputs=image, label="Examples")
            providers = gr.CheckboxGroup(
                catalog.choices(Keys(), app.config),
                value=catalog.default_selection(default_id, Keys(), app.config),
                label="Providers",
                elem_id="compare-providers",
            )
            vitmatte = gr.Checkbox(False, label="Also with refined edges (ViTMatte)", elem_id="compare-vitmatte")
            cpu = gr.Checkbox(False, label=zerogpu.CPU_BOX, visible=guard.ZEROGPU, elem_id="compare-cpu")
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            message = gr.Markdown(visible=False, elem_id="compare-message", elem_classes=["refusal"])
            with gr.Group():
                background = gr.Radio(
                    ["transparent", "colour"],
                    value="transparent",
                    label="Background for all results",
                    elem_id="compare-background",
                )
                colour_row, colour = colour_control("compare-colour")
        with gr.Column(scale=3):
            gallery = results_gallery("compare-gallery", columns=3, height=420)
            table = gr.Dataframe(
                headers=comparing.TABLE_HEADERS,
                datatype=["str", "str", "str", "str", "markdown"],  # a status's *Keys box* is emphasis, not asterisks
                label="Seconds and cost",
                interactive=False,
                wrap=True,
                elem_id="compare-table",
                elem_classes=["wrapped-table"],
            )
            agreement = gr.Dataframe(
                headers=comparing.AGREEMENT_HEADERS,
                interactive=False,
                label="Agreement between mattes (IoU: 1 = same; mean |Δα|: 0 = same)",
                wrap=True,
                elem_id="compare-agreement",
                elem_classes=["wrapped-table"],
            )
            with gr.Row():
                pair_a = gr.Dropdown([], label="Slider: left", elem_id="pair-a")
                pair_b = gr.Dropdown([], label="Slider: right", elem_id="pair-b")
            pair_slider = gr.ImageSlider(
                label="Left / right",
                type="pil",
                format="png",
                max_height=480,
                interactive=False,
                elem_id="compare-slider",
            )
    background.change(
        lambda kind: gr.update(visible=kind == "colour"), background, colour_row, api_visibility="private", queue=False
    )
    views = [gallery, table, agreement, pair_a, pair_b, pair_slider]
    controls = {
        "image": image,
        "providers": providers,
        "background": background,
        "colour": colour,
        **key_controls(keys),
        "vitmatte": vitmatte,
        "cpu": cpu,
    }
    wire_compare(app, session, controls, run, message, views)
    return providers


def wire_compare(
    app: App, session: gr.State, controls: dict[str, Any], run: gr.Button, message: Any, views: list[Any]
) -> None:
    """/compare, and re-showing a comparison with another background or pair."""
    pair_a, pair_b, pair_slider = views[3:]

    def compare(form: CompareForm, call: Call) -> tuple[Any, ...]:
        chosen = form.look()
        call.progress(0, desc="Starting…")
        state, shown = comparing.run(
            call.state,
            form.image,
            form.providers,
            form.keys(),
            app,
            chosen,
            report=lambda text: call.progress(0.5, desc=text),
            session_id=session_of(call.request),
            refine="vitmatte" if flag(form.vitmatte, "vitmatte") else None,
            on_cpu=flag(form.cpu, "cpu"),
        )
        return (state, *_compare_outputs(comparing.comparison_of(state, app), shown, chosen, app))

    handler = endpoint(CompareForm, compare, "compare")
    inputs = CompareForm.inputs(controls, session)
    look = [controls["background"], controls["colour"]]
    # The page's click: a refusal is one message under the button, no "Error" badge on each panel.
    run.click(
        on_page(handler, 7),
        inputs,
        [session, *views, message],
        api_name="page_compare",
        api_visibility="private",
        concurrency_limit=admitted(COMPARE),
        concurrency_id="compare",
    )
    api_twin(
        handler, inputs, [session, *views], "compare", concurrency_limit=admitted(COMPARE), concurrency_id="compare"
    )

    @page_errors
    def compare_look(state: Any, background: Text = "transparent", colour: Text = "#ffffff") -> Any:
        compared = comparing.comparison_of(state, app)
        if compared is None:
            return (gr.skip(),) * 6
        chosen = Look.of(background, colour)
        return _compare_outputs(compared, comparing.view(compared, chosen), chosen, app)

    gr.on(
        [c.change for c in look],
        compare_look,
        [session, *look],
        views,
        api_visibility="private",
        trigger_mode="always_last",
        show_progress="minimal",
    )

    @page_errors
    def on_pair(state: Any, a: Text, b: Text, background: Text = "transparent", colour: Text = "#ffffff") -> Any:
        chosen = Look.of(background, colour)
        compared = comparing.comparison_of(state, app)
        images = None if compared is None else comparing.pair(compared, a, b, chosen, app.config.max_preview_side)
        return gr.skip() if images is None else images

    gr.on(
        [pair_a.input, pair_b.input],
        on_pair,
        [session, pair_a, pair_b, *look],
        pair_slider,
        api_visibility="private",
        show_progress="minimal",
    )


def _compare_outputs(compared: Any, shown: Any, look: Look, app: App) -> tuple[Any, ...]:
    """Gallery, tables, the pair pickers (first two results) and their slider."""
    ids = shown.ids
    a, b = (ids[0], ids[1]) if len(ids) >= 2 else (None, None)
    images = comparing.pair(compared, a, b, look, app.config.max_preview_side) if a and b and compared else None
    return (
        shown.gallery,
        shown.table,
        shown.agreement,
        gr.update(choices=ids, value=a),
        gr.update(choices=ids, value=b),
        images,
    )
