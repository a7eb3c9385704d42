"""Per-model constants, as data (see ../shared/specs/models.md).

RMBG-1.4 and RMBG-2.0 share one inference path and differ only in these
specs and in their networks.
"""

from __future__ import annotations

from ..types import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# models.md section 1.8-1.9: float bilinear squash to 1024, /255 - 0.5,
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

# models.md section 2.10: PIL bilinear (antialiased) to 1024, ImageNet
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

# models.md section 6: Lanczos to 320, divide by the image max, ImageNet
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

SPECS = {spec.id: spec for spec in (RMBG_14, RMBG_20, U2NETP)}
