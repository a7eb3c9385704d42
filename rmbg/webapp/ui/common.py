"""What every tab of the page shares: the look (CSS), image inputs that let
rmbg read the file itself, the one place errors become messages, the page's
and the named API's versions of a handler, and small controls."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
import gradio as gr

from ...errors import RmbgError
from ...image.compose import SeeThroughColour
from ...vendors import VENDORS
from ...wording import Door
from .. import identity
from ..catalog import Keys
from ..inputs import check as check_inputs
from ..inputs import checks_of
from ..look import colour_hex
from ..messages import safe_message
from .controls import radio_css

log = logging.getLogger("rmbg.app")
EXAMPLES = sorted(str(p) for p in (Path(__file__).resolve().parents[3] / "examples").glob("*.jpg"))
CSS = """
.gradio-container {max-width: 1280px !important; margin: auto; width: 100%;}  /* with auto margins alone it shrank to
  fit its content, so one wide table (Benchmark's) made the whole page 808 px wide on a 420 px phone */
#cost-line {font-size: 0.92em; min-height: 3.2em;}
#cost-line p {margin: 0.15em 0;}
footer {opacity: 0.7;}
.refusal {border-left: 3px solid #dc2626; padding: 0.2em 0.7em; background: rgba(220, 38, 38, 0.06);}
#look-row .label-text, #framing .label-text {white-space: nowrap;}
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
#bench-table, #vote-ranking {min-width: 0; max-width: 100%; width: 100%;}
#bench-table .table-wrap, #vote-ranking .table-wrap {overflow-x: auto; max-width: 100%;}
#bench-table th, #bench-table th *, #vote-ranking th, #vote-ranking th * {overflow-wrap: break-word !important;
  word-break: normal !important; hyphens: manual;}  /* a heading: whole words, broken only if one outgrows its column */
.grid-container {grid-template-rows: none !important; grid-auto-rows: auto !important; place-items: start normal;}
.grid-container .thumbnail-item {aspect-ratio: auto !important; height: auto !important; display: flex;
  flex-direction: column;}  /* a gallery's tile: its picture whole, then its caption (gradio laid one over the other) */
.grid-container .thumbnail-item > img {height: auto !important;}
.grid-container .caption-label {position: static !important; max-width: 100% !important; border: none !important;
  white-space: normal !important; overflow-wrap: anywhere;}  /* a long file name or provider wraps, never cut */
#bench-vote .image-container, #bench-vote img {max-width: 100%;}
label[data-testid=block-label]:has(~ .icon-button-wrapper) {max-width: calc(100% - 4.5em);}  /* a long label
  (Benchmark's Images) wraps before its block's floating icon buttons (upload more, clear) instead of running under */
@media (max-width: 480px) {.tab-container button {padding-left: 4px !important; padding-right: 4px !important;
  font-size: 0.86em;}}
"""
CSS += radio_css()  # the background's and the render options' radios, closer together (rmbg.webapp.ui.controls)


def image_input(
    label: str,
    elem_id: str,
    height: int,
    sources: Sequence[Literal["upload", "webcam", "clipboard"]] = ("upload", "webcam", "clipboard"),
    visible: bool = True,
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


def results_gallery(elem_id: str, columns: int, height: int) -> gr.Gallery:
    """A tab's gallery of results, each picture whole (contained) with its caption. fit_columns off:
    a single result keeps its column; stretched to the frame's width it was cropped to its top."""
    return gr.Gallery(
        label="Results",
        columns=columns,
        fit_columns=False,
        object_fit="contain",
        height=height,
        format="png",
        elem_id=elem_id,
    )


def volume_box(monthly_volume: int, elem_id: str) -> gr.Number:
    """The "Images per month" box a cost projection is made for (lenient: a bad value is rmbg's to word)."""
    return lenient(
        gr.Number(monthly_volume, label="Images per month (cost projection)", precision=0, minimum=0, elem_id=elem_id)
    )


def lenient(component: Any) -> Any:
    """Let a value the component cannot preprocess through to rmbg, which says
    what is wrong with it in its own words (gradio alone answers with its
    internal reason and logs a traceback): an image's or a clip's file path goes to
    rmbg's load_image, any other raw value to the handler's own check.
    An instance override, not a subclass: gradio writes a .pyi next to the
    module of every Component subclass."""
    strict = component.preprocess
    if getattr(strict, "rmbg_lenient", False):
        return component

    def preprocess(payload: Any) -> Any:
        try:
            return strict(payload)
        except Exception:  # noqa: BLE001 - reported by rmbg's own checks, readably
            if isinstance(component, (gr.Image, gr.Video)):
                path = getattr(payload, "path", None)
                return str(path) if path else None
            return payload

    preprocess.rmbg_lenient = True  # type: ignore[attr-defined]
    component.preprocess = preprocess
    return component


def as_error(exc: Exception, fn: Callable[..., Any], arguments: dict[str, Any], door: Door) -> gr.Error:
    """The one place an exception becomes what a visitor reads: an RmbgError's
    message in `door`'s words (rmbg.wording: "page" for the page's own events,
    "mcp" for the named API and MCP tool), with this visitor's keys blanked;
    anything else is logged on the server and becomes a plain sentence, never
    a traceback."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, RmbgError):
        keys = Keys.of(*(arguments.get(vendor.argument) for vendor in VENDORS))
        return gr.Error(safe_message(exc, keys, door), print_exception=False)
    log.error("unexpected error in %s", fn.__name__, exc_info=exc)
    return gr.Error("Something went wrong on the server (logged). Please try again.", print_exception=False)


def readable_errors(fn: Callable[..., Any], door: Door = "mcp") -> Callable[..., Any]:
    """`fn` with its values checked first, each against the kind its parameter
    is annotated with (rmbg.webapp.inputs: a form's field types, or Text, Flag,
    ... on a small handler), and its errors as gr.Error in `door`'s words (as_error)."""

    signature = inspect.signature(fn)
    checks = checks_of(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_inputs(signature.bind_partial(*args, **kwargs).arguments, checks)  # every value's kind
            return fn(*args, **kwargs)
        except Exception as exc:
            raise as_error(exc, fn, signature.bind_partial(*args, **kwargs).arguments, door) from None

    return wrapper


def page_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """readable_errors in the page's words, for the page's own small events."""
    return readable_errors(fn, "page")


def session_of(request: gr.Request | None) -> str:
    """Whose spending a call is (rmbg.webapp.identity): the MCP session for
    an MCP tool call, else the gradio session; the ledger keys it."""
    return identity.call_identity(getattr(request, "session_hash", None), getattr(request, "headers", None))


def visitor_of(call: Any) -> str | None:
    """The browser session of a page event (None when called directly, as in the tests)."""
    return call.request.session_hash if call.request is not None else None


def on_page(
    fn: Callable[..., Any],
    n_outputs: int,
    shown: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda out: out,
    nothing: object = None,
) -> Callable[..., Any]:
    """The page's version of a handler, with one more output: the message
    under the button. An error keeps what is shown (the last result, its cost
    line) and says why in that message instead of turning every output into
    an "Error" badge; success clears it. `shown` maps the handler's outputs
    to page updates. A handler that returns `nothing` (when given) changes
    nothing on the page, the message included. The named API endpoints keep
    `readable_errors` (an error is an error for a program) and plain values."""
    api = readable_errors(fn, "page")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            out = api(*args, **kwargs)
        except gr.Error as exc:
            return (*(gr.skip(),) * n_outputs, gr.update(value=f"**Could not do that:** {exc.message}", visible=True))
        if nothing is not None and out is nothing:
            return (gr.skip(),) * (n_outputs + 1)
        return (*shown(out if isinstance(out, tuple) else (out,)), gr.update(value="", visible=False))

    return wrapper


def api_twin(
    fn: Callable[..., Any],
    inputs: list[Any],
    outputs: list[Any],
    api_name: str,
    *,
    tool: bool = False,
    on_cancel: Callable[[gr.Request | None], object] | None = None,
    **kwargs: Any,
) -> None:
    """`fn` as the named API endpoint `api_name`, through a hidden button (the
    page calls its own version, on_page(fn), privately); an MCP tool only
    when `tool` (the page's endpoints need a browser session).
    on_cancel: called with the request when a client cancels the call (gradio_client's job.cancel()):
    gradio posts a cancel only for an endpoint some event cancels (a hidden `<api_name>_cancel` one
    here), and cancelling a task does not stop its worker thread, so `fn` must look at what
    on_cancel sets (e.g. a stop flag) between its steps."""
    handler = not_a_tool(readable_errors(fn), not tool)
    if on_cancel is not None:
        handler = cancel_aware(handler, on_cancel)
    event = gr.Button(visible=False, elem_id=f"api-{api_name}").click(
        handler, inputs, outputs, api_name=api_name, **kwargs
    )
    if on_cancel is not None:
        gr.Button(visible=False, elem_id=f"api-{api_name}-cancel").click(
            not_a_tool(lambda: None), None, None, api_name=f"{api_name}_cancel", cancels=[event], queue=False
        )


WATCH_S = 0.5  # how often a running API call looks whether its client is still connected


def cancel_aware(fn: Callable[..., Any], on_cancel: Callable[[gr.Request | None], object]) -> Callable[..., Any]:
    """`fn` (synchronous) run in a worker thread by a coroutine that calls on_cancel(request) when
    gradio cancels it (a client's cancel) or when its client is gone without a word (a killed
    process: gradio only marks the job dead when the client's event stream drops, and goes on
    running it); gradio sees the same signature, annotations and tool flag."""
    signature = inspect.signature(fn)
    blocks = gr.context.Context.root_block  # the page being built: its queue knows the job's fate

    async def run(*args: Any, **kwargs: Any) -> Any:
        request = signature.bind_partial(*args, **kwargs).arguments.get("request")
        work = asyncio.ensure_future(anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs)))
        try:
            while not (await asyncio.wait({work}, timeout=WATCH_S))[0]:
                if not client_connected(blocks, getattr(request, "session_hash", None)):
                    on_cancel(request)  # fn stops before its next step; its answer goes nowhere
                    break
            return await work
        except asyncio.CancelledError:
            on_cancel(request)
            raise

    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    run.__name__, run.__qualname__, run.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    if hasattr(fn, "_mcp_type"):
        run._mcp_type = fn._mcp_type  # type: ignore[attr-defined]
    return run


def client_connected(blocks: gr.Blocks | None, session_hash: str | None) -> bool:
    """False once gradio has marked every running job of this session dead (its client's event
    stream dropped); True when nothing says so (no queue, no session, a job not found)."""
    queue = getattr(blocks, "_queue", None)
    if queue is None or not session_hash:
        return True
    jobs = [event for batch in queue.active_jobs if batch for event in batch if event.session_hash == session_hash]
    return not jobs or any(event.alive for event in jobs)


def not_a_tool(fn: Callable[..., Any], hide: bool = True) -> Callable[..., Any]:
    """Keep an endpoint out of the MCP server's tool list (gradio lists only
    functions whose _mcp_type is unset or "tool")."""
    if hide:
        setattr(fn, "_mcp_type", "none")  # noqa: B010  (gradio reads this private attribute)
    return fn


def download_update(path: str) -> Any:
    """The download button, shown once there is a file, named after its format."""
    kind = Path(path).suffix.lstrip(".").upper().replace("JPG", "JPEG")
    return gr.update(value=path, visible=True, label=f"Download {kind}")


def colour_control(elem_id: str) -> tuple[Any, Any]:
    """A colour swatch (framed: a white one on a white page is otherwise
    invisible) with a hex field beside it, kept in step both ways; hidden
    until the colour background is chosen. Returns (its row, the picker)."""
    with gr.Row(visible=False, elem_id=f"{elem_id}-row", elem_classes=["colour-row"]) as row:
        picker = gr.ColorPicker("#ffffff", label="Colour", elem_id=elem_id, min_width=80, scale=0)
        hex_field = gr.Textbox(
            "#ffffff",
            label="Hex (or a name: white, navy…)",
            info=HEX_HINT,
            elem_id=f"{elem_id}-hex",
            max_lines=1,
            min_width=140,
        )
    for typed in (hex_field.submit, hex_field.blur):
        typed(hex_typed, hex_field, [picker, hex_field], api_visibility="private", queue=False)
    picker.input(
        lambda value: (value, gr.update(info=HEX_HINT)), picker, hex_field, api_visibility="private", queue=False
    )
    return row, picker


HEX_HINT = "#RRGGBB, #RGB or a colour name"


def hex_typed(text: str | None) -> tuple[Any, Any]:
    """(swatch, hex field) after the hex field was typed in: a colour moves the swatch; anything
    else leaves it and says, under the field, why (an invalid colour used to pass in silence; a
    see-through one in the sentence every door says)."""
    try:
        colour = colour_hex(text)
    except SeeThroughColour as exc:
        return gr.skip(), gr.update(info=str(exc))
    if colour is None:
        shown = (text or "").strip()[:40]
        return gr.skip(), gr.update(info=f"{shown!r} is not a colour: write {HEX_HINT} (white, navy…)")
    return colour, gr.update(info=HEX_HINT)
