"""The Benchmark tab: the visitor's images (and optional ground truth) through
several providers: scores like `rmbg evaluate` with ground truth, blind votes
without (rmbg.webapp.benchmark.request, .arena); values travel as BenchmarkForm."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import catalog
from ..catalog import Keys
from ..context import App
from ..costs import volume_of
from ..inputs import Text
from ..slots import BENCHMARK, admitted
from ..ui.common import api_twin, colour_control, on_page, session_of, volume_box
from ..ui.forms import BenchmarkForm, Call, endpoint, key_controls


def benchmark_tab(app: App, keys: tuple[Any, ...], default_id: str) -> gr.CheckboxGroup:
    """The Benchmark tab: the visitor's images (and optional ground truth) through several providers:
    scores like `rmbg evaluate` with ground truth, blind votes without (rmbg.webapp.benchmark.request, .arena).
    Returns the provider checkboxes (a pasted key refreshes them)."""
    from ...eval.votes import RANKING_HEADERS, VoteStore
    from . import report as benchreport
    from . import request as benchrun
    from . import scoring as benchmark
    from .arena import BACKGROUNDS, Arena

    arena = Arena(VoteStore())
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            images = gr.File(
                label="Images (up to 50, or a .zip; masks/ inside it = ground truth)",
                file_count="multiple",
                elem_id="bench-images",
            )
            truth = gr.File(
                label="Ground truth, optional (masks or alpha mattes with the images' names)",
                file_count="multiple",
                elem_id="bench-truth",
            )
            providers = gr.CheckboxGroup(
                catalog.choices(Keys(), app.config), value=[default_id], label="Providers", elem_id="bench-providers"
            )
            volume = volume_box(app.config.monthly_volume, "bench-volume")
            estimate = gr.Markdown("Upload images (or a .zip) to see the estimated cost.", elem_id="bench-estimate")
            with gr.Row():
                run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
                stop = gr.Button("Stop", elem_id="bench-stop")
            message = gr.Markdown(visible=False, elem_id="bench-message")
        with gr.Column(scale=3, min_width=300):
            status = gr.Markdown(elem_id="bench-status")
            plot = gr.Plot(label="Quality against cost", elem_id="bench-plot")
    # ten columns (scores with intervals, seconds, costs): the page's whole width, each column a tenth of it, its
    # cells wrapping (a hosted provider's row, an interval) rather than the table scrolling sideways; a card a row
    # on a phone (rmbg.webapp.narrow)
    table = gr.Dataframe(
        headers=benchreport.SUMMARY_HEADERS,
        interactive=False,
        wrap=True,
        elem_id="bench-table",
        elem_classes=["wrapped-table"],
    )
    # a free model then a better one on its least sure images, simulated from the run's own cut-outs (the plot's
    # dashed lines): shown on the page only, the API's outputs stay five (its downloads carry the cascades)
    cascade_table = gr.Dataframe(
        label="Cascades (simulated: no extra calls)",
        interactive=False,
        wrap=True,
        visible=False,
        elem_id="bench-cascades",
        elem_classes=["wrapped-table"],  # cells wrap: seven columns fit a phone without scrolling sideways
    )
    cascade_notes = gr.Markdown(visible=False, elem_id="bench-cascade-notes")
    gallery = gr.Gallery(
        label="Per image, worst first",
        columns=4,
        object_fit="contain",
        height=420,
        format="png",
        elem_id="bench-gallery",
    )
    files = gr.File(label="Downloads (CSV, JSON)", file_count="multiple", interactive=False, elem_id="bench-files")
    with gr.Accordion("Blind vote (benchmarks without ground truth)", open=True, elem_id="bench-vote"):
        with gr.Row():
            background = gr.Radio(
                [*BACKGROUNDS, "colour"], value="checkerboard", label="Background", elem_id="vote-background"
            )
            colour_row, colour = colour_control("vote-colour")  # a framed swatch and a hex field
            new_pair = gr.Button("New pair", elem_id="vote-new")
        with gr.Row():
            left = gr.Image(label="Left", type="pil", format="png", interactive=False, elem_id="vote-left")
            right = gr.Image(label="Right", type="pil", format="png", interactive=False, elem_id="vote-right")
        ticket = gr.Textbox(visible=False, elem_id="vote-ticket")
        with gr.Row():  # no vote before there is a pair to vote on
            left_wins = gr.Button("Left is better", elem_id="vote-left-wins", interactive=False)
            right_wins = gr.Button("Right is better", elem_id="vote-right-wins", interactive=False)
        vote_message = gr.Markdown(visible=False, elem_id="vote-message")  # a refusal, by the buttons
        reveal = gr.Markdown(elem_id="vote-reveal")
        ranking = gr.Dataframe(
            headers=RANKING_HEADERS,
            interactive=False,
            label="Ranking from every visitor's votes",
            wrap=True,
            elem_id="vote-ranking",
            elem_classes=["wrapped-table"],  # cells wrap, as the scores' table's do
        )

    from gradio.context import Context

    if Context.root_block is not None:  # each page that opens reads the ranking from the storage, as it is now
        Context.root_block.load(
            arena.ranking_or_none, None, ranking, api_visibility="private", show_progress="hidden", queue=False
        )

    def on_estimate(images: Any, truth: Any, providers: Any, volume: Any) -> str:
        return benchrun.estimate_line(images, truth, providers, app, volume_of(volume))

    gr.on(
        [images.change, truth.change, providers.change, volume.change],
        on_estimate,
        [images, truth, providers, volume],
        estimate,
        api_visibility="private",
        show_progress="hidden",
    )

    def run_view(form: BenchmarkForm, call: Call) -> benchrun.BenchView:
        progress = call.progress
        progress(0, desc="Reading the upload…")
        bars: list[Any] = []

        def report(step: Any) -> None:  # a bar of images, and under it one for the image being run
            if not bars:
                bars.append(progress.tqdm(None, total=step.n_images, desc="Images", unit="images"))
            if step.in_image == step.n_providers:
                progress.update(1)
            progress((step.in_image, step.n_providers), desc=step.text(), unit="providers")

        return benchrun.run(
            form.images,
            form.truth,
            form.providers,
            form.keys(),
            app,
            arena,
            session_id=session_of(call.request),
            volume=volume_of(form.monthly_volume),
            report=report,
        )

    def api_outputs(shown: benchrun.BenchView) -> tuple[Any, ...]:
        return (shown.status, {"headers": shown.headers, "data": shown.rows}, shown.figure, shown.gallery, shown.files)

    def run_benchmark(form: BenchmarkForm, call: Call) -> tuple[Any, ...]:
        return api_outputs(run_view(form, call))

    def run_on_page(form: BenchmarkForm, call: Call) -> tuple[Any, ...]:
        shown = run_view(form, call)
        cascades = {"headers": shown.cascade_headers, "data": shown.cascade_rows}
        return (
            *api_outputs(shown),
            gr.update(value=cascades, visible=bool(shown.cascade_rows)),
            gr.update(value=shown.cascade_notes, visible=bool(shown.cascade_notes)),
        )

    handler = endpoint(BenchmarkForm, run_benchmark, "run_benchmark")
    page_handler = endpoint(BenchmarkForm, run_on_page, "run_benchmark")
    controls = {
        "images": images,
        "truth": truth,
        "providers": providers,
        "monthly_volume": volume,
        **key_controls(keys),
    }
    inputs, outputs = BenchmarkForm.inputs(controls), [status, table, plot, gallery, files]
    ran = run.click(
        on_page(page_handler, 7),
        inputs,
        [*outputs, cascade_table, cascade_notes, message],
        api_name="page_benchmark",
        api_visibility="private",
        concurrency_limit=admitted(BENCHMARK),
        concurrency_id="benchmark",
    )

    def first_pair(background: Text, colour: Text, request: gr.Request | None = None) -> tuple[Any, ...]:
        """After a blind run, its first pair is on screen with its "Done" (no click on New pair first)."""
        drawn = arena.first_pair(session_of(request), background, colour)
        return (gr.update(),) * 4 if drawn is None else (*drawn, "")  # None: a run with ground truth

    ran.success(first_pair, [background, colour], [left, right, ticket, reveal], api_visibility="private")
    api_twin(
        handler,
        inputs,
        outputs,
        "benchmark",
        on_cancel=lambda request: benchmark.STOPS.stop(session_of(request)),  # no paid call after a cancel
        concurrency_limit=admitted(BENCHMARK),
        concurrency_id="benchmark",
    )

    def on_stop(request: gr.Request | None = None) -> Any:
        asked = benchmark.STOPS.stop(session_of(request))
        return gr.update(value="Stopping after the current image…" if asked else "Nothing is running.", visible=True)

    stop.click(on_stop, None, message, api_visibility="private", queue=False)

    def vote_pair(
        background: Text = "checkerboard", colour: Text = "#ffffff", request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        return (*arena.pair(session_of(request), background, colour), "")

    def vote(ticket: Any, choice: Any, request: gr.Request | None = None) -> Any:
        return arena.vote(session_of(request), ticket, choice)

    pair_out = [left, right, ticket, reveal]
    new_pair.click(on_page(vote_pair, 4), [background, colour], [*pair_out, vote_message], api_visibility="private")
    api_twin(vote_pair, [background, colour], pair_out, "benchmark_pair")
    ticket.change(  # the buttons follow the pair: a ticket to vote with, or none
        lambda token: [gr.update(interactive=bool(token))] * 2,
        ticket,
        [left_wins, right_wins],
        queue=False,
        api_visibility="private",
    )
    background.change(
        lambda kind: gr.update(visible=kind == "colour"), background, colour_row, queue=False, api_visibility="private"
    )

    def vote_left(ticket: Any, request: gr.Request | None = None) -> Any:
        return (*vote(ticket, "left", request), "")  # the pair is spent: its ticket goes, the buttons wait

    def vote_right(ticket: Any, request: gr.Request | None = None) -> Any:
        return (*vote(ticket, "right", request), "")

    for button, fn in ((left_wins, vote_left), (right_wins, vote_right)):
        button.click(on_page(fn, 3), ticket, [reveal, ranking, ticket, vote_message], api_visibility="private")
    api_twin(vote, [ticket, gr.Textbox("left", visible=False)], [reveal, ranking], "benchmark_vote")
    return providers
