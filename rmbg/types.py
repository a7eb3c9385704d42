"""Frozen value types shared by every part of rmbg.

Units: seconds are wall-clock seconds (float); money is USD as Decimal;
images are PIL images, alpha mattes are mode "L" (0 = background,
255 = foreground) at the input image's size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from .errors import InvalidRequestError

if TYPE_CHECKING:  # PIL is a hard dependency, but keep import cheap for type-only use
    from PIL import Image

CostSource = Literal["reported", "estimated", "compute", "free"]


# a failed call counted at its estimate: its Cost's note, manifest.csv's cost_source
MAY_HAVE_BEEN_BILLED = "may have been billed"
UNRECORDED = "the call was made and may have been billed, but the spending ledger could not record it"


@dataclass(frozen=True)
class Cost:
    """What one provider call cost.

    source:
      - "reported": the provider said so in its response (Runware's `cost`);
      - "estimated": our price table (the provider reports nothing);
      - "compute": a local run, estimated from measured seconds x $/hour;
      - "free": nothing was spent (e.g. a cached matte).
    watermarked: the vendor gave this result free with its watermark over it
      (a Photoroom sandbox key): shown as such, never scored as quality.
    unrecorded: the call was made, but the spending ledger failed to record
      its cost (rmbg.money.paying): said wherever the cost is shown.
    """

    usd: Decimal
    source: CostSource
    note: str = ""
    watermarked: bool = False
    unrecorded: bool = False

    @staticmethod
    def free(note: str = "") -> Cost:
        return Cost(Decimal(0), "free", note)

    def label(self) -> str:
        """Short human text, e.g. '$0.0180 (reported)'."""
        if self.watermarked:
            return f"free, watermarked ({self.note})" if self.note else "free, watermarked"
        if self.source == "free":
            return "free"
        kind = {"reported": "reported", "estimated": "estimated", "compute": "compute estimate"}[self.source]
        if self.unrecorded:
            return f"${format_usd(self.usd)} ({kind}; {UNRECORDED})"
        return f"${format_usd(self.usd)} ({kind})"


def one_or_many(value: Any) -> list[Any]:
    """What a caller gave where several are taken (inputs, images, providers) as a list: a sequence's items,
    or a lone item as a list of one: a str, bytes or a path (never its letters: "photo.jpg" once read as
    "p", "h", ..., and "." ran every image under the current folder), an image or array, a provider."""
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or hasattr(value, "__array_interface__"):
        return [value]
    return list(value) if isinstance(value, Iterable) else [value]


def name_text(name: str) -> str:
    """A file name as text for a report, a ledger or a message: itself, or, when it holds bytes that are not
    UTF-8 (an old camera's, one unpacked from another system's zip: Python keeps them as lone surrogates,
    which no UTF-8 file or database takes), those bytes shown as \\xNN."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


# C0, DEL, C1, the Unicode line breaks: a name's ESC sequence would drive the terminal, its CR or newline forge a line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def line_text(text: str) -> str:
    """`text` for one line of a terminal, a log or a report's table: each control character shown as \\xNN
    (\\uNNNN for the Unicode line breaks), as name_text shows bytes that are not UTF-8, so that a file's name
    can neither drive the terminal nor break or forge a line."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", name_text(text)
    )


def format_usd(usd: Decimal) -> str:
    """Enough digits for sub-cent prices: 0.0013 -> '0.0013', 12.5 -> '12.50'."""
    if usd == 0:
        return "0"
    if abs(usd) >= 1:
        return f"{usd:.2f}"
    if abs(usd) >= Decimal("0.0001"):
        return f"{usd:.4f}"
    return f"{usd:.6f}"


def format_cap(usd: Decimal) -> str:
    """A cap or budget as it was set: cents, with every further digit it has ($0.005 was shown as '0.00',
    passed when nothing could be spent): 5 -> '5.00', 0.5 -> '0.50', 0.005 -> '0.005'."""
    exact = f"{Decimal(usd).normalize():f}"
    return exact if len(exact.partition(".")[2]) > 2 else f"{usd:.2f}"


@dataclass(frozen=True)
class Seconds:
    """Timing of one call: `model` is the provider's matte time (network or
    HTTP round trips), `total` includes loading, caching and rendering."""

    model: float
    total: float


@dataclass(frozen=True)
class Matte:
    """What a provider returns: the alpha matte of one image, and its cost.

    alpha: mode "L", exactly the size of the image the provider was given.
    seconds: time spent in the provider (model forward or remote call).
    meta: provenance, e.g. {"model": "briaai/RMBG-1.4", "revision": "...",
          "request_id": "..."}; never contains secrets.
    """

    alpha: Image.Image
    cost: Cost
    seconds: float
    meta: Mapping[str, str] = field(default_factory=dict)


# Background replacement (rmbg.replace_background). Ranges are fal's for Bria
# background replace (its API page on fal.ai): seed 0..2**31-1, 1..4 images.
SEED_MAX = 2_147_483_647
MAX_GENERATED = 4


def check_count(num_images: object) -> int:
    """The number of images to generate: a whole number 1..MAX_GENERATED."""
    if isinstance(num_images, bool) or not isinstance(num_images, int) or not 1 <= num_images <= MAX_GENERATED:
        raise InvalidRequestError(f"num_images must be a whole number from 1 to {MAX_GENERATED}, got {num_images!r}.")
    return num_images


def check_replace_args(
    prompt: object,
    has_ref: bool,
    negative_prompt: object,
    seed: object,
    num_images: object,
    refine_prompt: object,
) -> None:
    """Every argument of a replace request, before any image is read or anything is sent."""
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidRequestError(f"The prompt must be text, got {type(prompt).__name__}.")
    if prompt is not None and has_ref:
        raise InvalidRequestError(
            "Give either a prompt or a reference image for the new background, not both: the provider takes one."
        )
    if prompt is None and not has_ref:
        raise InvalidRequestError(
            "Give a prompt (the new background in words) or a reference image; neither was given."
        )
    if prompt is not None and not prompt.strip():
        raise InvalidRequestError(
            "The prompt is empty: describe the new background in words, or give a reference image."
        )
    if not isinstance(negative_prompt, str):
        raise InvalidRequestError(f"The negative prompt must be text, got {type(negative_prompt).__name__}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX):
        raise InvalidRequestError(f"seed must be a whole number from 0 to {SEED_MAX} (or None), got {seed!r}.")
    if not isinstance(refine_prompt, bool):
        raise InvalidRequestError(f"refine_prompt must be True or False, got {refine_prompt!r}.")
    check_count(num_images)


@dataclass(frozen=True)
class ReplaceRequest:
    """What to put behind an image's subject. Checked when made
    (InvalidRequestError), so a provider is never handed an invalid one.

    prompt: the new background in words (surrounding spaces removed), or None
        when `ref` is given; exactly one of the two.
    ref: a reference image (RGB) whose look the new background takes, or None.
    negative_prompt: what to keep out of it ("" = nothing).
    seed: 0..SEED_MAX for a repeatable result; None = the provider draws one.
    refine_prompt: let it rewrite the prompt.
    num_images: 1..MAX_GENERATED images; each one is billed.
    """

    prompt: str | None = None
    ref: Image.Image | None = None
    negative_prompt: str = ""
    seed: int | None = None
    num_images: int = 1
    refine_prompt: bool = True

    def __post_init__(self) -> None:
        check_replace_args(
            self.prompt,
            self.ref is not None,
            self.negative_prompt,
            self.seed,
            self.num_images,
            self.refine_prompt,
        )
        if self.prompt is not None:
            object.__setattr__(self, "prompt", self.prompt.strip())


@dataclass(frozen=True)
class Generated:
    """What a background replacer returns.

    images: the generated files as the provider sent them (encoded bytes;
        rmbg.replace decodes them through the same loader and limits as inputs).
    seed: the seed the provider used (None when it did not say).
    cost: of the whole request (every image). seconds: in the provider.
    meta: provenance (endpoint, request id, ...); never contains secrets.
    """

    images: tuple[bytes, ...]
    seed: int | None
    cost: Cost
    seconds: float
    meta: Mapping[str, str] = field(default_factory=dict)


ResizeIn = Literal["bilinear", "bilinear_antialias", "lanczos"]
ResizeOut = Literal["bilinear", "bicubic", "lanczos"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything that distinguishes one segmentation network's recipe.

    The shared inference path (rmbg.providers.local.processing + a backend) reads only this.

    input_size: (height, width) the network sees; the image is squashed to it
        (aspect not kept), as every official recipe here does.
    resize_in: "bilinear" = float-tensor bilinear, align_corners=False, no
        antialias (RMBG-1.4); "bilinear_antialias" = PIL bilinear (RMBG-2.0);
        "lanczos" = PIL Lanczos (U2-Net-p).
    input_scale: divide pixels by 255 ("255") or by the image's max ("max").
    mean, std: per-channel normalisation after scaling.
    output_path: how to reach the mask in the network's raw output, e.g.
        `(0, 0)` = `result[0][0]` (RMBG-1.4), `(-1,)` = `result[-1]` (RMBG-2.0).
    activation: "none" (already a probability) or "sigmoid" (logits).
    minmax: per-image min-max normalisation of the probability map.
    quantize_first: turn the map into uint8 at network resolution, then
        resize with a PIL filter (RMBG-2.0, U2-Net-p); otherwise resize the
        float map, then quantise (RMBG-1.4).
    resize_out: filter used to go back to the input size.
    """

    id: str
    label: str
    repo_id: str
    revision: str
    filename: str
    input_size: tuple[int, int]
    resize_in: ResizeIn
    input_scale: Literal["255", "max"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output_path: tuple[int, ...]
    activation: Literal["none", "sigmoid"]
    minmax: bool
    quantize_first: bool
    resize_out: ResizeOut
    licence: str
    gated: bool
    onnx_files: Mapping[str, str] = field(default_factory=dict)
    onnx_input: str = "input"
    onnx_output: str = "output"

    @property
    def model_page(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


@dataclass(frozen=True)
class RenderOptions:
    """How a matte becomes what a person gets; computed locally, never by a model.

    background: None (transparent cut-out), a colour ("#RRGGBB", a CSS
        name, an (r, g, b) tuple) or a PIL image (fitted to cover).
    mask_only: the matte itself (mode L), whatever the background.
    clean_edges: estimated foreground colours at soft edges instead of the
        photo's (rmbg.image.foreground), so hair loses the old background's tint.
    format: "png", "webp" or "jpeg" for encoding (PNG and WebP keep alpha).
    edge_colours: a transparent cut-out estimates the subject's colour at soft
        edges (True, the default); False keeps the photo's colours there, as
        rembg does: faster, but the edges keep the old background's tint.
    """

    background: Any = None
    mask_only: bool = False
    clean_edges: bool = False
    format: str = "png"
    framing: Framing | None = None
    edge_colours: bool = True


Align = Literal["center", "bottom"]


@dataclass(frozen=True)
class Framing:
    """Product-photo framing, applied to the cut-out before any background
    (rmbg.image.framing; build one with framing_of()).

    The subject is the bounding box of alpha >= 16 (rmbg.image.framing.
    SUBJECT_THRESHOLD); an empty matte keeps the whole frame.

    canvas: None -> crop to the subject plus `margin` on each side;
        (w, h) -> exactly w x h pixels, the subject scaled (up or down) to
        fit inside the margins; an aspect ratio (w, h) with aspect=True ->
        the subject at its own scale, its crop widened (or heightened) to
        that ratio.
    margin: pixels (an int) or a fraction (a float, 0.1 = 10 %): of the
        subject's longer side when cropping or for an aspect, of the
        canvas's shorter side for a fixed canvas.
    align: "center", or "bottom" (the subject stands on the bottom margin).
    """

    canvas: tuple[int, int] | None = None
    aspect: bool = False
    margin: int | float = 0
    align: Align = "center"
