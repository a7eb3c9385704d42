"""The whole page: the tabs, the keys every tab shares, the MCP tool, and the
launch options (theme, CSS, upload size, the middleware in front of gradio).
app.py calls build_demo() and launches it; tests build and launch it too."""

from __future__ import annotations

import functools
import threading
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from ..vendors import VENDORS
from . import catalog, guard, identity
from .benchmark import scoring as benchmark
from .benchmark.tab import benchmark_tab
from .catalog import Keys
from .compare.tab import compare_tab
from .config import AppConfig
from .context import App
from .file_limits import shown_mb, upload_max_bytes
from .fncalls import FnCallCheck, PageFn
from .look import OutputStore
from .mcp_gate import McpGate
from .narrow import NARROW_CSS
from .rawcalls import RawCallCheck, Slot
from .remove.mcp_tool import mcp_tool
from .remove.tab import remove_tab
from .replace.tab import ai_tab
from .rest import routes as rest
from .routecheck import RouteCheck
from .spending import Session
from .ui.common import CSS, lenient, log, session_of
from .ui.quota_bar import quota_bar
from .upload_room import UploadLimit, UploadRoom
from .video import videos
from .video.js import PAIR_JS, VIDEO_CSS
from .video.tab import video_tab
from .warmup import preload, preload_cpu
from .warmup import warm_up as warm_in_background

SESSION_TTL_S = 3600  # a browser session's state expires after an hour unused
# gradio's temporary files (uploads, previews, downloads): every 10 minutes, those
# older than 30 minutes are deleted (rmbg.webapp.look.OutputStore bounds its own too).
TEMP_FILES = (600, 1800)


def stop_on_leave(request: gr.Request) -> None:
    """The page was closed: its session's Benchmark run (if any) stops before its next provider call."""
    benchmark.STOPS.stop(session_of(request))


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """The whole page. `config` defaults to AppConfig.from_env()."""
    config = config or AppConfig.from_env()
    identity.trust_only(config.trusted_proxies)  # X-Forwarded-For, for uvicorn when it starts
    app = App.create(config, store=OutputStore(get_upload_folder(), max_bytes=config.downloads_mb * 2**20))
    default_id, default_reason = catalog.default_choice()
    log.info("default provider: %s (%s)", default_id, default_reason)
    if guard.ZEROGPU:  # loaded and on the device before the first visitor, as ZeroGPU asks
        preload(app, default_id)
        preload_cpu(app)  # and the model a visitor whose GPU time is spent runs on the CPU instead
    with gr.Blocks(title="rmbg · remove image and video backgrounds", delete_cache=TEMP_FILES) as demo:
        session = gr.State(Session(), time_to_live=SESSION_TTL_S)
        gr.Markdown(
            "# rmbg · remove image and video backgrounds\n"
            "Local models (BiRefNet, BRIA RMBG-1.4 / 2.0, U2-Net-p) or hosted APIs "
            f"({', '.join(v.label for v in VENDORS)}). "
            "Changing the background, the mask view or the format re-uses the matte: no new model run, no new charge."
        )
        quota_bar(demo, default_id)  # on ZeroGPU: whose GPU quota a photo spends, and the sign-in
        with gr.Accordion("API keys for hosted providers (optional)", open=False):
            keys = key_boxes()
            gr.Markdown("Keys stay in this browser tab: sent with each request, never stored on the server.")
        with gr.Tab("Remove"):
            provider, note = remove_tab(app, session, keys, default_id, catalog.default_note())
        with gr.Tab("Compare"):
            cmp_providers = compare_tab(app, session, keys, default_id)
        with gr.Tab("Video"):
            forget_clips, clip_menus = video_tab(app, keys, default_id)
        with gr.Tab("AI background"):
            ai_tab(app, keys)
        with gr.Tab("Benchmark"):
            bench_providers = benchmark_tab(app, keys, default_id)
        wire_keys(app, keys, provider, note, [cmp_providers, bench_providers], clip_menus)
        mcp_tool(app, default_id)
        demo.unload(stop_on_leave)  # a visitor who closes the page: their Benchmark run calls nothing more
        demo.unload(forget_clips)  # a closed page's clip stops and its kept files go at once
    for block in demo.blocks.values():  # any raw value reaches the handlers' one check (rmbg.webapp.inputs)
        if isinstance(block, gr.components.Component):
            lenient(block)
    demo.rmbg_routes = rest.routes(app, lambda: default_id)  # POST /api/remove and /api/video
    demo.rmbg_warm_up = functools.partial(warm_in_background, app, default_id)  # see warm_up()
    # uploads cannot fill the disk (rmbg.webapp.upload_room); the download store bounds its own files
    demo.rmbg_upload_room = UploadRoom(get_upload_folder(), config.uploads_mb * 2**20, keep=app.store.owns)
    return demo


def key_boxes() -> tuple[gr.Textbox, ...]:
    """One password box per vendor (rmbg.vendors), two to a row, in VENDORS order (Keys.of takes them so)."""
    boxes: list[gr.Textbox] = []
    for start in range(0, len(VENDORS), 2):
        with gr.Row():
            boxes += [
                gr.Textbox(label=v.box_label, type="password", placeholder=v.hint, elem_id=f"key-{v.slot}")
                for v in VENDORS[start : start + 2]
            ]
    return tuple(boxes)


def wire_keys(
    app: App, keys: tuple[Any, ...], provider: Any, note: Any, lists: list[Any], clip_menus: list[Any]
) -> None:
    """A pasted key changes which providers are ready, in every tab: the Remove menu and its note,
    Compare's and Benchmark's checkboxes, the Video tab's menus. One event for all of them: two
    events on the same key boxes made gradio's page re-fire the boxes' change without end once two
    keys were typed in quick succession (tests/test_keys_browser.py)."""

    def on_keys(provider_id: str, *pasted: Any) -> tuple[Any, ...]:
        visitor = Keys.of(*pasted)
        images = catalog.choices(visitor, app.config)
        clips = videos.choices(visitor, app.config)
        return (
            gr.update(choices=images),
            *(gr.update(choices=images) for _ in lists),
            *(gr.update(choices=clips) for _ in clip_menus),
            catalog.note(provider_id, visitor, app.config),
        )

    gr.on(
        [k.change for k in keys],
        on_keys,
        [provider, *keys],
        [provider, *lists, *clip_menus, note],
        api_visibility="private",
        trigger_mode="always_last",
        show_progress="hidden",
    )


def warm_up(demo: gr.Blocks) -> threading.Thread:
    """Load the page's default model in a daemon thread (rmbg.webapp.warmup), so its first
    visitor does not wait for the load: `python app.py` calls it as it launches."""
    thread: threading.Thread = demo.rmbg_warm_up()  # type: ignore[attr-defined]  # set by build_demo
    return thread


def api_slots(demo: gr.Blocks) -> dict[str, list[Slot]]:
    """Each public named endpoint's inputs, for the raw-call check (rmbg.webapp.rawcalls): the
    page's private ones (api_visibility="private") are no API, so a raw call to them is refused."""
    named: dict[str, Any] = demo.get_api_info()["named_endpoints"]  # each value's name in a call of named values

    def slots(fn: Any) -> list[Slot]:
        params = iter(named.get(f"/{fn.api_name}", {}).get("parameters", []))
        return [slot(c, None if getattr(c, "skip_api", False) else next(params, None)) for c in fn.inputs]

    def slot(component: Any, param: dict | None) -> Slot:
        if param is None:  # gr.State: gradio's API takes no value for it
            return Slot("session state (null)")
        is_file = isinstance(component, (gr.Image, gr.File, gr.Video))
        many = is_file and getattr(component, "file_count", "single") in ("multiple", "directory")
        label = str(component.label or type(component).__name__)
        required = not param.get("parameter_has_default", False)
        return Slot(label, file=is_file, many=many, name=str(param.get("parameter_name", "")), required=required)

    return {
        fn.api_name: slots(fn)
        for fn in demo.fns.values()
        if isinstance(fn.api_name, str) and fn.api_visibility != "private"
    }


def numbered_fns(demo: gr.Blocks) -> dict[int, PageFn]:
    """The page's functions run on the server, by number, as a call of each must give its values
    (rmbg.webapp.fncalls): an Examples list takes a sample's number, a click on a picture its point."""

    def described(fn: Any) -> PageFn:
        examples = {i: len(c.raw_samples) for i, c in enumerate(fn.inputs) if isinstance(c, gr.Dataset)}
        point = any(event == "select" and isinstance(demo.blocks.get(b), gr.Image) for b, event in fn.targets)
        return PageFn(len(fn.inputs), examples, point)

    return {i: described(fn) for i, fn in demo.fns.items() if fn.fn is not None}


def launch_kwargs(demo: gr.Blocks) -> dict[str, Any]:
    """launch() options shared by `python app.py` and the tests (gradio 6
    takes theme and css at launch)."""
    # show_error: what still fails inside gradio gets its reason instead of {"error": null};
    # handler errors are already readable messages (readable_errors), never tracebacks, and
    # raw calls of the wrong shape are answered before gradio by RawCallCheck.
    endpoints = functools.cache(functools.partial(api_slots, demo))  # read at the first raw call, once
    page_fns = functools.cache(lambda: {fn.api_name: i for i, fn in demo.fns.items() if isinstance(fn.api_name, str)})
    check = Middleware(RawCallCheck, endpoints=endpoints, uploads=get_upload_folder(), page_fns=page_fns)
    blocks = functools.cache(
        lambda: frozenset(demo.blocks) | {b for fn in demo.fns.values() for b, _ in fn.targets if b is not None}
    )
    by_number = Middleware(FnCallCheck, fns=functools.cache(functools.partial(numbered_fns, demo)), components=blocks)
    routes = Middleware(RouteCheck, queue=lambda: demo._queue)  # sessions, events, uploads, files (routecheck)
    mcp_caller = Middleware(identity.McpStamp)  # who an MCP tool call is for (rmbg.webapp.identity)
    mcp_gate = Middleware(McpGate, demo=demo)  # only the listed tool, never a page endpoint (rmbg.webapp.mcp_gate)
    # one upload limit for the page (gradio has one): a clip's; images are held to theirs by the handlers
    largest = upload_max_bytes()  # rmbg.webapp.file_limits; an upload over it is answered before its body is read
    if demo.rmbg_upload_room.limit < 2 * largest:  # type: ignore[attr-defined]
        log.warning(
            "RMBG_UPLOADS_MB holds fewer than two of the largest upload (%s MB, RMBG_VIDEO_MAX_MB): "
            "visitors will often be told the room is full",
            shown_mb(largest),
        )
    room = Middleware(UploadLimit, room=demo.rmbg_upload_room, max_bytes=largest)  # type: ignore[attr-defined]
    return {
        "theme": gr.themes.Soft(primary_hue="indigo"),
        "css": CSS + NARROW_CSS + VIDEO_CSS,  # a phone gets tables as cards, whole pictures in galleries (.narrow)
        "js": PAIR_JS,  # the Video tab's Compare view: its two videos kept in sync
        "max_file_size": largest,
        "show_error": True,
        "mcp_server": True,
        "app_kwargs": {
            "middleware": [mcp_gate, mcp_caller, room, check, by_number, routes],
            "routes": getattr(demo, "rmbg_routes", []),
        },
    }
