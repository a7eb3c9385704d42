"""Frozen value types shared by every part of rmbg.

Units: seconds are wall-clock seconds (float); money is USD as Decimal;
images are PIL images, alpha mattes are mode "L" (0 = background,
255 = foreground) at the input image's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Mapping

if TYPE_CHECKING:  # PIL is a hard dependency, but keep import cheap for type-only use

    from PIL import Image

CostSource = Literal["reported", "estimated", "compute", "free"]


@dataclass(frozen=True)
class Cost:
    """What one provider call cost.

    source:
      - "reported": the provider said so in its response (Runware's `cost`);
      - "estimated": our price table (the provider reports nothing);
      - "compute": a local run, estimated from measured seconds x $/hour;
      - "free": nothing was spent (e.g. a cached matte).
    """

    usd: Decimal
    source: CostSource
    note: str = ""

    @staticmethod
    def free(note: str = "") -> "Cost":
        return Cost(Decimal(0), "free", note)

    def label(self) -> str:
        """Short human text, e.g. '$0.0180 (reported)'."""
        if self.source == "free":
            return "free"
        kind = {"reported": "reported", "estimated": "estimated", "compute": "compute estimate"}[self.source]
        return f"${format_usd(self.usd)} ({kind})"


def format_usd(usd: Decimal) -> str:
    """Enough digits for sub-cent prices: 0.0013 -> '0.0013', 12.5 -> '12.50'."""
    if usd == 0:
        return "0"
    if abs(usd) >= 1:
        return f"{usd:.2f}"
    if abs(usd) >= Decimal("0.0001"):
        return f"{usd:.4f}"
    return f"{usd:.6f}"


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

    alpha: "Image.Image"
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
        (0, 0) = result[0][0] (RMBG-1.4), (-1,) = result[-1] (RMBG-2.0).
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
    """

    background: Any = None
    mask_only: bool = False
    clean_edges: bool = False
    format: str = "png"
    framing: "Framing | None" = None


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
