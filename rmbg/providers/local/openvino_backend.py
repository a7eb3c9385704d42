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
<cache dir>/openvino/, keyed by the weights file, the calibration frames (int8
only) and the OpenVINO version, so only the first use pays for the conversion;
BiRefNet_lite's int8 quantizes its fp32 IR when that is kept. An ONNX file at
fp32 is read as it is each time (nothing written). Compiled models are
held by the model pool (rmbg.providers.local.pool), once per (IR, precision,
threads), each with the infer requests it keeps between calls; every infer
holds the pool's device lock.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ModelUnavailableError
from ...models.specs import BIREFNET_VARIANTS, ISNET_GENERAL, RMBG_14, U2NETP
from ...threads import usable_cores
from ...types import Cost, Matte, ModelSpec
from ..base import ProviderStatus
from .device import isa_cap_allows
from .pinned import cache_dir
from .pool import POOL, file_bytes
from .processing import finish, postprocess, preprocess, run_stages
from .torch_thread import torch_call

PRECISIONS = ("fp32", "bf16", "int8")
SPECS = {
    "birefnet-lite": BIREFNET_VARIANTS["birefnet-lite"].spec,
    "isnet-general": ISNET_GENERAL,
    "rmbg-1.4": RMBG_14,
    "u2netp": U2NETP,
}
INSTALL = 'OpenVINO is not installed: pip install "rmbg[openvino]" (openvino and nncf)'

_LOG = logging.getLogger(__name__)


_IMPORTING = threading.Lock()  # held while openvino is imported (_openvino)


def _openvino() -> Any:
    """The openvino module, imported without its usage report. On import OpenVINO reports itself to
    Intel's analytics unless a consent file or CI=true says no, from a child process forked in a
    thread; in a multi-threaded process with no network that child can keep the interpreter from
    exiting (seen: `rmbg video` finished, then stuck at exit). With openvino_telemetry unimportable
    for the import, OpenVINO takes its own no-op stub; the module is importable again after.
    Under one lock: while a thread imports it, `openvino` is in sys.modules half made, and a second
    thread that took it from there failed on a missing attribute (two models of a Compare, first use)."""
    with _IMPORTING:
        if sys.modules.get("openvino") is not None:
            return sys.modules["openvino"]
        blocked = "openvino_telemetry" not in sys.modules
        if blocked:
            sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
        try:
            import openvino
        except ImportError:
            raise ModelUnavailableError(INSTALL) from None
        finally:
            if blocked:
                sys.modules.pop("openvino_telemetry", None)
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
    from .torch_load import load_network

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
    frames_read = [str(p) for p in frames] if precision == "int8" else []  # only int8 is calibrated
    key = json.dumps(
        [model_id, precision, str(weights.resolve()), st.st_size, st.st_mtime_ns, frames_read, ov.__version__]
    )
    return cache_dir() / "openvino" / f"{model_id}-{precision}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.xml"


class Compiled:
    """OpenVINO's compiled model (`model`) and the infer requests it keeps between calls."""

    def __init__(self, model: Any, threads: int):
        self.model = model
        self.threads = threads
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def infer(self, x: Any, output: str | int = 0) -> Any:
        """Run the model on x under the device lock and return a copy of one output.
        A call takes an idle infer request, or makes one, and hands it back after:
        the compiled model's own call shares one request, which concurrent callers
        would overwrite, and one request per thread would grow with every thread a
        server ever ran (about 4 MB each for U2-Net-p). So there are as many as
        calls ever ran at once."""
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self.model.create_infer_request()
        try:
            with POOL.forward(threads=self.threads):
                request.infer({0: x})
            return request.get_tensor(self.model.output(output)).data.copy()
        finally:
            self._idle.put(request)

    def idle_requests(self) -> int:
        """How many infer requests the model keeps between calls (its peak concurrency)."""
        return self._idle.qsize()


def compiled_model(model_id: str, precision: str, weights: Path, frames: list[Path], threads: int | None) -> Compiled:
    """The compiled model (converted, quantized and saved as IR on first use; pooled, shared by every provider),
    on `threads` inference threads (None: the process's thread budget, rmbg.threads)."""
    return compiled_loader(model_id, precision, weights, frames, threads)()


def compiled_loader(
    model_id: str, precision: str, weights: Path, frames: list[Path], threads: int | None
) -> Callable[[], Compiled]:
    """compiled_model's loader, its IR path and pool key worked out once (the cache folder, the weights file's
    stat, OpenVINO's version): each call takes the model from the pool (loaded again where the pool let it go)."""
    threads = threads or usable_cores()
    graph = "fp32" if precision == "bf16" else precision  # bf16 compiles the fp32 graph
    ir = _ir_path(model_id, graph, weights, frames)

    def load() -> Compiled:
        return Compiled(_compile(model_id, precision, graph, weights, frames, threads, ir), threads)

    def size(_: Compiled) -> int:
        return file_bytes(ir.with_suffix(".bin") if ir.is_file() else weights)

    key = ("openvino", str(ir), precision, str(threads))
    return functools.partial(POOL.get, key, load, source=str(weights), size=size)


def _compile(
    model_id: str, precision: str, graph: str, weights: Path, frames: list[Path], threads: int, ir: Path
) -> Any:
    ov = _openvino()
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
        fp32 = _ir_path(model_id, "fp32", weights, [])
        if precision == "int8" and model_id == "birefnet-lite" and fp32.is_file():
            model = core.read_model(str(fp32))  # BiRefNet_lite's fp32 IR, kept: no second torch.export
        else:
            model = torch_call(functools.partial(_convert, model_id, SPECS[model_id], weights))  # torch's work
        if precision == "int8":
            model = _quantize(model, model_id, SPECS[model_id], frames)
        try:
            ir.parent.mkdir(parents=True, exist_ok=True)
            ov.save_model(model, str(ir), compress_to_fp16=False)
        except OSError as exc:  # a read-only cache: compile what was converted, convert again next time
            _LOG.warning("OpenVINO IR not kept in %s (%s): the next process converts again", ir.parent, exc)
        else:
            model = None
    hint = "bf16" if precision == "bf16" else "f32"  # f32 unless asked: no silent bf16 on AMX CPUs
    # One stream on the budget's threads: forwards run one at a time (the pool's device lock), so
    # more streams would only hold more threads and memory (rmbg.threads).
    config = {
        "INFERENCE_PRECISION_HINT": hint,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "1",
        "INFERENCE_NUM_THREADS": str(threads),
    }
    if model is not None and (model_id == "birefnet-lite" or graph != "fp32"):  # converted here, not kept
        return core.compile_model(model, "CPU", config)
    # From a file, through OpenVINO's own cache of compiled blobs: a new process (`rmbg remove
    # photo.jpg`) imports the blob instead of compiling again (U2-Net-p: ~0.1 s instead of ~0.6-1.5 s;
    # archived benchmarks/vs_rembg_serving.py). OpenVINO keys each blob by the model, the device and this config.
    source = str(weights) if model is not None else str(ir)
    blobs = cache_dir() / "openvino" / "compiled"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        return core.compile_model(source, "CPU", {**config, "CACHE_DIR": str(blobs)})
    except (OSError, RuntimeError) as exc:  # a read-only cache: compile as before
        _LOG.warning("OpenVINO compiled-model cache not used in %s (%s)", blobs, exc)
        return core.compile_model(source, "CPU", config)


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
        """OpenVINO's compiled model (converted and compiled on first use, then pooled)."""
        return self._pooled().model

    @functools.cached_property
    def _pooled(self) -> Callable[[], Compiled]:  # its pool key worked out once: a provider's file is fixed
        return compiled_loader(self.id, self._precision, self._weights, self._frames, self._threads)

    def matte(self, image: Any) -> Matte:
        self.compiled()  # converted and compiled before the clock starts
        meta = {"model": self.id, "backend": "openvino", "precision": self._precision, "weights": self._weights.name}
        return run_stages(self, image, meta, threads=self._pooled().threads)

    def preprocess(self, image: Any) -> Any:
        return preprocess(image, self.spec)

    def forward(self, x: Any) -> Any:
        return finish(self._pooled().infer(x)[0, 0], self.spec)

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
