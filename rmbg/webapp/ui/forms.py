"""The app's forms: one dataclass per form, the one place its values are named.

A form's field order is the order of its endpoint's parameters (the named
API that gradio_client and raw calls use: tests/fixtures/api_endpoints.json).
The gradio inputs are built from the fields by name (`Form.inputs`, which
refuses a missing or an extra control), and a handler receives the typed
form (`endpoint`), never a positional slice: moving a control on the page
cannot send its value to another parameter.

`endpoint(Form, body)` gives gradio a function whose signature is the form's
fields (plus the session state first, and the request and progress last,
which gradio fills in itself), so the API keeps its parameter names and
defaults; `body(form, call)` does the work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, TypeVar

import gradio as gr

from ..catalog import SLOTS, Keys
from ..look import Look

KEY_FIELDS = tuple(f"{slot}_key" for slot in SLOTS)
F = TypeVar("F", bound="Form")


@dataclass(frozen=True)
class Call:
    """What gradio adds to a form: the session state (None for forms without
    one), the request (whose spending it is) and the progress bar."""

    state: Any = None
    request: gr.Request | None = None
    progress: Any = None


class Form:
    """Base of the forms: field names, inputs by name, the keys."""

    STATE: ClassVar[bool] = False  # the endpoint takes the session state first
    PROGRESS: ClassVar[Callable[[], Any] | None] = None  # makes the endpoint's gr.Progress, if it shows one

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def inputs(cls, controls: Mapping[str, Any], state: Any = None) -> list[Any]:
        """The gradio inputs in field order: exactly one control per field."""
        names = cls.names()
        missing = [n for n in names if n not in controls]
        extra = [n for n in controls if n not in names]
        if missing or extra:
            raise ValueError(f"{cls.__name__}: no control for {missing}; controls without a field: {extra}")
        if cls.STATE and state is None:
            raise ValueError(f"{cls.__name__} takes the session state first")
        return ([state] if cls.STATE else []) + [controls[n] for n in names]

    def keys(self) -> Keys:
        return Keys.of(*(getattr(self, name, None) for name in KEY_FIELDS))


def key_controls(keys: tuple[Any, ...]) -> dict[str, Any]:
    """The four key fields' controls by field name (keys in catalog.SLOTS order)."""
    return dict(zip(KEY_FIELDS, keys))


def endpoint(form: type[F], body: Callable[[F, Call], Any], name: str, doc: str | None = None) -> Callable[..., Any]:
    """A gradio function for `form`: its signature is the form's fields (with
    their defaults) between the state and the request/progress; it builds the
    form by name and calls body(form, call)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("state", kind)] if form.STATE else []
    for f in fields(form):  # type: ignore[arg-type]
        default = f.default if f.default is not MISSING else inspect.Parameter.empty
        params.append(inspect.Parameter(f.name, kind, default=default))
    params.append(inspect.Parameter("request", kind, default=None, annotation=gr.Request))
    if form.PROGRESS is not None:
        params.append(inspect.Parameter("progress", kind, default=form.PROGRESS()))
    signature = inspect.Signature(params)

    def handler(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        call = Call(values.get("state"), values.get("request"), values.get("progress"))
        return body(form(**{n: values[n] for n in form.names()}), call)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request}  # gradio finds the request by its type
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc or body.__doc__
    return handler


def framing_values(crop: object, canvas: object, margin: object, align: object) -> dict[str, object]:
    """The page's framing controls as Look.of takes them: without crop or a
    canvas, margin and alignment are not asked for (the fields keep their values)."""
    canvas = None if (canvas or "none") == "none" else canvas
    if not crop and canvas is None:
        return {"crop": False, "canvas": None, "margin": None, "align": None}
    return {"crop": crop, "canvas": canvas, "margin": margin, "align": align}


class Looks:
    """A form with the look fields (background ... align) gives its Look by name."""

    def look(self) -> Look:
        def value(name: str, default: object = None) -> object:
            return getattr(self, name, default)

        return Look.of(
            value("background"),
            value("colour"),
            value("background_image"),
            value("mask_only", False),
            value("format", "png"),
            refine=value("refine_edges", False),
            **framing_values(value("crop"), value("canvas"), value("margin"), value("align")),
        )


def _progress() -> Any:
    return gr.Progress(track_tqdm=True)


@dataclass(frozen=True)
class RemoveForm(Form, Looks):
    """/remove (and the page's Remove button)."""

    STATE = True
    PROGRESS = _progress

    image: Any
    provider: Any
    background: Any = "transparent"
    colour: Any = "#ffffff"
    background_image: Any = None
    mask_only: Any = False
    format: Any = "png"
    monthly_volume: Any = None
    fal_key: Any = None
    runware_key: Any = None
    removebg_key: Any = None
    photoroom_key: Any = None
    refine_edges: Any = False
    crop: Any = False
    canvas: Any = None
    margin: Any = None
    align: Any = None
    vitmatte: Any = False
    points: Any = None
    box: Any = None


@dataclass(frozen=True)
class RerenderForm(Form, Looks):
    """/rerender: the look of the last result changed (no model run)."""

    STATE = True

    background: Any = "transparent"
    colour: Any = "#ffffff"
    background_image: Any = None
    mask_only: Any = False
    format: Any = "png"
    monthly_volume: Any = None
    refine_edges: Any = False
    crop: Any = False
    canvas: Any = None
    margin: Any = None
    align: Any = None


@dataclass(frozen=True)
class CompareForm(Form, Looks):
    """/compare."""

    STATE = True
    PROGRESS = _progress

    image: Any
    providers: Any
    background: Any = "transparent"
    colour: Any = "#ffffff"
    fal_key: Any = None
    runware_key: Any = None
    removebg_key: Any = None
    photoroom_key: Any = None
    vitmatte: Any = False


@dataclass(frozen=True)
class ReplaceForm(Form):
    """/replace: new backgrounds generated behind the subject (fal, paid)."""

    PROGRESS = gr.Progress

    image: Any
    prompt: Any
    reference_image: Any = None
    negative_prompt: Any = None
    seed: Any = None
    fast: Any = True
    num_images: Any = 1
    fal_key: Any = None
    runware_key: Any = None
    removebg_key: Any = None
    photoroom_key: Any = None


@dataclass(frozen=True)
class BenchmarkForm(Form):
    """/benchmark: the visitor's images through several providers."""

    PROGRESS = gr.Progress

    images: Any
    truth: Any = None
    providers: Any = None
    monthly_volume: Any = None
    fal_key: Any = None
    runware_key: Any = None
    removebg_key: Any = None
    photoroom_key: Any = None


@dataclass(frozen=True)
class McpForm(Form, Looks):
    """/remove_background, the MCP tool: one self-contained call."""

    image: Any
    provider: Any = ""
    background: Any = "transparent"
    mask_only: Any = False
    crop: Any = False
    canvas: Any = ""
    margin: Any = ""
    align: Any = "center"
    format: Any = "png"
    fal_key: Any = None
    runware_key: Any = None
    removebg_key: Any = None
    photoroom_key: Any = None

    def look(self) -> Look:
        kind, colour = Look.background_of(self.background, images=False)
        framing = framing_values(self.crop, self.canvas or "none", self.margin, self.align)
        return Look.of(kind, colour, None, self.mask_only, self.format or "png", **framing)
