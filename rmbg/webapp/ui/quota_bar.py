"""On a ZeroGPU Space, the line under the title that says whose GPU quota a
visitor's photos spend, and the sign-in that raises it (rmbg.webapp.zerogpu).

ZeroGPU tells visitors apart by their Hugging Face session (the Hub's page
sends a token with each call), so signing in to Hugging Face is what gives a
visitor their account's larger quota. With `hf_oauth: true` in README's
front matter the Space sets OAUTH_CLIENT_ID and gradio's LoginButton signs in
on the page itself (it needs gradio's `oauth` extra); otherwise the line
links to the Hub's sign-in page. Elsewhere (no ZeroGPU) nothing is shown.
"""

from __future__ import annotations

import importlib.util
import os

import gradio as gr

from .. import guard, zerogpu


def login_button_works() -> bool:
    """gradio's LoginButton can serve here: its libraries are installed, and on a Space the
    Space has OAuth (hf_oauth: true sets OAUTH_CLIENT_ID; without it gradio refuses to start)."""
    from gradio.utils import get_space

    installed = all(importlib.util.find_spec(name) for name in ("authlib", "itsdangerous"))
    return installed and (get_space() is None or bool(os.environ.get("OAUTH_CLIENT_ID")))


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
