"""Local models through OpenVINO on a CPU: exact fp32, bf16 (CPUs with bf16 units), or int8 by NNCF.

Optional (`pip install "rmbg[openvino]"`: openvino and nncf), imported only
when such a provider is first used. What it takes:

- IS-Net (isnet-general, rmbg-1.4) and U2-Net-p: the ONNX file, read by OpenVINO as is.
- BiRefNet_lite: our PyTorch network with the safetensors weights, captured
  by torch.export at the model's trained size (the graph is fixed to that
  size) and converted from the exported program.

bf16: the fp32 graph compiled with OpenVINO's bf16 inference precision, on
CPUs whose OpenVINO capabilities list BF16 (AVX512-BF16 or AMX); elsewhere
OpenVINO would quietly run fp32, so it is refused instead.

int8: NNCF's post-training quantization, calibrated on the frames given (a
folder of images, or a list of files), each through the model's own
preprocessing. Whether a configuration may be used is decided by the precision
gate (rmbg.eval.gate, benchmarks/speed_cpu.py --openvino), not assumed.

Converted (BiRefNet_lite) and quantized models are kept as OpenVINO IR in
<cache dir>/openvino/, keyed by the weights file, the calibration frames and
the OpenVINO version, so only the first use pays for the conversion; an ONNX
file at fp32 is read as it is each time (nothing written).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ModelUnavailableError
from ...models.specs import BIREFNET_VARIANTS, ISNET_GENERAL, RMBG_14, U2NETP
from ...types import Cost, Matte, ModelSpec
from ..base import ProviderStatus
from .device import isa_cap_allows
from .pinned import cache_dir
from .processing import finish, postprocess, preprocess, run_stages

PRECISIONS = ("fp32", "bf16", "int8")
SPECS = {
    "birefnet-lite": BIREFNET_VARIANTS["birefnet-lite"].spec,
    "isnet-general": ISNET_GENERAL,
    "rmbg-1.4": RMBG_14,
    "u2netp": U2NETP,
}
INSTALL = 'OpenVINO is not installed: pip install "rmbg[openvino]" (openvino and nncf)'

_COMPILED: dict[tuple[str, ...], Any] = {}
_LOG = logging.getLogger(__name__)
_LOCK = threading.Lock()


def _openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ModelUnavailableError(INSTALL) from None
    return openvino


def calibration_frames(calibration: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    """The calibration images: a folder's *.jpg/*.png (sorted), or the files given."""
    if calibration is None:
        raise ModelUnavailableError("precision='int8' needs calibration images (a folder or a list of files)")
    if isinstance(calibration, (str, os.PathLike)) and Path(calibration).is_dir():
        folder = Path(calibration)
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    items = [calibration] if isinstance(calibration, (str, os.PathLike)) else list(calibration)
    return [Path(p) for p in items]


def _convert(model_id: str, spec: ModelSpec, weights: Path) -> Any:
    ov = _openvino()
    if model_id != "birefnet-lite":
        return ov.Core().read_model(str(weights))
    import warnings

    import torch

    from ...models.birefnet import build_birefnet
    from .torch_backend import load_network

    variant = BIREFNET_VARIANTS[model_id]
    net = load_network(
        lambda: build_birefnet(backbone=variant.backbone, patch_order=variant.patch_order),
        weights,
        "cpu",
        torch.float32,
    )

    class Logits(torch.nn.Module):  # the last map only: the matte's logits
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net(x)[-1]

    # torch.export, then OpenVINO's converter of the exported program. While it
    # is captured, the network takes whole-map products instead of its eager
    # memory blocks (rmbg.models.capture); the graph is fixed to the trained size.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.export's deprecation notices, not about this graph
        program = torch.export.export(Logits().eval(), (torch.zeros(1, 3, *spec.input_size),), strict=False)
        return ov.convert_model(program)


def _quantize(model: Any, model_id: str, spec: ModelSpec, frames: list[Path]) -> Any:
    try:
        import nncf
    except ImportError:
        raise ModelUnavailableError(INSTALL) from None
    from PIL import Image

    inputs = [preprocess(Image.open(p).convert("RGB"), spec) for p in frames]
    extra = {"model_type": nncf.ModelType.TRANSFORMER} if model_id == "birefnet-lite" else {}
    return nncf.quantize(model, nncf.Dataset(inputs), subset_size=len(inputs), **extra)


def _ir_path(model_id: str, precision: str, weights: Path, frames: list[Path]) -> Path:
    ov = _openvino()
    st = weights.stat()
    key = json.dumps(
        [
            model_id,
            precision,
            str(weights.resolve()),
            st.st_size,
            st.st_mtime_ns,
            [str(p) for p in frames],
            ov.__version__,
        ]
    )
    return cache_dir() / "openvino" / f"{model_id}-{precision}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.xml"


def compiled_model(model_id: str, precision: str, weights: Path, frames: list[Path], threads: int | None) -> Any:
    """The compiled model (converted, quantized and saved as IR on first use; shared by every provider)."""
    ov = _openvino()
    spec = SPECS[model_id]
    graph = "fp32" if precision == "bf16" else precision  # bf16 compiles the fp32 graph
    ir = _ir_path(model_id, graph, weights, frames)
    key = (str(ir), precision, str(threads))
    with _LOCK:
        found = _COMPILED.get(key)
        if found is not None:
            return found
        core = ov.Core()
        capable = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") and isa_cap_allows("avx512_bf16")
        if precision == "bf16" and not capable:
            raise ModelUnavailableError(
                "OpenVINO bf16 needs a CPU with bf16 units (AVX512-BF16 or AMX) and this one has none: use fp32"
            )
        model = None
        if model_id != "birefnet-lite" and graph == "fp32":  # an ONNX file at fp32: read as is, no IR
            model = core.read_model(str(weights))
        elif not ir.is_file():
            model = _convert(model_id, spec, weights)
            if precision == "int8":
                model = _quantize(model, model_id, spec, frames)
            try:
                ir.parent.mkdir(parents=True, exist_ok=True)
                ov.save_model(model, str(ir), compress_to_fp16=False)
            except OSError as exc:  # a read-only cache: compile what was converted, convert again next time
                _LOG.warning("OpenVINO IR not kept in %s (%s): the next process converts again", ir.parent, exc)
            else:
                model = None
        hint = "bf16" if precision == "bf16" else "f32"  # f32 unless asked: no silent bf16 on AMX CPUs
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        found = core.compile_model(model if model is not None else core.read_model(str(ir)), "CPU", config)
        _COMPILED[key] = found
        return found


_IDLE: dict[int, queue.SimpleQueue[Any]] = {}  # per compiled model (they live as long as the process)


def infer(compiled: Any, x: Any, output: str | int = 0) -> Any:
    """Run a compiled model on x and return a copy of one output. A call takes an idle
    infer request of the model, or makes one, and hands it back after: a compiled model's
    own call shares one request, which concurrent callers would overwrite, and one
    request per thread would grow with every thread a server ever ran (about 4 MB each
    for U2-Net-p). So there are as many as calls ever ran at once."""
    with _LOCK:
        idle = _IDLE.setdefault(id(compiled), queue.SimpleQueue())
    try:
        request = idle.get_nowait()
    except queue.Empty:
        request = compiled.create_infer_request()
    try:
        request.infer({0: x})
        return request.get_tensor(compiled.output(output)).data.copy()
    finally:
        idle.put(request)


def idle_requests(compiled: Any) -> int:
    """How many infer requests the model keeps between calls (its peak concurrency)."""
    found = _IDLE.get(id(compiled))
    return 0 if found is None else found.qsize()


class OpenVinoProvider:
    """A model compiled by OpenVINO behind the Provider protocol."""

    kind = "local"
    device = "cpu"

    def __init__(
        self,
        model_id: str,
        weights: str | os.PathLike,
        *,
        precision: str = "fp32",
        calibration: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        threads: int | None = None,
    ):
        if model_id not in SPECS:
            raise ModelUnavailableError(f"no OpenVINO path for {model_id!r}; one of {', '.join(SPECS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.spec = SPECS[model_id]
        self.id, self.label = model_id, self.spec.label
        self._weights = Path(weights)
        self._precision = precision
        self._frames = calibration_frames(calibration) if precision == "int8" else []
        self._threads = threads

    def options(self) -> Mapping[str, object]:
        return {
            "backend": "openvino",
            "input_size": list(self.spec.input_size),
            "precision": self._precision,
            "weights": str(self._weights),
        }

    def status(self) -> ProviderStatus:
        import importlib.util

        if importlib.util.find_spec("openvino") is None:
            return ProviderStatus("unavailable", INSTALL)
        if not self._weights.is_file():
            return ProviderStatus("unavailable", f"weights file not found: {self._weights}")
        return ProviderStatus("ready", f"local weights {self._weights.name} (OpenVINO {self._precision})")

    def estimate(self) -> Cost:
        return Cost.free("local compute; estimate after a run")

    def compiled(self) -> Any:
        return compiled_model(self.id, self._precision, self._weights, self._frames, self._threads)

    def matte(self, image: Any) -> Matte:
        self.compiled()  # converted and compiled before the clock starts
        meta = {"model": self.id, "backend": "openvino", "precision": self._precision, "weights": self._weights.name}
        return run_stages(self, image, meta)

    def preprocess(self, image: Any) -> Any:
        return preprocess(image, self.spec)

    def forward(self, x: Any) -> Any:
        return finish(infer(self.compiled(), x)[0, 0], self.spec)

    def postprocess(self, pred: Any, size: tuple[int, int]) -> Any:
        return postprocess(pred, self.spec, size)


def openvino_provider(
    model_id: str,
    *,
    weights: str | os.PathLike,
    precision: str = "fp32",
    calibration: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    threads: int | None = None,
) -> OpenVinoProvider:
    """model_id ("birefnet-lite", "isnet-general", "rmbg-1.4", "u2netp") through OpenVINO; see the module doc."""
    return OpenVinoProvider(model_id, weights, precision=precision, calibration=calibration, threads=threads)
