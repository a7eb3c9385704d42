"""On a ZeroGPU Space, the line under the title that says whose GPU quota a
visitor's photos spend, and the sign-in that raises it (rmbg.webapp.zerogpu).

ZeroGPU tells visitors apart by their Hugging Face session (the Hub's page
sends a token with each call), so signing in to Hugging Face is what gives a
visitor their account's larger quota. With `hf_oauth: true` in README's
front matter the Space sets OAUTH_CLIENT_ID and gradio's LoginButton signs in
on the page itself (it needs gradio's `oauth` extra); otherwise the line
links to the Hub's sign-in page. Elsewhere (no ZeroGPU) nothing is shown.

Also the Remove tab's "Run on the CPU instead": the photo already uploaded,
cut out on this server's CPU by its fastest local model, outside spaces.GPU
(what a visitor whose GPU time is spent is offered: zerogpu.GpuRefused).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gradio as gr

from .. import guard, zerogpu
from .common import on_page
from .forms import Call, RemoveForm, endpoint


def login_button_works() -> bool:
    """gradio's LoginButton can serve here: its libraries are installed and the Space has OAuth
    (hf_oauth: true sets OAUTH_CLIENT_ID). Without OAuth gradio refuses to start on a Space, and off a
    Space it signs in only a machine logged in to the Hub (it stops the page otherwise): the line's
    link to the Hub's sign-in serves there."""
    installed = all(importlib.util.find_spec(name) for name in ("authlib", "itsdangerous"))
    return installed and bool(os.environ.get("OAUTH_CLIENT_ID"))


def quota_bar(demo: gr.Blocks, default_id: str) -> None:
    """The quota line (and the sign-in button where it works), on ZeroGPU only."""
    if not guard.ZEROGPU:
        return
    photo_s = zerogpu.photo_seconds(default_id)
    with gr.Row(elem_id="zerogpu-bar"):
        if login_button_works():
            gr.LoginButton(size="sm", scale=0, elem_id="login")
        line = gr.Markdown(zerogpu.quota_line(None, photo_s), elem_id="zerogpu-quota")

    def shown(profile: gr.OAuthProfile | None) -> str:  # gradio gives the signed-in visitor's profile, or None
        return zerogpu.quota_line(profile.username if profile is not None else None, photo_s)

    demo.load(shown, None, line, api_visibility="private", show_progress="hidden")


def cpu_button() -> gr.Button:
    """The Remove tab's "Run on the CPU instead", shown on ZeroGPU only."""
    return gr.Button(zerogpu.CPU_BUTTON, visible=guard.ZEROGPU, elem_id="run-cpu", size="sm")


def wire_cpu(
    button: gr.Button,
    remove: Callable[..., tuple[Any, ...]],
    inputs: list[Any],
    outputs: list[Any],
    shown: Callable[[tuple[Any, ...]], tuple[Any, ...]],
) -> None:
    """The button runs the Remove tab's `remove(form, call, on_cpu=True)` with the same form (the
    photo already uploaded, the same look) and zerogpu.cpu_provider() as the provider."""

    def on_cpu(form: RemoveForm, call: Call) -> tuple[Any, ...]:
        return remove(replace(form, provider=zerogpu.cpu_provider()), call, on_cpu=True)

    button.click(
        on_page(endpoint(RemoveForm, on_cpu, "remove_on_cpu"), 4, shown),
        inputs,
        outputs,
        api_name="page_remove_cpu",
        api_visibility="private",
        concurrency_limit=2,  # the Space's own few cores
        concurrency_id="remove-cpu",
    )
