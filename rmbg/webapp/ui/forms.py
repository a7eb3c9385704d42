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

A field's type says what kind of value it takes (rmbg.webapp.inputs: Text,
Flag, Size, ...): the endpoint carries them as its annotations, and every
value is checked against its field's kind before `body` runs. The vendors'
key fields (fal_key, ...) are not written out: `with_keys` adds one per
vendor (rmbg.vendors) where the form takes them.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, TypeVar

import gradio as gr

from ...vendors import VENDORS
from ..catalog import Keys
from ..inputs import Align, Check, Count, Flag, Format, ImageFile, Key, Names, Seed, Size, Text, Volume, check_of
from ..look import Look

KEY_FIELDS = tuple(vendor.argument for vendor in VENDORS)  # fal_key, ...: in rmbg.vendors.VENDORS order
F = TypeVar("F", bound="Form")
T = TypeVar("T")


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

    @classmethod
    def types(cls) -> dict[str, Any]:
        """Each field's type (Annotated with its Check, rmbg.webapp.inputs), by name."""
        hints = typing.get_type_hints(cls, include_extras=True)
        return {name: hints[name] for name in cls.names()}

    @classmethod
    def checks(cls) -> dict[str, Check]:
        """Each field's Check, by name (every field of a form has one, but clips and Benchmark files)."""
        return {name: c for name, t in cls.types().items() if (c := check_of(t)) is not None}

    def keys(self) -> Keys:
        return Keys.of(*(getattr(self, name, None) for name in KEY_FIELDS))


DATACLASS_MADE = (
    *("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__match_args__"),
    *("__getstate__", "__setstate__", "__dataclass_params__", "__dataclass_fields__", "__annotations__"),
    *("__dict__", "__weakref__"),
)


def with_keys(after: str | None = None) -> Callable[[type[T]], type[T]]:
    """The form with one key field per vendor (fal_key, ...: rmbg.vendors, in
    their order, default None) after the field `after` (None: at the end)."""

    def add(form: type[T]) -> type[T]:
        hints = typing.get_type_hints(form, include_extras=True)
        specs: list[tuple[str, Any, Any]] = []
        for f in fields(form):  # type: ignore[arg-type]
            specs.append((f.name, hints[f.name], dataclasses.field(default=f.default)))
            if f.name == after:
                specs += [(name, Key, dataclasses.field(default=None, repr=False)) for name in KEY_FIELDS]
        if after is None:
            specs += [(name, Key, dataclasses.field(default=None, repr=False)) for name in KEY_FIELDS]
        made_by_dataclass = {*DATACLASS_MADE, *(name for name, _, _ in specs)}
        own = {k: v for k, v in vars(form).items() if k not in made_by_dataclass}  # its docstring, methods, ClassVars
        made = dataclasses.make_dataclass(form.__name__, specs, bases=form.__bases__, namespace=own, frozen=True)
        made.__qualname__ = form.__qualname__
        return made

    return add


def key_controls(keys: tuple[Any, ...]) -> dict[str, Any]:
    """The key fields' controls by field name (keys in rmbg.vendors.VENDORS order)."""
    return dict(zip(KEY_FIELDS, keys))


def endpoint(form: type[F], body: Callable[[F, Call], Any], name: str, doc: str | None = None) -> Callable[..., Any]:
    """A gradio function for `form`: its signature is the form's fields (with
    their defaults) between the state and the request/progress; it builds the
    form by name and calls body(form, call)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("state", kind)] if form.STATE else []
    types = form.types()
    for f in fields(form):  # type: ignore[arg-type]
        default = f.default if f.default is not MISSING else inspect.Parameter.empty
        params.append(inspect.Parameter(f.name, kind, default=default, annotation=types[f.name]))
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
    # the fields' kinds, checked before body runs (readable_errors); gradio finds the request by its type
    handler.__annotations__ = {**types, "request": gr.Request}
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


@with_keys(after="monthly_volume")
@dataclass(frozen=True)
class RemoveForm(Form, Looks):
    """/remove (and the page's Remove button)."""

    STATE = True
    PROGRESS = _progress

    image: ImageFile
    provider: Text
    background: Text = "transparent"
    colour: Text = "#ffffff"
    background_image: ImageFile = None
    mask_only: Flag = False
    format: Format = "png"
    monthly_volume: Volume = None
    refine_edges: Flag = False
    crop: Flag = False
    canvas: Size = None
    margin: Size = None
    align: Align = None
    vitmatte: Flag = False
    points: Text = None
    box: Text = None


@dataclass(frozen=True)
class RerenderForm(Form, Looks):
    """/rerender: the look of the last result changed (no model run)."""

    STATE = True

    background: Text = "transparent"
    colour: Text = "#ffffff"
    background_image: ImageFile = None
    mask_only: Flag = False
    format: Format = "png"
    monthly_volume: Volume = None
    refine_edges: Flag = False
    crop: Flag = False
    canvas: Size = None
    margin: Size = None
    align: Align = None


@with_keys(after="colour")
@dataclass(frozen=True)
class CompareForm(Form, Looks):
    """/compare."""

    STATE = True
    PROGRESS = _progress

    image: ImageFile
    providers: Names
    background: Text = "transparent"
    colour: Text = "#ffffff"
    vitmatte: Flag = False
    cpu: Flag = False


@with_keys()
@dataclass(frozen=True)
class ReplaceForm(Form):
    """/replace: new backgrounds generated behind the subject (fal, paid)."""

    PROGRESS = gr.Progress

    image: ImageFile
    prompt: Text
    reference_image: ImageFile = None
    negative_prompt: Text = None
    seed: Seed = None
    num_images: Count = 1


@with_keys()
@dataclass(frozen=True)
class BenchmarkForm(Form):
    """/benchmark: the visitor's images through several providers."""

    PROGRESS = gr.Progress

    images: Any
    truth: Any = None
    providers: Names = None
    monthly_volume: Volume = None


@with_keys()
@dataclass(frozen=True)
class McpForm(Form, Looks):
    """/remove_background, the MCP tool: one self-contained call."""

    image: Any
    provider: Text = ""
    background: Text = "transparent"
    mask_only: Flag = False
    crop: Flag = False
    canvas: Size = ""
    margin: Size = ""
    align: Align = "center"
    format: Format = "png"
    cpu: Flag = False

    def look(self) -> Look:
        kind, colour = Look.background_of(self.background, images=False)
        framing = framing_values(self.crop, self.canvas or "none", self.margin, self.align)
        return Look.of(kind, colour, None, self.mask_only, self.format or "png", **framing)
