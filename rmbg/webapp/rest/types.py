"""The types of `POST /api/remove`, declared once: what a request may send,
what a response carries, and the OpenAPI document generated from them.

- `Fields`: the request's fields, whatever the body (a multipart form, JSON,
  urlencoded). Each field's type carries its check (rmbg.webapp.inputs), so
  validating a request (`fields_of`) and describing it (`openapi`) read the
  same declaration; an unknown field is refused (extra="forbid").
- `FILES`: the uploads a multipart form may carry beside the fields.
- `KeyHeaders`: one request header per vendor (rmbg.vendors), carrying a
  visitor's own key.
- `Made`: the response's headers (the body is the image); `Refusal`: the
  JSON body of every error.

rmbg.webapp.rest.routes serves the route; the document is FastAPI's (get_openapi
over that route), with the request body's two media types and the headers
written from these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ...confidence import DEFAULT_BELOW
from ...errors import InvalidImageError, InvalidRequestError
from ...image.compose import MIME
from ...options import Option, at
from ...vendors import VENDORS
from ..inputs import Flag, Fraction, ImageUrl, Text, kind_of

M = TypeVar("M", bound=BaseModel)

TITLE = "rmbg REST API"
SUMMARY = "Remove the background of one image"
NO_IMAGE = 'Send the image as the multipart field "image", or JSON {"url": "https://..."}.'


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", title="RemoveFields")


def option_fields(among: tuple[Option, ...] | None = None) -> dict[str, Any]:
    """The render options REST offers (rmbg.options; an image's, or those `among`) as a model's
    fields, all optional: each one's kind with its check (rmbg.webapp.inputs) and description."""
    return {o.name: (kind_of(o), Field(None, description=o.said)) for o in at("rest", among=among)}


def fields_model() -> type[BaseModel]:
    """The fields of a request, all optional: the provider, how to render the cut-out (the render
    options REST offers, rmbg.options), and, without an upload, where the image is and whether to
    run on the CPU."""
    return create_model(
        "Fields",
        __base__=_Fields,
        __doc__="The fields of a request, all optional: how to render the cut-out, and, without an upload, "
        "where the image is.",
        provider=(Text, Field(None, description="Provider id (`rmbg providers`); empty = this server's default.")),
        **option_fields(),
        url=(
            ImageUrl,
            Field(
                None,
                description="http(s) URL (at most 10000 characters) or data: URI (within the image file limit, "
                "RMBG_IMAGE_MAX_MB, as the request's body) of the image, when it is not uploaded.",
            ),
        ),
        cpu=(
            Flag,
            Field(
                None,
                description="Run a local model on this server's CPU, in its own process (on a ZeroGPU Space: no "
                "GPU time from the visitor's daily quota; what a 429 refusal's retry_on_cpu says to send).",
            ),
        ),
        escalate=(
            Text,
            Field(
                None,
                description='A better provider for when the first is unsure (empty or "none": never): where the '
                "first matte's confidence is under escalate_below, the image goes to it too and its result is "
                "returned (paid like any hosted call, inside the same caps; X-Rmbg-Escalation says what happened).",
            ),
        ),
        escalate_below=(
            Fraction,
            Field(None, description=f"The confidence (0 to 1) under which to escalate; default {DEFAULT_BELOW}."),
        ),
    )


Fields = fields_model()


def render_fields(fields: BaseModel) -> dict[str, Any]:
    """A request's render options (rmbg.options) by name, as sent (None: not sent)."""
    return {o.name: getattr(fields, o.name) for o in at("rest")}


FIELDS = tuple(Fields.model_fields)  # the names a request may use, in the order errors list them
FILES = {
    "image": "The photo (JPEG, PNG, WebP, ...).",
    "background_image": 'The picture to put behind the subject (background "image").',
}
# One header per vendor, carrying a visitor's own key (never stored, never logged).
KeyHeaders = create_model(
    "KeyHeaders",
    __doc__="A visitor's own API keys, one header per hosted service (rmbg.vendors).",
    **{
        vendor.slot: (str | None, Field(None, alias=vendor.header, description=f"Your {vendor.label} API key."))
        for vendor in VENDORS
    },  # type: ignore[call-overload]
)


class Answered(BaseModel):
    """The headers every answer carries, image or clip: who made it, how long it took, what it cost."""

    model_config = ConfigDict(populate_by_name=True)

    provider: str = Field(alias="X-Rmbg-Provider", description="The provider that made the matte(s).")
    seconds: str = Field(alias="X-Rmbg-Seconds", description="Seconds in the model or the provider's calls.")
    total_seconds: str = Field(alias="X-Rmbg-Total-Seconds", description="Seconds for the whole request.")
    cost_usd: str = Field(alias="X-Rmbg-Cost-USD", description="What this image or clip cost, in USD.")
    cost_source: str = Field(alias="X-Rmbg-Cost-Source", description='"reported", "estimated" or "free".')


class Made(Answered):
    """The response's headers: who made the image, how long it took, what it cost."""

    cached: str = Field(alias="X-Rmbg-Cached", description='"true" when the matte came from the cache (free).')
    watermarked: str = Field(
        "false",
        alias="X-Rmbg-Watermarked",
        description='"true" when the vendor gave the result free with its watermark (a Photoroom sandbox key).',
    )
    disposition: str = Field(alias="Content-Disposition", description="The file name: inline; filename=...")
    confidence: str | None = Field(
        None,
        alias="X-Rmbg-Confidence",
        description="How sure the output's matte looks, 0.000 to 1.000 (rmbg.confidence).",
    )
    escalation: str | None = Field(
        None,
        alias="X-Rmbg-Escalation",
        description='Present when escalate was sent: "escalated from <first> (confidence c, under t) to <better>", '
        'or "not escalated: <why>; <first>\'s result kept" (X-Rmbg-Provider names who made the output).',
    )
    warning: str | None = Field(
        None,
        alias="X-Rmbg-Warning",
        description="Present when the paid call was made but the spending ledger could not record its cost: "
        '"the call was made and may have been billed, ...".',
    )

    def headers(self) -> dict[str, str]:
        return self.model_dump(by_alias=True, exclude_none=True)


class CpuRetry(BaseModel):
    """The same request, run on the server's CPU: the fields to send again."""

    provider: str = Field(description="The fastest local model on this server's CPU.")
    cpu: bool = Field(default=True, description="Run it on the CPU, outside the GPU quota.")


class Refusal(BaseModel):
    """Every error's body: why the request was refused or failed; a ZeroGPU refusal (429) also
    says what ZeroGPU answered and how to have the same image cut out on the CPU instead."""

    error: str
    zerogpu: str | None = Field(default=None, description='ZeroGPU\'s refusal ("ZeroGPU quota exceeded"; 429 only).')
    retry_on_cpu: CpuRetry | None = Field(default=None, description="These fields sent again run on the CPU (429).")


def fields_of(values: Mapping[str, Any]) -> Any:
    """The request's fields, validated: a value of the wrong kind is refused in
    its field's sentence (rmbg.webapp.inputs) before an unknown field is."""
    return validated(Fields, values)


def validated(model: type[M], values: Mapping[str, Any]) -> M:
    """`values` as `model` (a route's fields), or refused in a sentence: the field's own (its check in
    rmbg.webapp.inputs), else the unknown field's name with the ones the route takes."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    said = [str(e["ctx"]["said"]) for e in errors if e["type"] == "rmbg"]
    if said:
        raise InvalidRequestError(said[0]) from None
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        raise InvalidImageError(
            f"Unknown field(s) {', '.join(unknown)}: use {', '.join(model.model_fields)}."
        ) from None
    raise InvalidRequestError(errors[0]["msg"]) from None  # none other is declared; said plainly if one comes


def keys_of(headers: Mapping[str, str]) -> dict[str, str | None]:
    """The vendors' keys in a request's headers, by slot (KeyHeaders)."""
    return {slot: headers.get(info.alias or slot) for slot, info in KeyHeaders.model_fields.items()}


def as_text(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema in a multipart form, where every value is text: its
    string alternative (a flag's "true"/"false"), or a string."""
    for option in schema.get("oneOf", ()):
        if option.get("type") == "string":
            return {**option, **{k: v for k, v in schema.items() if k in ("description", "title")}}
    return schema if schema.get("type") == "string" else {"type": "string"}


def bodies(fields: type[BaseModel] | None = None, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The request body's media types: a multipart form with the upload (the first of `files`), or
    JSON with its url; both from the fields' model (Fields and FILES, POST /api/remove's, by default)."""
    fields, files = fields or Fields, files or FILES
    schema = fields.model_json_schema()
    properties = {name: {k: v for k, v in s.items() if k != "default"} for name, s in schema["properties"].items()}
    binary = {name: {"type": "string", "format": "binary", "description": said} for name, said in files.items()}
    form = {
        "type": "object",
        "required": [next(iter(files))],
        "additionalProperties": False,
        "properties": {**binary, **{name: as_text(s) for name, s in properties.items() if name != "url"}},
    }
    body = {"type": "object", "required": ["url"], "additionalProperties": False, "properties": properties}
    return {"multipart/form-data": {"schema": form}, "application/json": {"schema": body}}


def parameters() -> list[dict[str, Any]]:
    """The key headers, from KeyHeaders."""
    return [
        {
            "name": info.alias,
            "in": "header",
            "required": False,
            "description": info.description,
            "schema": {"type": "string"},
        }
        for info in KeyHeaders.model_fields.values()
    ]


def responses(codes: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    """200 with the image and Made's headers; each error code with Refusal."""
    headers = {
        info.alias: {"description": info.description, "schema": {"type": "string"}}
        for info in Made.model_fields.values()
        if info.alias
    }
    image = {m: {"schema": {"type": "string", "format": "binary"}} for m in sorted(set(MIME.values()))}
    refused: dict[int | str, dict[str, Any]] = {
        code: {"model": Refusal, "description": "Refused or failed, with the reason"} for code in codes
    }
    return {200: {"description": "The output image", "content": image, "headers": headers}, **refused}
