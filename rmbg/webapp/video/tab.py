"""The Video tab: a clip (upload or URL), then either one provider (background,
format, a preview over a checkerboard, the frames' progress with time left,
Stop, the cost line, a download) or two providers side by side (played in
sync, or stepped frame by frame with one slider). The decisions are
rmbg.webapp.video.videos and .compare; the browser side is .js.

Named API: /video, /video_rerender, /video_compare and /video_stop (stops the
caller's run in progress: its gradio session's)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import guard, zerogpu
from ..catalog import Keys, default_selection
from ..context import App
from ..inputs import Text
from ..look import BACKGROUNDS
from ..slots import VIDEO, admitted
from ..ui.common import (
    api_twin,
    colour_control,
    download_update,
    image_input,
    lenient,
    not_a_tool,
    on_page,
    page_errors,
    session_of,
)
from ..ui.forms import Call, endpoint, key_controls
from . import clips as video_clips
from . import compare as video_compare
from . import videos
from .forms import VideoCompareForm, VideoForm, VideoRerenderForm
from .js import PAUSE_JS, PLAY_JS, STEP_JS

TRANSPARENT_FORMATS = ["webm", "mov", "gif", "webp", "matte"]
ON_A_BACKGROUND = ["mp4", "matte"]
HINT = (
    "MP4, MOV, WebM, MKV or animated GIF, up to {mb} MB and {seconds:g} s. WebM keeps the transparency in "
    "Chrome, Firefox and Edge; MOV (ProRes 4444) in editors and Safari; MP4 is on a colour."
)


def video_tab(app: App, keys: tuple[Any, ...], default_id: str) -> tuple[Any, list[gr.Dropdown]]:
    """The Video tab: layout, then its events. Returns the function that forgets a closed page's clips,
    and the provider menus a pasted key changes (the page wires the key boxes once: rmbg.webapp.page)."""
    limits = video_clips.app_limits()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=280):
            clip = lenient(gr.Video(label="Clip", sources=["upload"], height=260, elem_id="video-input"))
            url = gr.Textbox(
                label="…or a video URL (press Enter)",
                placeholder="https://example.com/clip.mp4",
                elem_id="video-url",
                max_lines=1,
            )
            gr.Markdown(HINT.format(mb=limits.max_bytes // 2**20, seconds=limits.max_seconds), elem_id="video-hint")
            upload_message = gr.Markdown(visible=False, elem_id="video-upload-message", elem_classes=["refusal"])
        with gr.Column(scale=3, min_width=280):
            with gr.Tabs():
                with gr.Tab("One provider", elem_id="video-one"):
                    menus = [one_tab(app, keys, default_id, clip, url)]
                with gr.Tab("Side by side", elem_id="video-compare"):
                    menus += compare_tab(app, keys, default_id, clip, url)

    def on_url(text: Text) -> tuple[str, str]:
        return str(video_clips.clip_from_url(text, app)), ""

    url.submit(on_page(on_url, 2), url, [clip, url, upload_message], api_visibility="private")

    def on_upload(path: str | None) -> Any:
        why = video_clips.check_clip(path)
        return gr.update(value=f"**Could not do that:** {why}", visible=True) if why else gr.update(visible=False)

    clip.upload(on_upload, clip, upload_message, api_visibility="private", show_progress="hidden")

    def forget(request: gr.Request) -> None:
        """A closed page: its run stops at the next frame, its kept clips are deleted."""
        session = session_of(request)
        app.runs.stop(session)
        app.videos.drop(session)

    return forget, menus


def provider_menu(app: App, value: str | None, label: str, elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(videos.choices(Keys(), app.config), value=value, label=label, elem_id=elem_id)


def one_tab(app: App, keys: tuple[Any, ...], default_id: str, clip: Any, url: Any) -> gr.Dropdown:
    """One provider: the controls, the preview, the download and the cost line."""
    provider = provider_menu(app, default_id, "Provider (price per second of video)", "video-provider")
    with gr.Group():
        background = gr.Radio(list(BACKGROUNDS), value="transparent", label="Background", elem_id="video-background")
        colour_row, colour = colour_control("video-colour")
        bg_image = image_input(
            "Background image", "video-background-image", 160, sources=("upload", "clipboard"), visible=False
        )
        out_format = gr.Radio(TRANSPARENT_FORMATS, value="webm", label="Format", elem_id="video-format")
    with gr.Row():
        run = gr.Button("Remove background", variant="primary", elem_id="video-run", min_width=140)
        stop = gr.Button("Stop", variant="stop", elem_id="video-stop", min_width=80)
    # on ZeroGPU: the same clip on this server's CPU, outside the GPU quota (what a spent quota is offered)
    cpu_run = gr.Button(zerogpu.CPU_BUTTON, visible=guard.ZEROGPU, elem_id="video-run-cpu", size="sm")
    message = gr.Markdown(visible=False, elem_id="video-message", elem_classes=["refusal"])
    preview = gr.Video(label="Cut-out", interactive=False, loop=True, height=320, elem_id="video-result")
    download = gr.DownloadButton("Download", visible=False, elem_id="video-download")
    cost = gr.Markdown(elem_id="video-cost")
    background.change(
        lambda kind, fmt: (
            gr.update(visible=kind == "colour"),
            gr.update(visible=kind == "image"),
            format_update(kind, fmt),
        ),
        [background, out_format],
        [colour_row, bg_image, out_format],
        api_visibility="private",
        queue=False,
    )
    controls = {
        "video": clip,
        "url": url,
        "provider": provider,
        "background": background,
        "colour": colour,
        "background_image": bg_image,
        "format": out_format,
        **key_controls(keys),
    }
    outputs = [preview, download, cost]
    wire_one(app, controls, (run, cpu_run), stop, outputs, message, default_id)
    return provider


def format_update(kind: str, fmt: str) -> Any:
    """The format choices a background allows (mp4 on a colour or image), keeping the chosen one where it fits."""
    allowed = TRANSPARENT_FORMATS if kind == "transparent" else ON_A_BACKGROUND
    return gr.update(choices=allowed, value=fmt if fmt in allowed else allowed[0])


def shown(out: tuple[Any, ...]) -> tuple[Any, ...]:
    """(preview, download, cost line) as the page shows them: the download button named after its format."""
    return out[0], download_update(out[1]), out[2]


def reporter(call: Call) -> Any:
    return (lambda fraction, text: call.progress(fraction, desc=text)) if call.progress is not None else None


def wire_one(
    app: App,
    controls: dict[str, Any],
    runs: tuple[Any, Any],
    stop: Any,
    outputs: list[Any],
    message: Any,
    default_id: str,
) -> None:
    """/video, /video_rerender, /video_stop and the page's own events; runs: Remove background, and on
    ZeroGPU the same clip on the CPU."""
    run, cpu_run = runs

    def video(form: VideoForm, call: Call, on_cpu: bool = False) -> tuple[Any, ...]:
        out = videos.remove(
            app,
            video_clips.clip_of(form.video, form.url),
            zerogpu.cpu_provider() if on_cpu else str(form.provider or default_id),
            form.look(),
            form.keys(),
            session_id=session_of(call.request),
            report=reporter(call),
            on_cpu=on_cpu,
        )
        return str(out.preview), str(out.file), out.cost_line

    def video_on_cpu(form: VideoForm, call: Call) -> tuple[Any, ...]:
        return video(form, call, on_cpu=True)

    handler = endpoint(VideoForm, video, "video")
    inputs = VideoForm.inputs(controls)
    cleared = (None, gr.update(value=None, visible=False), "")
    # Remove background, and the CPU offer: one clip at a time on the Space's own few cores
    for button, fn, name, limit, pool in (
        (run, handler, "page_video", admitted(VIDEO), "video"),
        (cpu_run, endpoint(VideoForm, video_on_cpu, "video_on_cpu"), "page_video_cpu", 1, "video-cpu"),
    ):
        button.click(lambda: cleared, None, outputs, api_visibility="private", queue=False).then(
            on_page(fn, 3, shown),
            inputs,
            [*outputs, message],
            api_name=name,
            api_visibility="private",
            concurrency_limit=limit,
            concurrency_id=pool,
        )
    # a client that cancels, or drops its connection: the clip stops at its next frame
    stopper = halt_for(app)
    api_twin(
        handler, inputs, outputs, "video", on_cancel=stopper, concurrency_limit=admitted(VIDEO), concurrency_id="video"
    )

    # a named endpoint for programs on the gradio API, not an MCP tool (it needs the caller's session)
    stop.click(not_a_tool(page_errors(halt_for(app))), None, None, api_name="video_stop", queue=False)
    wire_video_rerender(app, controls, outputs, message)


def halt_for(app: App) -> Any:
    def halt(request: gr.Request | None) -> None:
        """Stop the caller's clip at its next frame (its gradio session's); nothing of it is written."""
        app.runs.stop(session_of(request))

    return halt


def wire_video_rerender(app: App, controls: dict[str, Any], outputs: list[Any], message: Any) -> None:
    """Another background or format: the kept mattes encoded again (no model run)."""

    def rerender(form: VideoRerenderForm, call: Call) -> tuple[Any, ...]:
        out = videos.rerender(app, session_of(call.request), form.look())
        if out is None:
            return gr.skip(), gr.skip(), gr.skip()
        return str(out.preview), str(out.file), out.cost_line

    def rerender_on_page(form: VideoRerenderForm, call: Call) -> tuple[Any, ...]:
        allowed = TRANSPARENT_FORMATS if form.background == "transparent" else ON_A_BACKGROUND
        if form.format not in allowed or (form.background == "image" and not form.background_image):
            return gr.skip(), gr.skip(), gr.skip()  # the format is on its way to fit the background, or the picture
        return rerender(form, call)

    handler = endpoint(VideoRerenderForm, rerender, "video_rerender")
    inputs = VideoRerenderForm.inputs({n: controls[n] for n in VideoRerenderForm.names()})
    page = endpoint(VideoRerenderForm, rerender_on_page, "video_rerender")
    gr.on(
        [c.change for c in inputs],
        on_page(page, 3, lambda out: out if isinstance(out[1], dict) else shown(out)),
        inputs,
        [*outputs, message],
        api_name="page_video_rerender",
        api_visibility="private",
        concurrency_limit=admitted(VIDEO),
        concurrency_id="video",
        trigger_mode="always_last",
    )
    api_twin(handler, inputs, outputs, "video_rerender", concurrency_limit=admitted(VIDEO), concurrency_id="video")


def compare_tab(app: App, keys: tuple[Any, ...], default_id: str, clip: Any, url: Any) -> list[gr.Dropdown]:
    """Two providers on one clip: side by side, in sync, one frame slider."""
    first, second = videos.pair_of(default_id, ready_ids(app))
    with gr.Row():
        provider_a = provider_menu(app, first, "Provider A (left)", "video-provider-a")
        provider_b = provider_menu(app, second, "Provider B (right)", "video-provider-b")
    with gr.Row():
        run = gr.Button("Compare", variant="primary", elem_id="video-compare-run", min_width=140)
        stop = gr.Button("Stop", variant="stop", elem_id="video-compare-stop", min_width=80)
    message = gr.Markdown(visible=False, elem_id="video-compare-message", elem_classes=["refusal"])
    with gr.Row(elem_id="video-pair"):
        left = gr.Video(label="A", interactive=False, loop=True, height=240, elem_id="video-cmp-a", min_width=0)
        right = gr.Video(label="B", interactive=False, loop=True, height=240, elem_id="video-cmp-b", min_width=0)
    with gr.Row():
        play = gr.Button("Play both", elem_id="video-play", min_width=80)
        pause = gr.Button("Pause", elem_id="video-pause", min_width=80)
    frame = gr.Slider(0, 1, value=0, step=1, label="Frame (both videos)", elem_id="video-frame")
    table = gr.Dataframe(
        headers=video_compare.TABLE_HEADERS,
        label="Frames, seconds and cost",
        interactive=False,
        wrap=True,
        elem_id="video-compare-table",
        elem_classes=["wrapped-table"],
    )
    agreement = gr.Markdown(elem_id="video-agreement")
    controls = {"video": clip, "url": url, "provider_a": provider_a, "provider_b": provider_b, **key_controls(keys)}

    def compare(form: VideoCompareForm, call: Call) -> tuple[Any, ...]:
        out = video_compare.compare(
            app,
            video_clips.clip_of(form.video, form.url),
            [str(form.provider_a or ""), str(form.provider_b or "")],
            form.keys(),
            session_id=session_of(call.request),
            report=reporter(call),
        )
        slider = gr.update(maximum=max(out.frames - 1, 1), value=0)
        left, right = (None if p is None else str(p) for p in out.previews)  # a side that failed: no video
        return left, right, slider, out.table, out.agreement

    handler = endpoint(VideoCompareForm, compare, "video_compare")
    inputs = VideoCompareForm.inputs(controls)
    outputs = [left, right, frame, table, agreement]
    run.click(
        on_page(handler, 5),
        inputs,
        [*outputs, message],
        api_name="page_video_compare",
        api_visibility="private",
        concurrency_limit=admitted(VIDEO),
        concurrency_id="video",
    )
    api_twin(
        handler,
        inputs,
        outputs,
        "video_compare",
        on_cancel=halt_for(app),
        concurrency_limit=admitted(VIDEO),
        concurrency_id="video",
    )
    stop.click(page_errors(halt_for(app)), None, None, api_visibility="private", queue=False)
    frame.input(None, frame, None, js=STEP_JS, api_visibility="private")
    play.click(None, None, None, js=PLAY_JS, api_visibility="private")
    pause.click(None, None, None, js=PAUSE_JS, api_visibility="private")
    return [provider_a, provider_b]


def ready_ids(app: App) -> list[str]:
    """Local video providers ready here, quick ones first (the Compare view's default pair)."""
    return default_selection("", Keys(), app.config, at_least=2)
