"""Files for benchmarks/speed.py: model files, test images, machine facts.

RMBG-1.4 uses BRIA's real files when they are in the Hugging Face cache
(model.safetensors and onnx/*.onnx at the pinned revision). Otherwise, as in
the tests, it uses deterministic weights (speed does not depend on the
values; matte agreement between backends does, a little) and builds the ONNX
variants the way BRIA's were made: our network exported with result[0][0]
as its only output `output`, input `input`, dynamic batch/H/W; the quantised
file with onnxruntime's dynamic QUInt8 quantiser (per_channel false,
reduce_range false, as onnx/quantize_config.json says); fp16 with
onnxconverter-common when it is installed. Generated files are kept in
~/.cache/rmbg-bench (or RMBG_BENCH_CACHE) so a second run exports nothing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXAMPLE = ROOT / "examples" / "dog.jpg"  # DAVIS frame, CC BY 4.0 (examples/ATTRIBUTION.md)


# An older CPU class on this one (speed_cpu.py --isa-cap): oneDNN (PyTorch's
# and OpenVINO's), ATen's own kernels and MKL's matrix products kept to one instruction-set
# level. ONNX Runtime's MLAS has no such cap.
ISA_CAP_VARIABLES = {
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def bench_cache() -> Path:
    path = Path(os.environ.get("RMBG_BENCH_CACHE") or Path.home() / ".cache" / "rmbg-bench").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _export_isnet(net, path: Path) -> None:
    import torch

    class FirstMask(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)[0][0]

    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            FirstMask(net).eval(),
            torch.zeros(1, 3, 1024, 1024),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dims, "output": dims},
            opset_version=17,
            dynamo=False,
        )


def rmbg14_files() -> dict[str, object]:
    """{"weights": "official"|"deterministic", "safetensors": Path, "fp32": Path,
    "quantized": Path, "fp16": Path | None} for RMBG-1.4."""
    from rmbg.models.specs import RMBG_14
    from rmbg.providers.local.hub import cached_path

    official = {name: cached_path(RMBG_14, f) for name, f in RMBG_14.onnx_files.items()}
    official["safetensors"] = cached_path(RMBG_14)
    if all(official.values()):
        return {"weights": "official", **official}
    import torch

    folder = bench_cache() / f"rmbg14-deterministic-torch{torch.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, object] = {
        "weights": "deterministic",
        "safetensors": folder / "model.safetensors",
        "fp32": folder / "model.onnx",
        "quantized": folder / "model_quantized.onnx",
        "fp16": folder / "model_fp16.onnx",
    }
    if not Path(files["fp32"]).is_file():
        from safetensors.torch import save_file

        from rmbg.models.deterministic import deterministic_state, read_keys
        from rmbg.models.isnet import build_isnet

        state = deterministic_state(read_keys(ROOT / "tests" / "fixtures" / "rmbg-1.4.keys.tsv"))
        save_file(state, str(files["safetensors"]), metadata={"format": "pt"})
        net = build_isnet()
        net.load_state_dict(state, strict=True)
        _export_isnet(net, Path(str(files["fp32"]) + ".part"))
        os.replace(str(files["fp32"]) + ".part", files["fp32"])
    if not Path(files["quantized"]).is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(files["fp32"]),
            str(files["quantized"]),
            weight_type=QuantType.QUInt8,
            per_channel=False,
            reduce_range=False,
        )
    if not Path(files["fp16"]).is_file():
        try:
            import onnx
            from onnxconverter_common import float16
        except ImportError:
            files["fp16"] = None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                half = float16.convert_float_to_float16(onnx.load(str(files["fp32"])), keep_io_types=False)
            onnx.save(half, str(files["fp16"]))
    return files


def deterministic_weights(model: str) -> Path:
    """Deterministic weights of a local torch model ("rmbg-1.4", "rmbg-2.0" (880 MB),
    "birefnet-lite") in the bench cache, made once per torch version; BiRefNet's
    integer index buffers come from the module itself."""
    import torch
    from safetensors.torch import save_file

    from rmbg.models.deterministic import deterministic_state, read_keys

    name = "rmbg20" if model == "rmbg-2.0" else model
    path = bench_cache() / f"{name}-deterministic-torch{torch.__version__}.safetensors"
    if not path.is_file():
        state = deterministic_state(read_keys(ROOT / "tests" / "fixtures" / f"{model}.keys.tsv"))
        if model != "rmbg-1.4":
            from rmbg.models.birefnet import build_birefnet

            own = build_birefnet(backbone="swin_t" if model == "birefnet-lite" else "swin_l").state_dict()
            for key, value in state.items():
                if value.dtype == torch.int64:
                    state[key] = own[key]
        save_file(state, str(path) + ".part", metadata={"format": "pt"})
        os.replace(str(path) + ".part", path)
    return path


def rmbg20_weights() -> Path:
    """Deterministic RMBG-2.0 weights (880 MB) in the bench cache."""
    return deterministic_weights("rmbg-2.0")


def test_images() -> dict[str, Path]:
    """A 1024x1024 and a 12 MP (4000x3000) JPEG made from a real photo."""
    from PIL import Image

    folder = bench_cache()
    out = {"1024x1024": folder / "photo-1024.jpg", "4000x3000 (12 MP)": folder / "photo-12mp.jpg"}
    photo = Image.open(EXAMPLE).convert("RGB")
    for path, size in zip(out.values(), ((1024, 1024), (4000, 3000))):
        if not path.is_file():
            photo.resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
    return out
