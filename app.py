"""rmbg web app: remove image backgrounds with local models or hosted APIs.

UI wiring only: every decision (provider states, keys, spending cap, costs,
rendering) lives in rmbg.webapp. Run `python app.py`, then open the printed
address. GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured, as usual.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from rmbg.errors import RmbgError
from rmbg.pricing import price_table
from rmbg.providers.hosted.payload import SecretFilter
from rmbg.replace import replace_estimate
from rmbg.types import format_usd
from rmbg.webapp import AppConfig, Keys, Look, Session, actions, catalog, comparing, identity, marks, replacing, rest
from rmbg.webapp.context import App
from rmbg.webapp.costs import result_line, volume_of
from rmbg.webapp.inputs import check as check_inputs
from rmbg.webapp.logs import configure_logging
from rmbg.webapp.look import OutputStore, file_name, flag
from rmbg.webapp.memory import serving_allocator
from rmbg.webapp.rawcalls import RawCallCheck, Slot
from rmbg.webapp.upload_room import UploadLimit, UploadRoom

log = logging.getLogger("rmbg.app")
SESSION_TTL_S = 3600  # a browser session's state expires after an hour unused
# gradio's temporary files (uploads, previews, downloads): every 10 minutes, those
# older than 30 minutes are deleted (rmbg.webapp.look.OutputStore bounds its own too).
TEMP_FILES = (600, 1800)
HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (HERE / "examples").glob("*.jpg"))
CSS = """
.gradio-container {max-width: 1280px !important; margin: auto;}
#cost-line {font-size: 0.92em; min-height: 3.2em;}
#cost-line p {margin: 0.15em 0;}
footer {opacity: 0.7;}
.refusal {border-left: 3px solid #dc2626; padding: 0.2em 0.7em; background: rgba(220, 38, 38, 0.06);}
#look-row .label-text, #framing .label-text {white-space: nowrap;}
#background .wrap, #align .wrap, #format .wrap {gap: 6px;}
#background label, #align label, #format label {padding: 5px 10px;}
input[role=combobox] {text-overflow: ellipsis; padding-right: 1.6em;}
.colour-row input[type=color], .colour-row button.dialog-button {outline: 1px solid #6b7280; outline-offset: 1px;}
.wrapped-table table, .wrapped-table .virtual-body {
    table-layout: fixed; width: 100% !important; min-width: 0 !important;
}
.wrapped-table th, .wrapped-table td {width: auto !important; max-width: none !important;}
.wrapped-table th, .wrapped-table td, .wrapped-table th *, .wrapped-table td * {white-space: normal !important;
  overflow-wrap: anywhere; text-overflow: clip !important; min-width: 0 !important;}
#compare-gallery img, #ai-gallery img {object-fit: contain !important;}
.gradio-container .gallery-container, .gradio-container .table-wrap {max-width: 100%;}
#sam-marks img {cursor: crosshair;}
@media (max-width: 480px) {.tab-container button {padding-left: 6px !important; padding-right: 6px !important;
  font-size: 0.95em;}}
"""


def image_input(
    label: str, elem_id: str, height: int, sources=("upload", "webcam", "clipboard"), visible: bool = True
) -> gr.Image:
    """An image upload handed over as a file path, in its own mode (image_mode
    None: gradio reads only the header, never decodes or drops alpha), so
    rmbg's loader checks the pixel limit before anything decodes it."""
    return lenient(
        gr.Image(
            label=label,
            type="filepath",
            image_mode=None,
            sources=list(sources),
            height=height,
            elem_id=elem_id,
            visible=visible,
        )
    )


def lenient(component):
    """Let a value the component cannot preprocess through to rmbg, which says
    what is wrong with it in its own words (gradio alone answers with its
    internal reason and logs a traceback): an image's file path goes to
    rmbg's load_image, any other raw value to the handler's own check.
    An instance override, not a subclass: gradio writes a .pyi next to the
    module of every Component subclass."""
    strict = component.preprocess
    if getattr(strict, "rmbg_lenient", False):
        return component

    def preprocess(payload):
        try:
            return strict(payload)
        except Exception:  # noqa: BLE001 - reported by rmbg's own checks, readably
            if isinstance(component, gr.Image):
                path = getattr(payload, "path", None)
                return str(path) if path else None
            return payload

    preprocess.rmbg_lenient = True  # type: ignore[attr-defined]
    component.preprocess = preprocess
    return component


def readable_errors(fn, door: str = "mcp"):
    """The one place an RmbgError becomes a gr.Error: its message in `door`'s
    words (rmbg.wording: "page" for the page's own events, "mcp" for the
    named API and MCP tool), with this visitor's keys blanked. Anything else
    is logged on the server and shown as a plain sentence, never a traceback."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            check_inputs(signature.bind_partial(*args, **kwargs).arguments)  # every value's kind, one place
            return fn(*args, **kwargs)
        except RmbgError as exc:
            bound = signature.bind_partial(*args, **kwargs).arguments
            keys = Keys.of(*(bound.get(f"{slot}_key") for slot in catalog.SLOTS))
            raise gr.Error(actions.safe_message(exc, keys, door), print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                "Something went wrong on the server (logged). Please try again.", print_exception=False
            ) from None

    return wrapper


def page_errors(fn):
    """readable_errors in the page's words, for the page's own small events."""
    return readable_errors(fn, "page")


def session_of(request: gr.Request | None) -> str:
    """Whose spending a call is (rmbg.webapp.identity): the MCP session for
    an MCP tool call, else the gradio session; the ledger keys it."""
    return identity.call_identity(getattr(request, "session_hash", None), getattr(request, "headers", None))


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """The whole page. `config` defaults to AppConfig.from_env()."""
    config = config or AppConfig.from_env()
    identity.trust_only(config.trusted_proxies)  # X-Forwarded-For, for uvicorn when it starts
    app = App.create(config, store=OutputStore(get_upload_folder(), max_bytes=config.downloads_mb * 2**20))
    default_id, default_reason = catalog.default_choice()
    log.info("default provider: %s (%s)", default_id, default_reason)
    with gr.Blocks(title="rmbg · remove image backgrounds", delete_cache=TEMP_FILES) as demo:
        session = gr.State(Session(), time_to_live=SESSION_TTL_S)
        gr.Markdown(
            "# rmbg · remove image backgrounds\n"
            "Local models (BiRefNet, BRIA RMBG-1.4 / 2.0, U2-Net-p) or hosted APIs (fal.ai, Runware, remove.bg, "
            "Photoroom). "
            "Changing the background, the mask view or the format re-uses the matte: no new model run, no new charge."
        )
        with gr.Accordion("API keys for hosted providers (optional)", open=False):
            with gr.Row():
                fal_key = gr.Textbox(label="fal.ai key", type="password", placeholder="key_id:key_secret")
                runware_key = gr.Textbox(label="Runware key", type="password", placeholder="Runware API key")
            with gr.Row():
                removebg_key = gr.Textbox(label="remove.bg key", type="password", placeholder="remove.bg API key")
                photoroom_key = gr.Textbox(label="Photoroom key", type="password", placeholder="Photoroom API key")
            gr.Markdown("Keys stay in this browser tab: sent with each request, never stored on the server.")
        keys = (fal_key, runware_key, removebg_key, photoroom_key)  # in catalog.SLOTS order
        with gr.Tab("Remove"):
            provider, note = remove_tab(app, session, keys, default_id, default_reason)
        with gr.Tab("Compare"):
            cmp_providers = compare_tab(app, session, keys, default_id)
        with gr.Tab("AI background"):
            ai_tab(app, keys)
        with gr.Tab("Benchmark"):
            bench_providers = benchmark_tab(app, keys, default_id)
        wire_keys(app, keys, provider, note, [cmp_providers, bench_providers])
        mcp_tool(app, default_id)
    for block in demo.blocks.values():  # any raw value reaches the handlers' one check (rmbg.webapp.inputs)
        if isinstance(block, gr.components.Component):
            lenient(block)
    demo.rmbg_routes = rest.routes(app, lambda: default_id)  # type: ignore[attr-defined]  # POST /api/remove
    # uploads cannot fill the disk (rmbg.webapp.upload_room); the download store bounds its own files
    demo.rmbg_upload_room = UploadRoom(get_upload_folder(), config.uploads_mb * 2**20, keep=app.store.owns)  # type: ignore[attr-defined]
    return demo


def on_page(fn, n_outputs: int, shown=lambda out: out):
    """The page's version of a handler, with one more output: the message
    under the button. An error keeps what is shown (the last result, its cost
    line) and says why in that message instead of turning every output into
    an "Error" badge; success clears it. `shown` maps the handler's outputs
    to page updates. The named API endpoints keep `readable_errors` (an error
    is an error for a program) and plain values."""
    api = readable_errors(fn, "page")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            out = api(*args, **kwargs)
        except gr.Error as exc:
            return (*(gr.skip(),) * n_outputs, gr.update(value=f"**Could not do that:** {exc.message}", visible=True))
        return (*shown(out if isinstance(out, tuple) else (out,)), gr.update(value="", visible=False))

    return wrapper


def api_twin(fn, inputs, outputs, api_name: str, *, tool: bool = False, **kwargs) -> None:
    """`fn` as the named API endpoint `api_name`, through a hidden button (the
    page calls its own version, on_page(fn), privately); an MCP tool only
    when `tool` (the page's endpoints need a browser session)."""
    gr.Button(visible=False, elem_id=f"api-{api_name}").click(
        not_a_tool(readable_errors(fn), not tool), inputs, outputs, api_name=api_name, **kwargs
    )


def not_a_tool(fn, hide: bool = True):
    """Keep an endpoint out of the MCP server's tool list (gradio lists only
    functions whose _mcp_type is unset or "tool")."""
    if hide:
        fn._mcp_type = "none"
    return fn


def remove_tab(app: App, session: gr.State, keys, default_id: str, default_reason: str):
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
            run = gr.Button("Remove background", variant="primary", elem_id="run")
            message = gr.Markdown(visible=False, elem_id="message", elem_classes=["refusal"])
            look = look_controls()
        with gr.Column(scale=3, min_width=300):
            slider = gr.ImageSlider(
                label="Before / after", type="pil", format="png", max_height=560, interactive=False, elem_id="result"
            )
            file = gr.DownloadButton("Download PNG", visible=False, elem_id="download")
            cost = gr.Markdown(elem_id="cost-line")
            volume = lenient(
                gr.Number(
                    app.config.monthly_volume,
                    label="Images per month (cost projection)",
                    precision=0,
                    minimum=0,
                    elem_id="volume",
                )
            )
    wire_remove(
        app, session, keys, image, provider, run, look, volume, (slider, file, cost), message, [vitmatte, *pick[:2]]
    )
    wire_pick(image, *pick)

    def on_url(text):
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


def pick_controls() -> list:
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
    return [points, box, mode, clear, undo, marked, section]


def wire_pick(image, points, box, mode, clear, undo, marked, section) -> None:
    """A click on the photo, or on its marked copy, adds a point, or (mode
    "box corner") one corner of the box, two clicks making a box; a click on a
    point removes it. The first click on a new photo starts new prompts (the
    photo they belong to is kept with them). The marked copy follows the fields."""
    owner = gr.State("")

    def on_click(current, corners, chosen, photo, belongs_to, evt: gr.SelectData, scaled=False):
        size = marks.photo_size(photo)
        if size is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if belongs_to != photo:
            current, corners = "", ""
        factor = marks.scale_of(size) if scaled else 1.0
        x, y = evt.index[0] * factor, evt.index[1] * factor
        current, corners = marks.click(current, corners, x, y, chosen, marks.reach_of(size))
        return current, corners, photo, gr.update(open=True)

    def on_marks_click(current, corners, chosen, photo, belongs_to, evt: gr.SelectData):
        return on_click(current, corners, chosen, photo, belongs_to, evt, scaled=True)

    outs = [points, box, owner, section]
    ins = [points, box, mode, image, owner]
    image.select(on_click, ins, outs, api_visibility="private", show_progress="hidden")
    marked.select(on_marks_click, ins, outs, api_visibility="private", show_progress="hidden")
    gr.on(
        [points.change, box.change, image.change],
        marks.draw,
        [image, points, box],
        marked,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    clear.click(None, None, [points, box], js="() => ['', '']", api_visibility="private")
    undo.click(marks.undo, points, points, api_visibility="private", show_progress="hidden")


# Canvas choices offered in the menu (any "WxH" or "W:H" can be typed).
CANVASES = ["none", "1:1", "4:5", "3:2", "2000x2000", "1600x1600", "1000x1000"]


def look_controls() -> list:
    """Background, colour, background image, mask only, format, clean edges, then
    crop, canvas, margin, align (in the order remove() takes them)."""
    with gr.Group():
        background = gr.Radio(
            ["transparent", "colour", "image"], value="transparent", label="Background", elem_id="background"
        )
        colour_row, colour = colour_control("colour")
        bg_image = image_input(
            "Background image", "background-image", 160, sources=("upload", "clipboard"), visible=False
        )
        with gr.Row(elem_id="look-row"):
            mask_only = gr.Checkbox(False, label="Mask only", elem_id="mask-only", min_width=120)
            refine = gr.Checkbox(False, label="Clean edges", elem_id="refine-edges", min_width=120)
        out_format = gr.Radio(["png", "webp", "jpeg"], value="png", label="Format", elem_id="format")
    with gr.Accordion("Product photo: crop and canvas", open=False, elem_id="framing"):
        with gr.Row():
            crop = gr.Checkbox(False, label="Crop to subject", elem_id="crop", min_width=120)
            canvas = gr.Dropdown(
                CANVASES,
                value="none",
                label="Canvas (size or aspect)",
                allow_custom_value=True,
                elem_id="canvas",
                min_width=140,
            )
        with gr.Row():
            margin = gr.Textbox("5%", label="Margin (% or px)", elem_id="margin", min_width=100, max_lines=1)
            align = gr.Radio(
                ["center", "bottom"], value="center", label="Subject position", elem_id="align", min_width=140
            )
    background.change(
        lambda kind: (gr.update(visible=kind == "colour"), gr.update(visible=kind == "image")),
        background,
        [colour_row, bg_image],
        api_visibility="private",
        queue=False,
    )
    return [background, colour, bg_image, mask_only, out_format, refine, crop, canvas, margin, align]


def colour_control(elem_id: str):
    """A colour swatch (framed: a white one on a white page is otherwise
    invisible) with a hex field beside it, kept in step both ways; hidden
    until the colour background is chosen. Returns (its row, the picker)."""
    with gr.Row(visible=False, elem_id=f"{elem_id}-row", elem_classes=["colour-row"]) as row:
        picker = gr.ColorPicker("#ffffff", label="Colour", elem_id=elem_id, min_width=80, scale=0)
        hex_field = gr.Textbox(
            "#ffffff", label="Hex (or a name: white, navy…)", elem_id=f"{elem_id}-hex", max_lines=1, min_width=140
        )
    hex_field.submit(
        lambda text: actions.colour_hex(text) or gr.skip(), hex_field, picker, api_visibility="private", queue=False
    )
    hex_field.blur(
        lambda text: actions.colour_hex(text) or gr.skip(), hex_field, picker, api_visibility="private", queue=False
    )
    picker.input(lambda value: value, picker, hex_field, api_visibility="private", queue=False)
    return row, picker


def framing_values(crop, canvas, margin, align) -> tuple:
    """The page's framing controls as Look.of takes them: without crop or a
    canvas, margin and alignment are not asked for (the fields keep their values)."""
    canvas = None if (canvas or "none") == "none" else canvas
    if not crop and canvas is None:
        return False, None, None, None
    return crop, canvas, margin, align


def wire_remove(app: App, session, keys, image, provider, run, look, volume, outputs, message, model_side) -> None:
    """/remove, /rerender and the small updates of the Remove tab."""
    background, colour, bg_image, mask_only, out_format, refine = look[:6]
    slider, file, cost = outputs

    def remove(
        state,
        image,
        provider,
        background="transparent",
        colour="#ffffff",
        background_image=None,
        mask_only=False,
        format="png",
        monthly_volume=None,
        fal_key=None,
        runware_key=None,
        removebg_key=None,
        photoroom_key=None,
        refine_edges=False,
        crop=False,
        canvas=None,
        margin=None,
        align=None,
        vitmatte=False,
        points=None,
        box=None,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        started = time.perf_counter()  # the line's total: from the click reaching the server to the result
        chosen = Look.of(
            background,
            colour,
            background_image,
            mask_only,
            format,
            refine_edges,
            *framing_values(crop, canvas, margin, align),
        )
        picked, boxed = actions.prompts_of(points, box)
        progress(0, desc="Starting…")
        state, out = actions.remove(
            state,
            image,
            provider,
            chosen,
            Keys.of(fal_key, runware_key, removebg_key, photoroom_key),
            app,
            volume_of(monthly_volume),
            report=lambda text: progress(0.5, desc=text),
            session_id=session_of(request),
            refine="vitmatte" if flag(vitmatte, "vitmatte") else None,
            points=picked,
            box=boxed,
            started=started,
        )
        return state, (out.before, out.after), str(out.file), out.cost_line

    inputs = [session, image, provider, *look[:5], volume, *keys, *look[5:], *model_side]
    run.click(
        on_page(remove, 4, lambda out: (*out[:2], download_update(out[2]), out[3])),
        inputs,
        [session, *outputs, message],
        api_name="page_remove",
        api_visibility="private",
        concurrency_limit=4,
        concurrency_id="remove",
    )
    api_twin(remove, inputs, [session, *outputs], "remove", concurrency_limit=4, concurrency_id="remove")

    def rerender(
        state,
        background="transparent",
        colour="#ffffff",
        background_image=None,
        mask_only=False,
        format="png",
        monthly_volume=None,
        refine_edges=False,
        crop=False,
        canvas=None,
        margin=None,
        align=None,
    ):
        chosen = Look.of(
            background,
            colour,
            background_image,
            mask_only,
            format,
            refine_edges,
            *framing_values(crop, canvas, margin, align),
        )
        out = actions.rerender(state, chosen, app, volume_of(monthly_volume))
        if out is None:
            return gr.skip(), gr.skip(), gr.skip()
        return (out.before, out.after), str(out.file), out.cost_line

    page_rerender = on_page(
        rerender,
        3,
        lambda out: (
            out
            if isinstance(out[1], dict)  # a skip: nothing run yet
            else (out[0], download_update(out[1]), out[2])
        ),
    )

    def rerender_on_page(state, background, colour, background_image, *rest):
        if background == "image" and not background_image:  # waiting for the upload: nothing to say yet
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return page_rerender(state, background, colour, background_image, *rest)

    look_inputs = [session, *look[:5], volume, *look[5:]]
    gr.on(
        [c.change for c in look],
        rerender_on_page,
        look_inputs,
        [*outputs, message],
        api_name="page_rerender",
        api_visibility="private",
        concurrency_limit=8,
        trigger_mode="always_last",
        show_progress="minimal",
    )
    api_twin(rerender, look_inputs, list(outputs), "rerender", concurrency_limit=8)

    @page_errors
    def on_volume(state, volume):
        line = actions.cost_line(state, app, volume_of(volume))
        return gr.skip() if line is None else line

    volume.change(on_volume, [session, volume], cost, api_visibility="private", show_progress="hidden")

    def on_upload(path):
        why = actions.check_upload(path)
        return gr.update(value=f"**Could not do that:** {why}", visible=True) if why else gr.update(visible=False)

    image.upload(on_upload, image, message, api_visibility="private", show_progress="hidden")


def download_update(path: str):
    """The download button, shown once there is a file, named after its format."""
    kind = Path(path).suffix.lstrip(".").upper().replace("JPG", "JPEG")
    return gr.update(value=path, visible=True, label=f"Download {kind}")


def wire_keys(app: App, keys, provider: gr.Dropdown, note: gr.Markdown, lists: list[gr.CheckboxGroup]) -> None:
    """A pasted key changes which providers are ready, in every tab (the Remove menu, Compare's and
    Benchmark's checkboxes)."""

    def on_keys(provider_id, *pasted):
        visitor = Keys.of(*pasted)
        labels = catalog.choices(visitor, app.config)
        return (
            gr.update(choices=labels),
            *(gr.update(choices=labels) for _ in lists),
            catalog.note(provider_id, visitor, app.config),
        )

    gr.on(
        [k.change for k in keys],
        on_keys,
        [provider, *keys],
        [provider, *lists, note],
        api_visibility="private",
        trigger_mode="always_last",
        show_progress="hidden",
    )


def compare_tab(app: App, session: gr.State, keys, default_id: str) -> gr.CheckboxGroup:
    """The Compare tab: layout, then its events. Returns the provider checkboxes."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            image = image_input("Image", "compare-image", 300)
            gr.Examples(EXAMPLES, inputs=image, label="Examples")
            providers = gr.CheckboxGroup(
                catalog.choices(Keys(), app.config),
                value=comparing.default_selection(default_id, Keys(), app.config),
                label="Providers",
                elem_id="compare-providers",
            )
            vitmatte = gr.Checkbox(False, label="Also with refined edges (ViTMatte)", elem_id="compare-vitmatte")
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
            gallery = gr.Gallery(
                label="Results", columns=3, object_fit="contain", height=420, format="png", elem_id="compare-gallery"
            )
            table = gr.Dataframe(
                headers=comparing.TABLE_HEADERS,
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
    wire_compare(app, session, keys, image, providers, (run, message), [background, colour], views, vitmatte)
    return providers


def wire_compare(app: App, session, keys, image, providers, run, look, views, vitmatte) -> None:
    """/compare, and re-showing a comparison with another background or pair."""
    pair_a, pair_b, pair_slider = views[3:]

    run, message = run

    def compare(
        state,
        image,
        providers,
        background="transparent",
        colour="#ffffff",
        fal_key=None,
        runware_key=None,
        removebg_key=None,
        photoroom_key=None,
        vitmatte=False,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        chosen = Look.of(background, colour, None, False, "png")
        progress(0, desc="Starting…")
        state, shown = comparing.run(
            state,
            image,
            providers,
            Keys.of(fal_key, runware_key, removebg_key, photoroom_key),
            app,
            chosen,
            report=lambda text: progress(0.5, desc=text),
            session_id=session_of(request),
            refine="vitmatte" if flag(vitmatte, "vitmatte") else None,
        )
        return (state, *_compare_outputs(comparing.comparison_of(state, app), shown, chosen, app))

    inputs = [session, image, providers, *look, *keys, vitmatte]
    # The page's click: a refusal is one message under the button, no "Error" badge on each panel.
    run.click(
        on_page(compare, 7),
        inputs,
        [session, *views, message],
        api_name="page_compare",
        api_visibility="private",
        concurrency_limit=2,
        concurrency_id="compare",
    )
    api_twin(compare, inputs, [session, *views], "compare", concurrency_limit=2, concurrency_id="compare")

    @page_errors
    def compare_look(state, background="transparent", colour="#ffffff"):
        compared = comparing.comparison_of(state, app)
        if compared is None:
            return (gr.skip(),) * 6
        chosen = Look.of(background, colour, None, False, "png")
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
    def on_pair(state, a, b, background="transparent", colour="#ffffff"):
        chosen = Look.of(background, colour, None, False, "png")
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


def _compare_outputs(compared, shown, look, app: App):
    """Gallery, tables, the pair pickers (first two results) and their slider."""
    ids = shown.ids
    a, b = (ids[0], ids[1]) if len(ids) >= 2 else (None, None)
    images = comparing.pair(compared, a, b, look, app.config.max_preview_side) if a and compared else None
    return (
        shown.gallery,
        shown.table,
        shown.agreement,
        gr.update(choices=ids, value=a),
        gr.update(choices=ids, value=b),
        images,
    )


def ai_tab(app: App, keys) -> None:
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
                fast = gr.Checkbox(True, label="Fast", elem_id="ai-fast", min_width=80)
            estimate = gr.Markdown(ai_estimate(1, each), elem_id="ai-estimate")
            run = gr.Button("Generate backgrounds", variant="primary", elem_id="ai-run")
            message = gr.Markdown(visible=False, elem_id="ai-message", elem_classes=["refusal"])
        with gr.Column(scale=3, min_width=300):
            gallery = gr.Gallery(
                label="Results", columns=2, object_fit="contain", height=460, format="png", elem_id="ai-gallery"
            )
            line = gr.Markdown(elem_id="ai-cost-line")
    count.change(lambda n: ai_estimate(n, each), count, estimate, api_visibility="private", queue=False)

    def replace(
        image,
        prompt,
        reference_image=None,
        negative_prompt=None,
        seed=None,
        fast=True,
        num_images=1,
        fal_key=None,
        runware_key=None,
        removebg_key=None,
        photoroom_key=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        progress(0, desc="Waiting for fal.ai…")
        out = replacing.replace(
            image,
            prompt,
            reference_image,
            negative_prompt,
            seed,
            fast,
            num_images,
            Keys.of(fal_key, runware_key, removebg_key, photoroom_key),
            app,
            session_id=session_of(request),
        )
        return [str(f) for f in out.files], out.line

    inputs = [image, prompt, ref, negative, seed, fast, count, *keys]
    run.click(
        on_page(replace, 2),
        inputs,
        [gallery, line, message],
        api_name="page_replace",
        api_visibility="private",
        concurrency_limit=4,
        concurrency_id="replace",
    )
    api_twin(replace, inputs, [gallery, line], "replace", concurrency_limit=4, concurrency_id="replace")


def ai_estimate(count, each) -> str:
    n = int(count or 1)
    return (
        f"Estimated: {n} × ${format_usd(each)} = **${format_usd(each * n)}** (fal.ai, billed per generated "
        "image to your key; counted against this session's cap)"
    )


def benchmark_tab(app: App, keys, default_id: str) -> gr.CheckboxGroup:
    """The Benchmark tab: the visitor's images (and optional ground truth) through several providers:
    scores like `rmbg evaluate` with ground truth, blind votes without (rmbg.webapp.benchrun, .arena).
    Returns the provider checkboxes (a pasted key refreshes them)."""
    from rmbg.eval.votes import RANKING_HEADERS, VoteStore
    from rmbg.webapp import benchmark, benchreport, benchrun
    from rmbg.webapp.arena import BACKGROUNDS, Arena

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
            volume = lenient(
                gr.Number(
                    app.config.monthly_volume,
                    label="Images per month (cost projection)",
                    precision=0,
                    minimum=0,
                    elem_id="bench-volume",
                )
            )
            estimate = gr.Markdown("Upload images (or a .zip) to see the estimated cost.", elem_id="bench-estimate")
            with gr.Row():
                run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
                stop = gr.Button("Stop", elem_id="bench-stop")
            message = gr.Markdown(visible=False, elem_id="bench-message")
        with gr.Column(scale=3, min_width=300):
            status = gr.Markdown(elem_id="bench-status")
            table = gr.Dataframe(
                headers=benchreport.SUMMARY_HEADERS, interactive=False, wrap=True, elem_id="bench-table"
            )
            plot = gr.Plot(label="Quality against cost", elem_id="bench-plot")
            gallery = gr.Gallery(
                label="Per image, worst first",
                columns=4,
                object_fit="contain",
                height=420,
                format="png",
                elem_id="bench-gallery",
            )
            files = gr.File(
                label="Downloads (CSV, JSON)", file_count="multiple", interactive=False, elem_id="bench-files"
            )
    with gr.Accordion("Blind vote (benchmarks without ground truth)", open=True, elem_id="bench-vote"):
        with gr.Row():
            background = gr.Radio(
                [*BACKGROUNDS, "colour"], value="checkerboard", label="Background", elem_id="vote-background"
            )
            colour = gr.ColorPicker("#ffffff", label="Colour", elem_id="vote-colour")
            new_pair = gr.Button("New pair", elem_id="vote-new")
        with gr.Row():
            left = gr.Image(label="Left", type="pil", format="png", interactive=False, elem_id="vote-left")
            right = gr.Image(label="Right", type="pil", format="png", interactive=False, elem_id="vote-right")
        ticket = gr.Textbox(visible=False, elem_id="vote-ticket")
        with gr.Row():
            left_wins = gr.Button("Left is better", elem_id="vote-left-wins")
            right_wins = gr.Button("Right is better", elem_id="vote-right-wins")
        reveal = gr.Markdown(elem_id="vote-reveal")
        ranking = gr.Dataframe(
            headers=RANKING_HEADERS,
            value=arena.ranking() or None,
            interactive=False,
            label="Ranking from every visitor's votes",
            elem_id="vote-ranking",
        )

    def on_estimate(images, truth, providers, volume):
        return benchrun.estimate_line(images, truth, providers, app, volume_of(volume))

    gr.on(
        [images.change, truth.change, providers.change, volume.change],
        on_estimate,
        [images, truth, providers, volume],
        estimate,
        api_visibility="private",
        show_progress="hidden",
    )

    def run_benchmark(
        images,
        truth=None,
        providers=None,
        monthly_volume=None,
        fal_key=None,
        runware_key=None,
        removebg_key=None,
        photoroom_key=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        progress(0, desc="Reading the upload…")
        bars = []

        def report(step):  # a bar of images, and under it one for the image being run
            if not bars:
                bars.append(progress.tqdm(None, total=step.n_images, desc="Images", unit="images"))
            if step.in_image == step.n_providers:
                progress.update(1)
            progress((step.in_image, step.n_providers), desc=step.text(), unit="providers")

        shown = benchrun.run(
            images,
            truth,
            providers,
            Keys.of(fal_key, runware_key, removebg_key, photoroom_key),
            app,
            arena,
            session_id=session_of(request),
            volume=volume_of(monthly_volume),
            report=report,
        )
        return (shown.status, {"headers": shown.headers, "data": shown.rows}, shown.figure, shown.gallery, shown.files)

    inputs, outputs = [images, truth, providers, volume, *keys], [status, table, plot, gallery, files]
    run.click(
        on_page(run_benchmark, 5),
        inputs,
        [*outputs, message],
        api_name="page_benchmark",
        api_visibility="private",
        concurrency_limit=2,
        concurrency_id="benchmark",
    )
    api_twin(run_benchmark, inputs, outputs, "benchmark", concurrency_limit=2, concurrency_id="benchmark")

    def on_stop(request: gr.Request = None):
        asked = benchmark.STOPS.stop(session_of(request))
        return gr.update(value="Stopping after the current image…" if asked else "Nothing is running.", visible=True)

    stop.click(on_stop, None, message, api_visibility="private", queue=False)

    def vote_pair(background="checkerboard", colour="#ffffff", request: gr.Request = None):
        return (*arena.pair(session_of(request), background, colour), "")

    def vote(ticket, choice, request: gr.Request = None):
        return arena.vote(session_of(request), ticket, choice)

    pair_out = [left, right, ticket, reveal]
    new_pair.click(on_page(vote_pair, 4), [background, colour], [*pair_out, message], api_visibility="private")
    api_twin(vote_pair, [background, colour], pair_out, "benchmark_pair")

    def vote_left(ticket, request: gr.Request = None):
        return vote(ticket, "left", request)

    def vote_right(ticket, request: gr.Request = None):
        return vote(ticket, "right", request)

    for button, fn in ((left_wins, vote_left), (right_wins, vote_right)):
        button.click(on_page(fn, 2), ticket, [reveal, ranking, message], api_visibility="private")
    api_twin(vote, [ticket, gr.Textbox("left", visible=False)], [reveal, ranking], "benchmark_vote")
    return providers


def mcp_tool(app: App, default_id: str) -> None:
    """/remove_background: one self-contained call (no session) for programs
    and assistants; the app's only MCP tool (the page's endpoints keep their
    session and are marked as no tool)."""
    prices = ", ".join(f"{pid} ${usd}" for pid, usd in price_table().items())

    def remove_background(
        image,
        provider="",
        background="transparent",
        mask_only=False,
        crop=False,
        canvas="",
        margin="",
        align="center",
        format="png",
        fal_key=None,
        runware_key=None,
        removebg_key=None,
        photoroom_key=None,
        request: gr.Request = None,
    ):
        """Remove the background of a photo: returns the cut-out (transparent PNG by default) or the subject
        on a colour, framed for a product listing if asked. Local models cost only compute time (about a
        second on a CPU); hosted providers are billed per image to the key you pass (prices below).

        Args:
            image: the photo (JPEG, PNG, WebP...; at most 40 megapixels) as an http(s) URL or a data: URI.
            provider: which model; empty = this server's default; hosted ones are paid per image with your key.
            background: "transparent", or a colour for the new background ("white", "#f4f4f4").
            mask_only: true to get the black-and-white mask itself (white = kept).
            crop: true to crop to the subject (plus margin).
            canvas: "none", a size such as "2000x2000" (subject scaled to fit) or an aspect such as "1:1".
            margin: space around the subject with crop or canvas: "10%" or "40px".
            align: "center" or "bottom" (the subject stands on the bottom margin).
            format: "png" or "webp" (both keep transparency) or "jpeg".
            fal_key: a fal.ai API key, needed for providers fal-bria and fal-rmbg-3.
            runware_key: a Runware API key, needed for the runware-* providers.
            removebg_key: a remove.bg API key, needed for provider remove-bg.
            photoroom_key: a Photoroom API key, needed for provider photoroom.
        Returns:
            the output image (its file name says which provider made it).
        """
        kind, colour = Look.background_of(background, images=False)
        chosen = Look.of(
            kind,
            colour,
            None,
            mask_only,
            format or "png",
            False,
            *framing_values(crop, canvas or "none", margin, align),
        )
        data = actions.image_from_reference(image)
        result, used = actions.run(
            data,
            provider or default_id,
            chosen,
            Keys.of(fal_key, runware_key, removebg_key, photoroom_key),
            app,
            session_id=session_of(request),
        )
        path = app.store.write(file_name(f"image-{used.id}", chosen), result.encode(chosen.fmt))
        log.info("mcp remove_background: %s", result_line(result, used.label).replace("**", ""))
        return str(path)

    remove_background.__doc__ = (
        (remove_background.__doc__ or "")
        .replace("empty = this server's default;", f"empty = this server's default ({default_id});")
        .replace("paid per image with your key.", f"paid per image with your key ({prices}).")
    )
    with gr.Column(visible=False):
        inputs = [
            gr.Textbox(label="image"),
            gr.Textbox(default_id, label="provider"),
            gr.Textbox("transparent", label="background"),
            gr.Checkbox(False, label="mask_only"),
            gr.Checkbox(False, label="crop"),
            gr.Textbox("none", label="canvas"),
            gr.Textbox("0", label="margin"),
            gr.Textbox("center", label="align"),
            gr.Textbox("png", label="format"),
            gr.Textbox(None, label="fal_key"),
            gr.Textbox(None, label="runware_key"),
            gr.Textbox(None, label="removebg_key"),
            gr.Textbox(None, label="photoroom_key"),
        ]
        # One output: gradio's MCP server turns a single image into image content, several outputs into text.
        outputs = [gr.Image(type="filepath", label="result")]
    api_twin(
        remove_background, inputs, outputs, "remove_background", tool=True, concurrency_limit=4, concurrency_id="remove"
    )


def api_slots(demo: gr.Blocks) -> dict[str, list[Slot]]:
    """Each named endpoint's inputs, for the raw-call check (rmbg.webapp.rawcalls)."""

    def slot(component) -> Slot:
        if isinstance(component, gr.State):
            return Slot("session state (null)")
        return Slot(str(component.label or type(component).__name__), file=isinstance(component, (gr.Image, gr.File)))

    return {fn.api_name: [slot(c) for c in fn.inputs] for fn in demo.fns.values() if isinstance(fn.api_name, str)}


def launch_kwargs(demo: gr.Blocks) -> dict:
    """launch() options shared by `python app.py` and the tests (gradio 6
    takes theme and css at launch)."""
    # show_error: what still fails inside gradio gets its reason instead of {"error": null};
    # handler errors are already readable messages (readable_errors), never tracebacks, and
    # raw calls of the wrong shape are answered before gradio by RawCallCheck.
    check = Middleware(RawCallCheck, endpoints=functools.partial(api_slots, demo))
    mcp_caller = Middleware(identity.McpStamp)  # who an MCP tool call is for (rmbg.webapp.identity)
    room = Middleware(UploadLimit, room=demo.rmbg_upload_room)  # type: ignore[attr-defined]
    return {
        "theme": gr.themes.Soft(primary_hue="indigo"),
        "css": CSS,
        "max_file_size": rest.MAX_BODY,
        "show_error": True,
        "mcp_server": True,
        "app_kwargs": {"middleware": [mcp_caller, room, check], "routes": getattr(demo, "rmbg_routes", [])},
    }


demo = build_demo()

if __name__ == "__main__":
    configure_logging()  # one root handler; Hub lines once, not twice
    for handler in logging.getLogger().handlers:  # no log line carries a configured key, nor a piece of one
        handler.addFilter(SecretFilter())
    serving_allocator()  # a long-lived process: big blocks go back to the system when freed
    default_id, default_reason = catalog.default_choice()
    print(f"rmbg: default provider {default_id}: {default_reason}")
    demo.launch(**launch_kwargs(demo))
