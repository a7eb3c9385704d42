"""The Remove tab: one photo, one provider, the cut-out behind a slider, its
cost line; the look (background, format, framing) re-renders from the matte
without a new model run. Values travel as RemoveForm / RerenderForm."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import gradio as gr

from ...confidence import DEFAULT_BELOW
from ...registry import info
from .. import catalog
from ..catalog import Keys
from ..context import App
from ..costs import volume_of
from ..inputs import Text, Volume
from ..look import flag
from ..slots import admitted
from ..ui.common import (
    EXAMPLES,
    api_twin,
    colour_control,
    download_update,
    image_input,
    on_page,
    page_errors,
    session_of,
    visitor_of,
    volume_box,
)
from ..ui.controls import framing_controls, look_controls
from ..ui.forms import Call, RemoveForm, RerenderForm, endpoint, key_controls
from ..ui.quota_bar import cpu_button, wire_cpu
from . import actions, escalate, marks, progressive
from .pick import pick_controls, wire_pick


def remove_tab(
    app: App, session: gr.State, keys: tuple[Any, ...], default_id: str, default_reason: str
) -> tuple[gr.Dropdown, gr.Markdown]:
    """The Remove tab: layout, then its events. Returns the provider menu and its note."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            image = image_input("Image", "input-image", 340)
            pick = pick_controls()
            url = gr.Textbox(
                label="…or an image URL (press Enter)",
                placeholder="https://example.com/photo.jpg",
                elem_id="image-url",
                max_lines=1,
            )
            gr.Examples(EXAMPLES, inputs=image, label="Examples")
            provider = gr.Dropdown(
                catalog.choices(Keys(), app.config), value=default_id, label="Provider", elem_id="provider"
            )
            note = gr.Markdown(default_reason, elem_id="provider-note")
            vitmatte = gr.Checkbox(
                False,
                label="Refine edges (ViTMatte)",
                elem_id="vitmatte",
                info="Re-estimates hair and soft edges after any provider (local, free).",
            )
            escalation = escalate_controls(app, provider)
            run = gr.Button("Remove background", variant="primary", elem_id="run")
            cpu_run = cpu_button()  # on ZeroGPU: the same photo on this server's CPU, outside the GPU quota
            message = gr.Markdown(visible=False, elem_id="message", elem_classes=["refusal"])
            look = look_and_frame()
        with gr.Column(scale=3, min_width=300):
            slider = gr.ImageSlider(
                label="Before / after", type="pil", format="png", max_height=560, interactive=False, elem_id="result"
            )
            file = gr.DownloadButton("Download PNG", visible=False, elem_id="download")
            cost = gr.Markdown(elem_id="cost-line")
            volume = volume_box(app.config.monthly_volume, "volume")
    controls = {
        "image": image,
        "provider": provider,
        **look,
        "monthly_volume": volume,
        **key_controls(keys),
        "vitmatte": vitmatte,
        "points": pick["points"],
        "box": pick["box"],
        **escalation,
    }
    wire_remove(app, session, controls, (run, cpu_run), (slider, file, cost), message, default_id)
    wire_pick(image, pick)

    def on_url(text: Text) -> tuple[str, str]:
        return str(actions.image_from_url(text, app)), ""

    url.submit(on_page(on_url, 2), url, [image, url, message], api_visibility="private")
    provider.input(
        lambda pid, *visitor: catalog.note(pid, Keys.of(*visitor), app.config),
        [provider, *keys],
        note,
        api_visibility="private",
        show_progress="hidden",
    )
    return provider, note


def escalate_controls(app: App, first: gr.Dropdown) -> dict[str, Any]:
    """The "Escalate when unsure to" menu: a better provider for a photo the `first` model is unsure of,
    the confidence under which it runs, and what it may cost, said before the run (remove/escalate.py)."""
    with gr.Group():
        menu = gr.Dropdown(
            escalate.choices(app),
            value=escalate.NONE,
            label="Escalate when unsure to",
            elem_id="escalate",
            info="The provider above runs first; this one runs too only where its matte's confidence is low.",
        )
        below = gr.Number(
            DEFAULT_BELOW,
            label="…when the confidence is under",
            minimum=0,
            maximum=1,
            step=0.05,
            visible=False,
            elem_id="escalate-below",
        )
        expected = gr.Markdown(elem_id="escalate-cost")

    def on_change(chosen: Text, threshold: Any, first_id: Text) -> tuple[Any, str]:
        shown = gr.update(visible=chosen not in (None, "", escalate.NONE))
        return shown, escalate.expected_text(app, chosen, threshold, first_id=first_id or None)

    changes = [menu.change, below.change, first.change]
    gr.on(changes, on_change, [menu, below, first], [below, expected], api_visibility="private", show_progress="hidden")
    return {"escalate": menu, "escalate_below": below}


def look_and_frame() -> dict[str, Any]:
    """The look's controls by RemoveForm field: the background (its kind, colour and image), then the
    render options the page offers (rmbg.options: mask only, clean edges, format, the framing)."""
    with gr.Group():
        background = gr.Radio(
            ["transparent", "colour", "image"], value="transparent", label="Background", elem_id="background"
        )
        colour_row, colour = colour_control("colour")
        bg_image = image_input(
            "Background image", "background-image", 160, sources=("upload", "clipboard"), visible=False
        )
        options = look_controls({"background"})
    options.update(framing_controls())
    background.change(
        lambda kind: (gr.update(visible=kind == "colour"), gr.update(visible=kind == "image")),
        background,
        [colour_row, bg_image],
        api_visibility="private",
        queue=False,
    )
    return {"background": background, "colour": colour, "background_image": bg_image, **options}


def wire_remove(
    app: App,
    session: gr.State,
    controls: dict[str, Any],
    runs: tuple[gr.Button, gr.Button],
    outputs: tuple[Any, ...],
    message: Any,
    default_id: str,
) -> None:
    """/remove, /rerender and the small updates of the Remove tab. The page's
    Remove is progressive (rmbg.webapp.remove.progressive): with the default model
    on a CPU, its result at once, then a better free model's; the named API
    returns the one model's result it was asked for. runs: Remove, and quota_bar's CPU button."""
    cost, (run, cpu_run) = outputs[2], runs

    def remove(form: RemoveForm, call: Call, on_cpu: bool = False) -> tuple[Any, ...]:
        started = time.perf_counter()  # the line's total: from the click reaching the server to the result
        picked, boxed = marks.prompts_of(form.points, form.box)
        call.progress(0, desc="Starting…")
        state, out = actions.remove(
            call.state,
            form.image,
            form.provider,
            form.look(),
            form.keys(),
            app,
            volume_of(form.monthly_volume),
            report=lambda text: call.progress(0.5, desc=text),
            session_id=session_of(call.request),
            refine="vitmatte" if flag(form.vitmatte, "vitmatte") else None,
            points=picked,
            box=boxed,
            started=started,
            on_cpu=on_cpu,
            escalate=escalate.Escalation.of(*form.escalation()),
        )
        return state, (out.before, out.after), str(out.file), out.cost_line

    turns = progressive.Turns()

    def now(form: RemoveForm, call: Call) -> tuple[Any, ...]:
        """The page's Remove: the chosen model's result, and the line says if a better one follows."""
        turns.take(visitor_of(call))
        state, pair, path, line = remove(form, call)
        better = None if escalates(form) else progressive.plan(form.provider, default_id, app.config)
        if better is not None:
            line = f"{line}\n\n{better.on_its_way(info(form.provider).label)}"
        return state, pair, path, line

    def next_better(form: RemoveForm, call: Call) -> tuple[Any, ...]:
        """Right after `now` (its state as input): the better model's result, shown only if no newer click came."""
        visitor = visitor_of(call)
        turn = turns.latest(visitor)
        better = None if escalates(form) else progressive.plan(form.provider, default_id, app.config)
        if better is None or turn is None:
            return UNCHANGED
        out = remove(replace(form, provider=better.provider_id), call)
        return out if turns.current(visitor, turn) else UNCHANGED  # a forward pass cannot be interrupted

    handler = endpoint(RemoveForm, remove, "remove")
    inputs = RemoveForm.inputs(controls, session)
    event = run.click(
        on_page(endpoint(RemoveForm, now, "remove"), 4, shown),
        inputs,
        [session, *outputs, message],
        api_name="page_remove",
        api_visibility="private",
        concurrency_limit=admitted(),
        concurrency_id="remove",
    )
    # a separate event, so that the button takes a new click while it runs (a click's event takes none
    # until it is done) and gradio can cancel it; its progress is hidden: the fast result stays in view
    better = event.success(
        on_page(endpoint(RemoveForm, next_better, "remove"), 4, shown, nothing=UNCHANGED),
        inputs,
        [session, *outputs, message],
        api_name="page_remove_better",
        api_visibility="private",
        concurrency_limit=admitted(),
        concurrency_id="remove",
        show_progress="hidden",
    )
    wire_cpu(cpu_run, remove, inputs, [session, *outputs, message], shown)
    # the visitor moved on: a new photo, another provider or a new click stops a better model on its way
    gr.on(
        [controls["image"].change, controls["provider"].input, run.click],
        None,
        None,
        None,
        cancels=[better],
        api_visibility="private",
    )
    api_twin(handler, inputs, [session, *outputs], "remove", concurrency_limit=admitted(), concurrency_id="remove")
    wire_rerender(app, session, controls, outputs, message)

    @page_errors
    def on_volume(state: Any, volume: Volume) -> Any:
        line = actions.cost_line(state, app, volume_of(volume))
        return gr.skip() if line is None else line

    volume = controls["monthly_volume"]
    volume.change(on_volume, [session, volume], cost, api_visibility="private", show_progress="hidden")

    def on_upload(path: str | None) -> Any:
        why = actions.check_upload(path)
        return gr.update(value=f"**Could not do that:** {why}", visible=True) if why else gr.update(visible=False)

    controls["image"].upload(on_upload, controls["image"], message, api_visibility="private", show_progress="hidden")


def escalates(form: RemoveForm) -> bool:
    """An escalation was asked for: it, not the progressive better model, follows an unsure result."""
    return escalate.Escalation.of(*form.escalation()) is not None


UNCHANGED = (gr.skip(),) * 4  # no better result (none applies, or the visitor moved on): the page keeps all it shows


def shown(out: tuple[Any, ...]) -> tuple[Any, ...]:
    """A Remove result as the page shows it: the download button named after its format."""
    return (*out[:2], download_update(out[2]), out[3])


def wire_rerender(
    app: App, session: gr.State, controls: dict[str, Any], outputs: tuple[Any, ...], message: Any
) -> None:
    """A changed look re-renders the last result (no model run): /rerender and the page's own event."""

    def rerender(form: RerenderForm, call: Call) -> tuple[Any, ...]:
        out = actions.rerender(call.state, form.look(), app, volume_of(form.monthly_volume))
        if out is None:
            return gr.skip(), gr.skip(), gr.skip()
        return (out.before, out.after), str(out.file), out.cost_line

    handler = endpoint(RerenderForm, rerender, "rerender")
    page_rerender = on_page(
        handler,
        3,
        lambda out: (
            out
            if isinstance(out[1], dict)  # a skip: nothing run yet
            else (out[0], download_update(out[1]), out[2])
        ),
    )

    def rerender_on_page(state: Any, *values: Any) -> Any:
        form = dict(zip(RerenderForm.names(), values))
        if form["background"] == "image" and not form["background_image"]:  # waiting for the upload
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return page_rerender(state, *values)

    inputs = RerenderForm.inputs({n: controls[n] for n in RerenderForm.names()}, session)
    look = [controls[n] for n in RerenderForm.names() if n != "monthly_volume"]
    gr.on(
        [c.change for c in look],
        rerender_on_page,
        inputs,
        [*outputs, message],
        api_name="page_rerender",
        api_visibility="private",
        concurrency_limit=8,
        trigger_mode="always_last",
        show_progress="minimal",
    )
    api_twin(handler, inputs, list(outputs), "rerender", concurrency_limit=8)
