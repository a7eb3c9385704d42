"""Per-model constants, as data (see docs/architecture.md, "Per-model constants").

RMBG-1.4 and RMBG-2.0 share one inference path and differ only in these
specs and in their networks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..types import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# RMBG-1.4's official pipeline: float bilinear squash to 1024, /255 - 0.5,
# result[0][0] (already sigmoided), bilinear back, per-image min-max, uint8.
RMBG_14 = ModelSpec(
    id="rmbg-1.4",
    label="BRIA RMBG-1.4 (IS-Net, local)",
    repo_id="briaai/RMBG-1.4",
    revision="22532afbdabdc36b2d30a334076720ac72a06f83",
    filename="model.safetensors",
    input_size=(1024, 1024),
    resize_in="bilinear",
    input_scale="255",
    mean=(0.5, 0.5, 0.5),
    std=(1.0, 1.0, 1.0),
    output_path=(0, 0),
    activation="none",
    minmax=True,
    quantize_first=False,
    resize_out="bilinear",
    licence="bria-rmbg-1.4 (non-commercial; commercial use needs an agreement with BRIA)",
    gated=True,
    onnx_files={
        "fp32": "onnx/model.onnx",
        "fp16": "onnx/model_fp16.onnx",
        "quantized": "onnx/model_quantized.onnx",
    },
    onnx_input="input",
    onnx_output="output",
)

# RMBG-2.0's model card: PIL bilinear (antialiased) to 1024, ImageNet
# mean/std, last output, sigmoid, uint8 at 1024, PIL bicubic back, no min-max.
RMBG_20 = ModelSpec(
    id="rmbg-2.0",
    label="BRIA RMBG-2.0 (BiRefNet Swin-L, local)",
    repo_id="briaai/RMBG-2.0",
    revision="549faadfe8cbab4dbeac6aaff693e7010d682c94",
    filename="model.safetensors",
    input_size=(1024, 1024),
    resize_in="bilinear_antialias",
    input_scale="255",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    output_path=(-1,),
    activation="sigmoid",
    minmax=False,
    quantize_first=True,
    resize_out="bicubic",
    licence="CC BY-NC 4.0 (bria-rmbg-2.0; non-commercial)",
    gated=True,
    onnx_input="input_image",
    onnx_output="output_image",
)

# U2-Net-p as rembg runs it: Lanczos to 320, divide by the image max, ImageNet
# mean/std, output 0 (sigmoided), min-max, uint8, Lanczos back.
U2NETP = ModelSpec(
    id="u2netp",
    label="U2-Net-p (tiny, ungated, Apache-2.0)",
    repo_id="",
    revision="",
    filename="u2netp.onnx",
    input_size=(320, 320),
    resize_in="lanczos",
    input_scale="max",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    output_path=(0,),
    activation="none",
    minmax=True,
    quantize_first=True,
    resize_out="lanczos",
    licence="Apache-2.0",
    gated=False,
    onnx_input="input.1",
    onnx_output="1959",
)

# DIS's isnet-general-use (xuebinqin/DIS, Apache-2.0): the IS-Net network of
# RMBG-1.4 with the publisher's general-use weights and the same recipe (DIS's
# Inference.py: /255 - 0.5, result[0][0], bilinear back, min-max). Its ONNX
# export names its input "input_image" and its mask output "output_image".
ISNET_GENERAL = replace(
    RMBG_14,
    id="isnet-general",
    label="IS-Net general use (DIS, ungated, Apache-2.0)",
    repo_id="",
    revision="",
    filename="isnet-general-use.onnx",
    licence="Apache-2.0",
    gated=False,
    onnx_files={},
    onnx_input="input_image",
    onnx_output="output_image",
)

# BiRefNet's open weights (ZhengPeng7, MIT, ungated) on the
# same network as RMBG-2.0, with RMBG-2.0's model-card recipe at each model's
# trained size. No commit of these repositories is known here: they are
# resolved from "main" once, and the resolved commit is recorded with each result.
BIREFNET_LICENCE = "MIT weights (ZhengPeng7); trained partly on research data sets: judge commercial use yourself"


@dataclass(frozen=True)
class BiRefNetVariant:
    """One model of BiRefNet's family: its recipe, backbone and input-size rule.

    backbone: "swin_l" or "swin_t" (rmbg.models.swin.SWIN_CONFIGS).
    dynamic: the input size follows the image (dynamic_input_size), not spec.input_size.
    pinned: spec.revision is a known commit; otherwise it is "main", resolved once.
    patch_order: how the decoder stacks image patches (rmbg.models.birefnet.image_patches):
    "channel", as BiRefNet's own inference code has done since 2024-11-05 (RMBG-2.0's
    code, from before, uses "column"). Which order each checkpoint was trained with
    is not recorded in it; the official code's is followed.
    """

    spec: ModelSpec
    backbone: str
    dynamic: bool = False
    pinned: bool = False
    patch_order: str = "channel"


def _birefnet(model_id: str, repo: str, what: str, size: int = 1024) -> ModelSpec:
    return replace(
        RMBG_20,
        id=model_id,
        label=f"BiRefNet {what} (MIT, local)",
        repo_id=repo,
        revision="main",
        input_size=(size, size),
        licence=BIREFNET_LICENCE,
        gated=False,
        onnx_files={},
    )


BIREFNET_VARIANTS: dict[str, BiRefNetVariant] = {
    v.spec.id: v
    for v in (
        BiRefNetVariant(_birefnet("birefnet", "ZhengPeng7/BiRefNet", "Swin-L"), "swin_l"),
        BiRefNetVariant(_birefnet("birefnet-lite", "ZhengPeng7/BiRefNet_lite", "lite, Swin-T"), "swin_t"),
        BiRefNetVariant(_birefnet("birefnet-hr", "ZhengPeng7/BiRefNet_HR", "HR, Swin-L 2048", 2048), "swin_l"),
        BiRefNetVariant(_birefnet("birefnet-matting", "ZhengPeng7/BiRefNet-matting", "matting, Swin-L"), "swin_l"),
        BiRefNetVariant(_birefnet("birefnet-portrait", "ZhengPeng7/BiRefNet-portrait", "portrait, Swin-L"), "swin_l"),
        BiRefNetVariant(
            _birefnet("birefnet-dynamic", "ZhengPeng7/BiRefNet_dynamic", "dynamic size, Swin-L"), "swin_l", dynamic=True
        ),
    )
}

DYNAMIC_MIN, DYNAMIC_MAX, DYNAMIC_STEP = 256, 2304, 32


def dynamic_input_size(width: int, height: int) -> tuple[int, int]:
    """(height, width) for BiRefNet_dynamic: the image's own size, aspect kept.

    Rule: if the long side exceeds 2304 px, scale both sides by 2304 / long
    side; then round each side to the nearest multiple of 32 (halves up) and
    clamp it to 256..2304. So a 4000x3000 photo runs at 2304x1728, a
    640x480 one at 640x480, a 100x50 thumbnail at 256x256 (clamped, the
    aspect then changes: the network was not trained below 256).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    scale = min(1.0, DYNAMIC_MAX / max(width, height))

    def side(n: int) -> int:
        steps = int(n * scale / DYNAMIC_STEP + 0.5)
        return min(DYNAMIC_MAX, max(DYNAMIC_MIN, steps * DYNAMIC_STEP))

    return side(height), side(width)


SPECS = {
    spec.id: spec for spec in (RMBG_14, RMBG_20, U2NETP, ISNET_GENERAL, *(v.spec for v in BIREFNET_VARIANTS.values()))
}
