"""The AI background tab: fal's Bria background replace (paid, per generated
image); values travel as ReplaceForm."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import gradio as gr

from ...replace import replace_estimate
from ...types import format_usd
from ..context import App
from ..ui.common import api_twin, image_input, on_page, results_gallery, session_of
from ..ui.forms import Call, ReplaceForm, endpoint, key_controls
from . import replacing


def ai_tab(app: App, keys: tuple[Any, ...]) -> None:
    """The AI background tab: fal's Bria background replace (paid, per generated image)."""
    each = replace_estimate(1).usd
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            image = image_input("Photo", "ai-image", 300)
            prompt = gr.Textbox(
                label="New background, in words",
                elem_id="ai-prompt",
                max_lines=3,
                placeholder="a marble kitchen counter in soft morning light",
            )
            with gr.Accordion("…or a reference image instead of words", open=False):
                ref = image_input("Reference image", "ai-ref", 160, sources=("upload", "clipboard"))
            negative = gr.Textbox(label="Keep out (negative prompt)", elem_id="ai-negative", max_lines=2)
            with gr.Row():
                count = gr.Slider(1, 4, value=1, step=1, label="Images", elem_id="ai-count", min_width=140)
                seed = gr.Textbox(label="Seed (optional)", elem_id="ai-seed", max_lines=1, min_width=120)
            estimate = gr.Markdown(ai_estimate(1, each), elem_id="ai-estimate")
            run = gr.Button("Generate backgrounds", variant="primary", elem_id="ai-run")
            message = gr.Markdown(visible=False, elem_id="ai-message", elem_classes=["refusal"])
        with gr.Column(scale=3, min_width=300):
            gallery = results_gallery("ai-gallery", columns=2, height=460)
            line = gr.Markdown(elem_id="ai-cost-line")
    count.change(lambda n: ai_estimate(n, each), count, estimate, api_visibility="private", queue=False)

    def replace(form: ReplaceForm, call: Call) -> tuple[list[str], str]:
        call.progress(0, desc="Waiting for fal.ai…")
        out = replacing.replace(
            form.image,
            form.prompt,
            form.reference_image,
            form.negative_prompt,
            form.seed,
            form.num_images,
            form.keys(),
            app,
            session_id=session_of(call.request),
        )
        return [str(f) for f in out.files], out.line

    handler = endpoint(ReplaceForm, replace, "replace")
    controls = {
        "image": image,
        "prompt": prompt,
        "reference_image": ref,
        "negative_prompt": negative,
        "seed": seed,
        "num_images": count,
        **key_controls(keys),
    }
    inputs = ReplaceForm.inputs(controls)
    run.click(
        on_page(handler, 2),
        inputs,
        [gallery, line, message],
        api_name="page_replace",
        api_visibility="private",
        concurrency_limit=4,
        concurrency_id="replace",
    )
    api_twin(handler, inputs, [gallery, line], "replace", concurrency_limit=4, concurrency_id="replace")


def ai_estimate(count: Any, each: Decimal) -> str:
    n = int(count or 1)
    return (
        f"Estimated: {n} × ${format_usd(each)} = **${format_usd(each * n)}** (fal.ai, billed per generated "
        "image; counted against your session's cap, and against the server's daily cap when the server's key pays)"
    )
