"""The kinds of value a visitor may send, as types: a check each, attached to
the typed fields of the forms and the REST models.

The page's widgets only send what they hold, but the same handlers answer
raw API calls, gradio_client, MCP and REST, where any JSON value can arrive
in any field: a list for the provider, NaN for a count, "inf" for a seed.
Handlers then read them with str/int/float conversions that were written
for the widgets' values. A field's type carries its Check (`Text`, `Flag`,
`Size`, `Volume`, ...: `Annotated[Any, Check]`), which refuses a value of the
wrong kind with a sentence naming the field, so no conversion deeper in can
raise a TypeError, ValueError or OverflowError:

- a form's fields (rmbg.webapp.ui.forms) and a small handler's parameters
  are checked before it runs (`checks_of(fn)` reads them from its
  annotations; rmbg.webapp.ui.common.readable_errors runs them);
- a pydantic model's fields (rmbg.webapp.rest.routes) run the same Check as a
  validator, and give the field's JSON schema to the OpenAPI document.

Only the kind is checked here; the meaning (a known provider, a colour that
parses, a margin in range) stays with the code that owns it. An uploaded
image (`ImageFile`) is also held to the image file limit here, by its size on
disk (rmbg.webapp.file_limits), before anything opens it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from ..errors import InvalidImageError, InvalidRequestError
from ..options import BY_NAME, Option, video
from ..wording import number_text
from .file_limits import check_image_file

MAX_TEXT = 10_000  # characters in any one text field (a prompt is the longest)
VOLUME = "Images per month must be a whole number (0 or more), got {}."
SEED = "The seed must be a whole number 0..2147483647, got {}."


@dataclass(frozen=True)
class Check:
    """One kind of value, by its name ("text", "flag", ...): `test(name, value)`
    refuses a wrong one with an InvalidRequestError naming the field; `schema`
    is the JSON schema of the values it is meant for (what the OpenAPI
    document promises)."""

    kind: str
    test: Callable[[str, object], None]
    schema: dict[str, Any] = field(default_factory=dict, compare=False)

    def __call__(self, name: str, value: object) -> None:
        self.test(name, value)

    # --- as a pydantic validator (Annotated[Any, check] in a model) ------------

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_before_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return dict(self.schema)

    def _validate(self, value: object, info: core_schema.ValidationInfo) -> object:
        try:
            self.test(info.field_name or "value", value)
        except InvalidRequestError as exc:  # pydantic collects it; rmbg.webapp.rest.routes says it
            raise PydanticCustomError("rmbg", "{said}", {"said": str(exc)}) from None
        return value


def _text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be text, got {_kind(value)}.")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise InvalidRequestError(f"{name} is too long ({len(value)} characters; at most {MAX_TEXT}).")


def _reference(name: str, value: object) -> None:
    """Where an image is: an http(s) URL, as long as any text; or a data: URI, whose size is the image
    file limit's to say (rmbg.webapp.remove.actions.image_from_reference; over REST, the body's)."""
    if isinstance(value, str) and value.lstrip()[:5].lower() == "data:":
        return
    _text(name, value)


def number_of(value: object, field: str = "The number") -> float | None:
    """A finite number from a number or its text (ASCII digits only: text in other digits is refused in
    rmbg.wording.number_text's sentence, naming `field`); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    elif isinstance(value, str) and len(value) <= 40:
        typed = number_text(field, value)  # an InvalidRequestError, which is a ValueError: not in the try
        try:
            number = float(typed)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _whole(
    low: int, high: int, said: str = "", field: str = "", blank_ok: bool = True
) -> Callable[[str, object], None]:
    """A whole number low..high (its text too); `said`: the message, if not the generic one, and `field`
    its name there (the field's name if not given)."""

    def check_whole(name: str, value: object) -> None:
        if value is None or (blank_ok and isinstance(value, str) and not value.strip()):
            return
        number = number_of(value, field or name)
        if number is None or number != int(number) or not low <= number <= high:
            raise InvalidRequestError(
                (said or f"{name} must be a whole number from {low} to {high}, got {{}}.").format(
                    repr(str(value)[:40]) if said else _shown(value)
                )
            )

    return check_whole


def _flag(name: str, value: object) -> None:
    if isinstance(value, str):
        if len(value) <= 10:  # "true", "false", "yes", ...: read by look.flag
            return
    elif value is None or isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return
    raise InvalidRequestError(f"{name} must be true or false, got {_shown(value)}.")


def _size_of(option: Option) -> Callable[[str, object], None]:
    """The check of a size option (rmbg.options): what its declaration says it takes in its refusal
    (Option.takes), and a bare number passed where the declaration says one is a value (Option.numbers)."""

    def check_size(name: str, value: object) -> None:
        if value is None or isinstance(value, str):
            _text(name, value)  # its meaning is rmbg.image.framing's to check
            return
        if option.numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            if number_of(value) is not None:
                return
        raise InvalidRequestError(f"{name} must be {option.takes}, got {_shown(value)}.")

    return check_size


_size = _size_of(BY_NAME["margin"])


def _texts(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 200 for v in value):
        raise InvalidRequestError(f"{name} must be a list of provider names, got {_kind(value)}.")
    if len(value) > 50:
        raise InvalidRequestError(f"{name} names {len(value)} providers; at most 50.")


def fraction(name: str, value: object, default: float) -> float:
    """A number from 0 to 1 from a number or its text (blank: `default`), such as a confidence
    threshold; else an InvalidRequestError naming `name`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number = number_of(value, name)
    if number is None or not 0.0 <= number <= 1.0:
        raise InvalidRequestError(f"{name} must be a number from 0 to 1, got {str(value)[:40]!r}.")
    return number


def _fraction(name: str, value: object) -> None:
    fraction(name, value, 0.0)


def _image_file(name: str, value: object) -> None:
    """An uploaded image (a path): within the image file limit, by its size, before anything opens it."""
    check_image_file(value, "This image" if name == "image" else f"The {name.replace('_', ' ')}")


def _one_of(*words: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(words)}


_STRING = {"type": "string"}
# The kinds, each a type to annotate a field with.
Text = Annotated[Any, Check("text", _text, _STRING)]
Url = Annotated[Any, Check("url", _text, {"type": "string", "minLength": 1})]  # empty: no URL given, refused
ImageUrl = Annotated[Any, Check("image url", _reference, {"type": "string", "minLength": 1})]  # or a data: URI
Key = Annotated[Any, Check("key", _text, {"type": "string", "format": "password"})]  # an API key: text, never shown
Flag = Annotated[Any, Check("flag", _flag, {"oneOf": [{"type": "boolean"}, _one_of("true", "false")]})]
Size = Annotated[Any, Check("size", _size, {"oneOf": [_STRING, {"type": "number"}]})]  # "10%", "40px", "2000x2000", 12
_VOLUME, _SEED = _whole(0, 1_000_000_000, VOLUME, "Images per month"), _whole(0, 2_147_483_647, SEED, "Seed")
Volume = Annotated[Any, Check("volume", _VOLUME, {"type": "integer", "minimum": 0})]
Seed = Annotated[Any, Check("seed", _SEED, {"type": "integer", "minimum": 0})]
Count = Annotated[Any, Check("count", _whole(1, 4, blank_ok=False), {"type": "integer", "minimum": 1, "maximum": 4})]
Names = Annotated[Any, Check("names", _texts, {"type": "array", "items": _STRING, "maxItems": 50})]  # provider ids
Fraction = Annotated[
    Any, Check("fraction", _fraction, {"oneOf": [{"type": "number", "minimum": 0, "maximum": 1}, _STRING]})
]  # 0..1
ImageFile = Annotated[Any, Check("image file", _image_file, {"type": "string", "format": "binary"})]  # an upload


def kind_of(option: Option) -> Any:
    """A render option's kind (rmbg.options) as a field's type with its Check: a choice is text
    whose schema lists the choices (the meaning, a known one, is checked where it is read)."""
    if option.kind == "choice":
        return Annotated[Any, Check(option.check or option.name, _text, _one_of(*option.choices))]
    if option.kind == "size":
        schema = {"oneOf": [_STRING, {"type": "number"}]} if option.numbers else _STRING
        return Annotated[Any, Check("size", _size_of(option), schema)]
    return {"flag": Flag, "size": Size}.get(option.kind, Text)


Format = kind_of(BY_NAME["format"])
VideoFormat = kind_of(video("format"))
KINDS = {"Text": Text, "Key": Key, "Flag": Flag, "Size": Size, "Format": Format}
KINDS.update({"Volume": Volume, "Seed": Seed, "Count": Count, "Names": Names, "VideoFormat": VideoFormat})
KINDS.update({"ImageFile": ImageFile, "Fraction": Fraction})


def check_of(annotation: object) -> Check | None:
    """The Check an annotation carries (Annotated[..., Check]); None for none."""
    return next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Check)), None)


def checks_of(fn: Callable[..., Any]) -> dict[str, Check]:
    """Each parameter's Check, read from `fn`'s annotations (one written as
    text is looked up by name in its module, else among the kinds here, as a
    handler may import them where it is defined); parameters without one (images,
    session state, the request) are checked where they are used."""
    found: dict[str, Check] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if isinstance(annotation, str):  # a kind is written by its name: Text, Flag, ...
            annotation = namespace.get(annotation, KINDS.get(annotation)) if annotation.isidentifier() else None
        check = check_of(annotation)
        if check is not None and name != "return":
            found[name] = check
    return found


def check(values: Mapping[str, object], checks: Mapping[str, Check]) -> None:
    """Refuse the first value whose kind is wrong for its field (fields
    without a Check are checked where they are used)."""
    for name, value in values.items():
        if (kind := checks.get(name)) is not None:
            kind(name, value)


def require_image(image) -> None:
    """The one 'nothing uploaded' message of both tabs."""
    if image is None or (isinstance(image, str) and not image):
        raise InvalidImageError("Upload an image first (or pick one of the examples).")


def one_source(has_file: bool, url: object, what: str, error: type[InvalidImageError] = InvalidImageError) -> None:
    """A picture or a clip comes once: as a file or as a URL, not both (the URL was ignored without a word,
    and the file cut out, when a request or the Video tab's form carried both)."""
    if has_file and str(url or "").strip():
        raise error(f"Give the {what} as a file or as a URL, not both: clear one of them and send again.")


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
