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

from ...confidence import DEFAULT_BELOW
from ...image.framing import framing_asked
from ...options import Door, Option, at, framing
from ...vendors import VENDORS
from ..catalog import Keys
from ..inputs import Check, Count, Flag, Format, Fraction, ImageFile, Key, Names, Seed, Text, Volume, check_of, kind_of
from ..look import Look, named_options

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
    return _with_fields([(name, Key, dataclasses.field(default=None, repr=False)) for name in KEY_FIELDS], after)


def option_fields(door: Door, among: tuple[Option, ...] | None = None) -> list[tuple[str, Any, Any]]:
    """The render options `door` offers (rmbg.options: an image's, or those `among`) as form fields: (name,
    kind with its check, default); on the page a field keeps the named API's older name where it has one
    (Option.page_name)."""
    return [
        (o.page_name if door == "page" else o.name, kind_of(o), dataclasses.field(default=o.default))
        for o in at(door, among=among)
    ]


def with_options(door: Door, after: str, among: tuple[Option, ...] | None = None) -> Callable[[type[T]], type[T]]:
    """The form with the render options `door` offers (rmbg.options: an image's, or those `among`) that it
    does not declare itself (those it declares keep their place in its named API), in their declared order
    after the field `after`."""

    def add(form: type[T]) -> type[T]:
        declared = {f.name for f in fields(form)}  # type: ignore[arg-type]
        return _with_fields([spec for spec in option_fields(door, among) if spec[0] not in declared], after)(form)

    return add


def _with_fields(added: list[tuple[str, Any, Any]], after: str | None) -> Callable[[type[T]], type[T]]:
    """The form with the fields `added` after the field `after` (None: at the end)."""

    def add(form: type[T]) -> type[T]:
        hints = typing.get_type_hints(form, include_extras=True)
        specs: list[tuple[str, Any, Any]] = []
        for f in fields(form):  # type: ignore[arg-type]
            specs.append((f.name, hints[f.name], dataclasses.field(default=f.default)))
            if f.name == after:
                specs += added
        if after is None:
            specs += added
        made_by_dataclass = {*DATACLASS_MADE, *(name for name, _, _ in specs)}
        own = {k: v for k, v in vars(form).items() if k not in made_by_dataclass}  # its docstring, methods, ClassVars
        made = dataclasses.make_dataclass(form.__name__, specs, bases=form.__bases__, namespace=own, frozen=True)
        made.__qualname__ = form.__qualname__
        return made

    return add


def with_escalation() -> Callable[[type[T]], type[T]]:
    """The form with the escalation fields at its end (rmbg.webapp.remove.escalate: a better provider
    where the first one is unsure): escalate, a provider id ("none": no escalation), and escalate_below,
    the confidence under which it runs (rmbg.confidence.DEFAULT_BELOW)."""
    added = [
        ("escalate", Text, dataclasses.field(default="none")),
        ("escalate_below", Fraction, dataclasses.field(default=DEFAULT_BELOW)),
    ]
    return _with_fields(added, None)


class Escalates:
    """A form with the escalation fields (with_escalation), read by name as the key fields are."""

    def escalation(self) -> tuple[Any, Any]:
        """(escalate, escalate_below) as sent; rmbg.webapp.remove.escalate.Escalation.of reads them."""
        return getattr(self, "escalate", None), getattr(self, "escalate_below", None)


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


class Looks:
    """A form with look fields (background, colour, ... and the render options it offers) gives its Look."""

    DOOR: ClassVar[Door] = "page"  # the page's: a background kind ("transparent", "colour", "image") and a colour

    def look(self) -> Look:
        def value(name: str, default: object = None) -> object:
            return getattr(self, name, default)

        spelt = {o.name: o.page_name if self.DOOR == "page" else o.name for o in named_options()}
        named = {name: value(field) for name, field in spelt.items() if hasattr(self, field)}
        if self.DOOR == "page":  # the page's unused framing fields keep their values; a tool call's are asked for
            named.update(framing_asked({o.name: named[o.name] for o in framing() if o.name in named}))
        kind, colour = value("background"), value("colour")
        if self.DOOR != "page":  # one text: "transparent" or a colour
            kind, colour = Look.background_of(kind, images=False)
        fmt = value("format", "png") or "png"
        return Look.of(kind, colour, value("background_image"), value("mask_only", False), fmt, **named)


def _progress() -> Any:
    return gr.Progress(track_tqdm=True)


@with_escalation()
@with_keys(after="monthly_volume")
@with_options("page", after="monthly_volume")
@dataclass(frozen=True)
class RemoveForm(Form, Looks, Escalates):
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
    vitmatte: Flag = False
    points: Text = None
    box: Text = None


@with_options("page", after="monthly_volume")
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


@with_escalation()
@with_keys()
@with_options("mcp", after="mask_only")
@dataclass(frozen=True)
class McpForm(Form, Looks, Escalates):
    """/remove_background, the MCP tool: one self-contained call."""

    DOOR = "mcp"

    image: Any
    provider: Text = ""
    background: Text = "transparent"
    mask_only: Flag = False
    format: Format = "png"
    cpu: Flag = False
