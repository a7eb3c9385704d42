"""Local models run with ONNX Runtime: RMBG-1.4's official exports and U2-Net-p.

One generic runner, driven by the same ModelSpec as the PyTorch path: the
pre- and post-processing are rmbg.providers.local.processing's (numpy + PIL, no torch), only
the network call differs. Sessions are created once per (file, execution
providers, threads) in the model pool (rmbg.providers.local.pool) and shared
by every provider object and thread; each run holds the pool's device lock.
onnxruntime is imported only when a session is first needed, so `import rmbg`
stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import platform
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from ...errors import ModelUnavailableError
from ...models.specs import RMBG_14
from ...threads import usable_cores
from ...types import Cost, Matte, ModelSpec
from ..base import ProviderStatus
from .engines import ENGINES, Engine, OpenVinoPath, may_have_cuda
from .hub import cached_path, resolve_weights, weights_status
from .pool import POOL, file_bytes
from .processing import finish, postprocess, preprocess, run_stages, select_output

OnnxPrecision = Literal["auto", "fp32", "fp16", "quantized"]

# Measured with benchmarks/speed.py (2-core x86 CPU, onnxruntime 1.31): the
# dynamically quantised export (ConvInteger) is slower than fp32 and not
# within 1/255 of it; fp16 is no faster (ORT's CPU provider runs most of it in
# fp32 behind inserted casts). So fp32 is both the reference and the CPU default.
CPU_PRECISION = "fp32"
GPU_PRECISION = "fp16"


def clear_sessions() -> None:
    """Forget every ONNX Runtime session (they are made again on next use)."""
    POOL.clear("onnxruntime")


def loaded_sessions() -> list[tuple[str, tuple[str, ...], int]]:
    """(file, execution providers, threads) of each session loaded in this process."""
    return [held.key[1:] for held in POOL.held() if held.backend == "onnxruntime"]  # type: ignore[misc]


def default_threads() -> int:
    """The process's thread budget (rmbg.threads: RMBG_THREADS, else the CPU affinity and the
    cgroup's quota): a forward on the CPU takes them all, one forward at a time."""
    return usable_cores()


def execution_providers(device: str = "auto") -> tuple[str, ...]:
    """ONNX Runtime execution providers for "auto" | "cpu" | "cuda"."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        if "CUDAExecutionProvider" in available:
            return ("CUDAExecutionProvider", "CPUExecutionProvider")
        if device != "auto":
            raise ModelUnavailableError("device='cuda' needs onnxruntime-gpu with a CUDA GPU; none is available here.")
    return ("CPUExecutionProvider",)


def _ort_reason(exc: Exception) -> str:
    """The useful tail of an ORT load error, without its source location."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.split(" failed:", 1)[-1]  # drop "Load model from <path>"
    if "onnxruntime_src" in text and ") " in text:
        text = text.rsplit(") ", 1)[-1]  # drop "file.cc:123 Class::Method(args)"
    return text[:200]


def load_session(path: Path, providers: tuple[str, ...], threads: int) -> Any:
    """The shared InferenceSession for this file (created on first use)."""

    def load() -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between ops: on shared vCPUs (Spaces, a busy
        # laptop, several Gradio requests at once) spinning threads steal
        # the cores the work needs; measured 0.80 s -> 0.57 s for U2-Net-p.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelUnavailableError(f"{path.name} is not a usable ONNX model: {_ort_reason(exc)}") from None

    key = ("onnxruntime", str(path), tuple(providers), int(threads))
    return POOL.get(key, load, source=str(path), size=lambda _: file_bytes(path))


def check_io(session: Any, spec: ModelSpec, name: str) -> None:
    """Fail clearly when the graph's input/output names are not the spec's."""
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if spec.onnx_input not in inputs or spec.onnx_output not in outputs:
        raise ModelUnavailableError(
            f"{name} does not look like {spec.id}: expected input {spec.onnx_input!r} and output "
            f"{spec.onnx_output!r}, the graph has inputs {inputs} and outputs {outputs}."
        )


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """Where a provider's .onnx file comes from: `path()` may download,
    `status()` never touches the network."""

    path: Callable[[], Path]
    status: Callable[[], tuple[str, str]]
    label: str


class OnnxProvider:
    """An ONNX segmentation model behind the Provider protocol."""

    kind = "local"

    def __init__(
        self,
        spec: ModelSpec,
        source: WeightsSource,
        *,
        precision: str = "fp32",
        device: str = "auto",
        threads: int | None = None,
        engine: Engine = "onnxruntime",
        openvino: OpenVinoPath | None = None,
    ):
        """engine "openvino" or "auto" needs `openvino`: how OpenVINO runs this file and when "auto"
        takes it (rmbg.providers.local.engines)."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
        if engine == "openvino" and openvino is None:
            raise ValueError(f"no OpenVINO path for {spec.id!r}")
        self.spec = spec
        self.id = spec.id
        self.label = spec.label
        self._view = dataclasses.replace(spec, output_path=(0,))  # one named output asked for: run()'s element 0
        self._source = source
        self._precision = precision
        self._device = device
        self._threads = int(threads) if threads else default_threads()
        self._engine = engine
        self._openvino = openvino

    @functools.cached_property
    def engine(self) -> str:
        """ "openvino" where asked, or for "auto" on a CPU where OpenVINO is installed and runs this
        model faster (OpenVinoPath.preferred); else "onnxruntime". Decided once per provider: its
        settings are fixed when it is made, and a warm call asks about 15 times."""
        if self._engine != "auto":
            return self._engine
        if self._openvino is None or self._precision != "fp32" or not self._openvino.preferred():
            return "onnxruntime"
        if not may_have_cuda(self._device):
            return "openvino"  # decided without importing onnxruntime: a cold start need not load both
        try:
            on_cpu = execution_providers(self._device)[0] == "CPUExecutionProvider"
        except ImportError:  # no onnxruntime at all: OpenVINO reads the file alone
            on_cpu = True
        return "openvino" if on_cpu else "onnxruntime"

    @functools.cached_property
    def precision(self) -> str:
        """The precision it runs at: OpenVINO's on this CPU (bf16 or fp32) or ONNX Runtime's (once per provider)."""
        return self._openvino.precision() if self.engine == "openvino" and self._openvino else self._precision

    def __repr__(self) -> str:
        return f"OnnxProvider({self.id!r}, precision={self._precision!r}, device={self._device!r})"

    # -- Provider protocol -------------------------------------------------
    def options(self) -> Mapping[str, object]:
        return {
            "backend": "openvino" if self.engine == "openvino" else "onnx",
            "input_size": list(self.spec.input_size),
            "precision": self.precision,
            "weights": self._source.label,
        }

    def status(self) -> ProviderStatus:
        if importlib.util.find_spec("onnxruntime") is None and self.engine != "openvino":
            return ProviderStatus("unavailable", "needs the onnxruntime package (pip install onnxruntime)")
        state, message = self._source.status()
        if state == "ready" and self.engine == "openvino":  # which engine runs it (ONNX Runtime unless said)
            message += f", through OpenVINO {self.precision}"
        return ProviderStatus(state, message)  # type: ignore[arg-type]

    def estimate(self) -> Cost:
        return Cost.free("local compute; estimate after a run")

    def matte(self, image) -> Matte:
        meta = {
            "model": self.spec.repo_id or self.spec.id,
            "revision": self.spec.revision or self._source.label,
            "backend": "openvino" if self.engine == "openvino" else "onnx",
            "precision": self.precision,
        }
        self._loaded()  # loaded before the clock starts: seconds are the model's, not the load's
        return run_stages(self, image, meta, threads=self._threads if self.device == "cpu" else 0)

    def _loaded(self) -> Any:
        """The ONNX Runtime session, or OpenVINO's compiled model's infer for the same file."""
        if self.engine != "openvino" or self._openvino is None:
            return self.session()
        return self._compiled().infer

    @functools.cached_property
    def _weights(self) -> Path:  # found (or fetched) once: a provider's file is fixed when it is made
        return self._source.path()

    @functools.cached_property
    def _compiled(self) -> Callable[[], Any]:  # OpenVINO's loader, made once: each call takes the model from the pool
        assert self._openvino is not None  # asked for by _loaded only then
        return self._openvino.loader(self._weights, self._threads, self.precision)

    # -- stages (public so benchmarks can time them) ------------------------
    @property
    def device(self) -> str:
        if self.engine == "openvino":
            return "cpu"
        return "cuda" if self.session().get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def session(self) -> Any:
        """The loaded session (loaded on first use, once per process)."""
        try:
            providers = execution_providers(self._device)
        except ImportError:
            raise ModelUnavailableError(f"{self.id} needs the onnxruntime package: pip install onnxruntime") from None
        path = self._weights
        session = load_session(path, providers, self._threads)
        check_io(session, self.spec, path.name)
        return session

    def preprocess(self, image):
        return preprocess(image, self.spec)

    def forward(self, x):
        """Normalised float32 [1, 3, h, w] numpy -> probabilities [h, w] numpy."""
        if self.engine == "openvino":
            return finish(self._loaded()(x, self.spec.onnx_output)[0, 0], self.spec)  # holds the device itself
        session = self.session()
        feed = next(i for i in session.get_inputs() if i.name == self.spec.onnx_input)
        if feed.type == "tensor(float16)":  # fp16 exports may keep half-precision I/O
            x = x.astype("float16")
        on_cpu = session.get_providers()[0] == "CPUExecutionProvider"
        with POOL.forward(threads=self._threads if on_cpu else 0):
            raw = session.run([self.spec.onnx_output], {self.spec.onnx_input: x})
        return finish(select_output(raw, self._view), self.spec)

    def postprocess(self, pred, size):
        return postprocess(pred, self.spec, size)


def _resolved_precision(precision: str, device: str) -> str:
    if precision == "auto":
        return GPU_PRECISION if device.startswith("cuda") else CPU_PRECISION
    if precision not in RMBG_14.onnx_files:
        raise ValueError(f"ONNX precision must be auto, {', '.join(RMBG_14.onnx_files)}; got {precision!r}")
    return precision


def rmbg14_onnx(
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: OnnxPrecision = "auto",
    input_size: tuple[int, int] | None = None,
    token: str | None = None,
    threads: int | None = None,
) -> OnnxProvider:
    """RMBG-1.4 through BRIA's ONNX exports (onnx/model*.onnx, same Hub revision)
    or a local .onnx file. The graph has dynamic spatial dims, so input_size
    may be changed."""
    spec = (
        RMBG_14
        if input_size is None
        else dataclasses.replace(RMBG_14, input_size=(int(input_size[0]), int(input_size[1])))
    )
    wants_gpu = device.startswith("cuda")
    chosen = _resolved_precision(precision, "cuda" if wants_gpu else "cpu")
    hub_file = spec.onnx_files[chosen]
    hub_spec = dataclasses.replace(spec, filename=hub_file)
    label = str(weights) if weights is not None else f"{spec.revision}:{hub_file}"
    source = WeightsSource(
        path=lambda: resolve_weights(hub_spec, weights, token=token),
        status=lambda: weights_status(hub_spec, weights, token),
        label=label,
    )
    return OnnxProvider(spec, source, precision=chosen, device=device, threads=threads)


def _gpu_present(device: str) -> bool:
    """Whether the torch path would run on a GPU, without importing torch on
    a plain CPU machine (importing it costs seconds and hundreds of MB)."""
    if device == "cpu":
        return False
    if device != "auto":
        return True  # "cuda", "cuda:1", "mps": the caller asked for torch's device
    if "torch" not in sys.modules:
        apple = sys.platform == "darwin" and platform.machine() == "arm64"
        nvidia = os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None
        if not (apple or nvidia):
            return False
    try:
        from .device import pick_device

        return pick_device("auto") != "cpu"
    except ImportError:
        return False


def choose_rmbg14_backend(
    backend: str, *, weights: str | os.PathLike | None, device: str, precision: str
) -> Literal["torch", "onnx"]:
    """Which implementation rmbg-1.4 uses. backend="auto" picks, in order:
    the one the precision or weights file implies ("quantized" or a .onnx
    file: ONNX; "bf16" or a .safetensors file: torch); torch on a GPU; on CPU
    ONNX Runtime (the fastest CPU path measured, see benchmarks/speed.py),
    unless onnxruntime is missing or only the safetensors file is cached (no
    second 176 MB download)."""
    if backend in ("torch", "onnx"):
        return backend  # type: ignore[return-value]
    if backend != "auto":
        raise ValueError(f"backend must be 'auto', 'torch' or 'onnx'; got {backend!r}")
    if precision == "quantized":
        return "onnx"
    if precision == "bf16":
        return "torch"
    if weights is not None:
        return "onnx" if str(weights).lower().endswith(".onnx") else "torch"
    if importlib.util.find_spec("onnxruntime") is None or _gpu_present(device):
        return "torch"
    onnx_file = RMBG_14.onnx_files[CPU_PRECISION if precision == "auto" else precision]
    if cached_path(RMBG_14) is not None and cached_path(RMBG_14, onnx_file) is None:
        return "torch"
    return "onnx"
