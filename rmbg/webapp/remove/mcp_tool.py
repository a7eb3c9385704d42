"""/remove_background: the app's MCP tool (and a named API endpoint), one
self-contained call for programs and assistants; values travel as McpForm."""

from __future__ import annotations

import gradio as gr

from ...cascade import ESCALATION
from ...confidence import DEFAULT_BELOW
from ...money.pricing import price_table
from ...registry import info, list_providers
from ...vendors import VENDORS
from ..context import App
from ..costs import result_line
from ..look import file_name, flag
from ..slots import admitted
from ..ui.common import api_twin, log, session_of
from ..ui.controls import tool_arguments, tool_controls
from ..ui.forms import KEY_FIELDS, Call, McpForm, endpoint
from . import actions
from .escalate import NONE, Escalation


def key_arguments() -> str:
    """The tool's key arguments as its docstring's Args lines: one per vendor (rmbg.vendors)."""
    lines = []
    for vendor in VENDORS:
        needing = [pid for pid in list_providers() if info(pid).key_env in vendor.env]
        use = f"needed for {', '.join(needing)}" if needing else "not needed here (its services take whole clips)"
        lines.append(f"            {vendor.argument}: a {vendor.label} API key, {use}.\n")
    return "".join(lines)


def folded(doc: str) -> str:
    """`doc` with each Args entry, and the Returns text, on one line. gradio reads a tool's argument
    descriptions from its docstring one line each (an entry's next lines were dropped: `cpu` and
    `escalate` reached assistants cut mid-sentence) and joins the lines of Returns with commas."""
    lines: list[str] = []
    section, entry = "", 0  # the section being read ("" outside Args and Returns), its entries' indent
    for line in doc.splitlines():
        text, indent = line.strip(), len(line) - len(line.lstrip())
        if text in ("Args:", "Returns:"):
            section, entry = text, 0
        elif section and text:
            entry = entry or indent
            if indent > entry or (section == "Returns:" and lines[-1].strip() != section):
                lines[-1] += f" {text}"
                continue
        elif not text:
            section = ""
        lines.append(line)
    return "\n".join(lines) + "\n"


def mcp_tool(app: App, default_id: str) -> None:
    """/remove_background: one self-contained call (no session) for programs
    and assistants; the app's only MCP tool (the page's endpoints keep their
    session and are marked as no tool)."""
    offered = list_providers()  # under RMBG_COMMERCIAL_ONLY=1, the ones licensed for commercial use
    prices = ", ".join(f"{pid} ${usd}" for pid, usd in price_table().items() if pid in offered)

    def remove_background(form: McpForm, call: Call) -> str:
        """Remove the background of a photo: returns the cut-out (transparent PNG by default) or the subject
        on a colour, framed for a product listing if asked. Local models cost only compute time (about a
        second on a CPU); hosted providers are billed per image to the key you pass (prices below).

        Args:
            image: the photo (JPEG, PNG, WebP...; at most 40 megapixels) as an http(s) URL or a data: URI.
            provider: which model; empty = this server's default; hosted ones are paid per image with your key.
            RENDER_ARGUMENTS
            cpu: true to run a local model on this server's CPU (on a ZeroGPU Space: no GPU quota; what a
                "GPU time is used up" refusal suggests, with the provider it names).
            escalate: a better provider for when the first one is unsure ("none": never): where the first
                matte's confidence is under escalate_below, the photo goes to it too (paid as above when hosted).
            escalate_below: the confidence (0 to 1) under which it escalates; default DEFAULT_BELOW.
        Returns:
            the output image (its file name says which provider made it, and ends "-watermarked" when the
            vendor gave it free with its watermark: a Photoroom sandbox key).
        """
        chosen = form.look()
        data = actions.image_from_reference(form.image)
        result, used = actions.run(
            data,
            form.provider or default_id,
            chosen,
            form.keys(),
            app,
            session_id=session_of(call.request),
            on_cpu=flag(form.cpu, "cpu"),
            escalate=Escalation.of(*form.escalation()),
        )
        # A free sandbox result says so in its name, the one thing the tool answers (and in its PNG text).
        stem = f"image-{used.id}" + ("-watermarked" if result.cost.watermarked else "")
        path = app.store.write(file_name(stem, chosen), result.encode(chosen.fmt))
        said = f" ({result.meta[ESCALATION]})" if ESCALATION in result.meta else ""
        log.info("mcp remove_background: %s%s", result_line(result, used.label).replace("**", ""), said)
        return str(path)

    doc = folded(
        (remove_background.__doc__ or "")
        .replace("empty = this server's default;", f"empty = this server's default ({default_id});")
        .replace("paid per image with your key.", f"paid per image with your key ({prices}).")
        .replace("        Returns:", key_arguments() + "        Returns:")
        .replace("            RENDER_ARGUMENTS\n", tool_arguments(McpForm.names(), " " * 12))  # rmbg.options
        .replace("default DEFAULT_BELOW", f"default {DEFAULT_BELOW}")
    )
    with gr.Column(visible=False):
        controls = {
            "image": gr.Textbox(label="image"),
            "provider": gr.Textbox(default_id, label="provider"),
            **tool_controls(),  # background, mask_only, the framing, format: rmbg.options
            "cpu": gr.Checkbox(False, label="cpu"),
            **{name: gr.Textbox(None, label=name) for name in KEY_FIELDS},
            "escalate": gr.Textbox(NONE, label="escalate"),
            "escalate_below": gr.Number(DEFAULT_BELOW, label="escalate_below", minimum=0, maximum=1),
        }
        # One output: gradio's MCP server turns a single image into image content, several outputs into text.
        outputs = [gr.Image(type="filepath", label="result")]
    handler = endpoint(McpForm, remove_background, "remove_background", doc)
    inputs = McpForm.inputs(controls)
    api_twin(
        handler, inputs, outputs, "remove_background", tool=True, concurrency_limit=admitted(), concurrency_id="remove"
    )
