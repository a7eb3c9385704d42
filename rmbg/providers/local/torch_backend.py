"""Local models run in-process with PyTorch (our own networks).

RMBG-1.4, RMBG-2.0 and BiRefNet's open family share this one path; they
differ only in their ModelSpec and network builder. Networks load lazily, once per (model,
weights, device, precision), into the model pool (rmbg.providers.local.pool),
and are shared by every provider object and every thread; each forward holds
the pool's device lock, and loads and forwards run on the process's one
PyTorch thread (torch_thread: a second thread's OpenMP team slows every op).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from ...models.specs import BIREFNET_VARIANTS, RMBG_14, RMBG_20, dynamic_input_size
from ...threads import calm_openmp
from ...types import Cost, Matte, ModelSpec
from ..base import ProviderStatus
from . import cuda_graph
from .device import (
    Precision,
    cpu_bf16_units,
    pick_device,
    pick_dtype,
    resolve_precision,
    torch_cpu_threads,
    tune_cpu_allocator,
)
from .hub import resolve_weights, weights_status
from .pool import POOL, tensor_bytes
from .processing import finish, postprocess, preprocess, run_stages, select_output
from .torch_load import load_network
from .torch_thread import torch_call

calm_openmp()  # before this module's models load torch (rmbg.threads)


def clear_loaded_models() -> None:
    """Forget every loaded PyTorch network (frees its memory once nothing else holds it)."""
    POOL.clear("torch")


def revision_of(path: os.PathLike | str) -> str:
    """The commit a Hugging Face cache file belongs to (.../snapshots/<commit>/<file>), or ""."""
    parts = os.path.normpath(str(path)).split(os.sep)
    if len(parts) >= 3 and parts[-3] == "snapshots":
        return parts[-2]
    return ""


class LocalProvider:
    """A PyTorch network behind the Provider protocol."""

    kind = "local"

    def __init__(
        self,
        spec: ModelSpec,
        builder: Callable[[], Any],
        *,
        weights: str | os.PathLike | None = None,
        device: str = "auto",
        precision: Precision = "auto",
        input_size: tuple[int, int] | None = None,
        token: str | None = None,
        slow_on_cpu: bool = False,
        dynamic: bool = False,
        cpu_bf16: bool = False,
    ):
        if input_size is not None:
            spec = dataclasses.replace(spec, input_size=(int(input_size[0]), int(input_size[1])))
        self.spec = spec
        self.id = spec.id
        self.label = spec.label
        self._builder = builder
        self._weights = weights
        self._device = device
        self._precision = precision
        self._token = token
        self._slow_on_cpu = slow_on_cpu
        self._cpu_bf16 = cpu_bf16
        self._dynamic = dynamic and input_size is None  # an explicit size wins

    def __repr__(self) -> str:
        return f"LocalProvider({self.id!r}, device={self._device!r}, precision={self._precision!r})"

    # -- Provider protocol -------------------------------------------------
    def options(self) -> Mapping[str, object]:
        return {
            "backend": "torch",
            "input_size": "dynamic" if self._dynamic else list(self.spec.input_size),
            "precision": self._precision,
            "weights": str(self._weights) if self._weights is not None else self.spec.revision,
        }

    def status(self) -> ProviderStatus:
        state, message = weights_status(self.spec, self._weights, self._token)
        slow = False
        if self._slow_on_cpu and self._device in ("auto", "cpu"):
            try:
                slow = pick_device(self._device) == "cpu"
            except ImportError:
                slow = True
            if slow:
                message += "; no GPU: slow (seconds to tens of seconds per image)"
        return ProviderStatus(state, message, slow=slow)  # type: ignore[arg-type]

    def estimate(self) -> Cost:
        return Cost.free("local compute; estimate after a run")

    def matte(self, image) -> Matte:
        path = self.weights_path()
        meta = {
            "model": self.spec.repo_id or self.spec.id,
            # the commit actually used: the pinned one, or what "main" resolved to
            "revision": revision_of(path) or self.spec.revision,
            "backend": "torch",
            "precision": self.precision_used(),
        }
        if self.device == "cpu":
            meta["cpu_bf16_units"] = ",".join(cpu_bf16_units()) or "none"
            meta["cpu_allocator"] = tune_cpu_allocator()
        if self._weights is not None:
            meta["weights"] = os.path.basename(str(self._weights))
        if self._dynamic:
            meta["input_size"] = "x".join(map(str, dynamic_input_size(*image.size)[::-1]))
        self.network()  # loaded before the clock starts: seconds are the model's, not the load's
        return run_stages(self, image, meta, threads=self._cpu_threads())

    # -- stages (public so benchmarks can time them) ------------------------
    @property
    def device(self) -> str:
        return pick_device(self._device)

    def weights_path(self):
        """The weights file (downloaded into the HF cache on first use)."""
        return resolve_weights(self.spec, self._weights, token=self._token)

    def precision_used(self) -> str:
        """What the forward runs in: "fp32", "fp16", "bf16" (weights in bf16) or
        "bf16-autocast" (CPU: fp32 weights, LayerNorm, softmax and the residual
        stream; bf16 convolutions and matrix products).

        On a CPU "auto" is bf16-autocast when the CPU has bf16 units
        (cpu_bf16_units) and this model's matte stays within the agreement
        gate in bf16 (cpu_bf16: CPU_BF16_BACKBONES, decided by rmbg.eval.gate
        in benchmarks/speed_cpu.py);
        otherwise exact fp32. On CPU "bf16" always means autocast, and is
        refused where the CPU has no bf16 units (resolve_precision).
        """
        device = self.device
        used = resolve_precision(self._precision, device)
        if device == "cpu" and (used == "bf16" or (self._precision == "auto" and self._cpu_bf16 and cpu_bf16_units())):
            return "bf16-autocast"
        return used

    def network(self):
        """The loaded network (loads it on first use, once per process)."""
        device = self.device
        used = self.precision_used()
        dtype = pick_dtype("fp32" if used == "bf16-autocast" else used, device)
        path = self.weights_path()

        def load() -> Any:
            if device == "cpu":
                tune_cpu_allocator()
                torch_cpu_threads()
            bf16 = used == "bf16-autocast"
            return torch_call(functools.partial(load_network, self._builder, path, device, dtype, matmul_bf16=bf16))

        return POOL.get(("torch", self.spec.id, str(path), device, used), load, source=str(path), size=tensor_bytes)

    def preprocess(self, image):
        spec = self.spec
        if self._dynamic:
            spec = dataclasses.replace(spec, input_size=dynamic_input_size(*image.size))
        return preprocess(image, spec)

    def forward(self, x):
        """Normalised float32 [1, 3, h, w] numpy -> probabilities [h, w] numpy."""
        import torch

        net = self.network()
        param = next(net.parameters())
        autocast = self.precision_used() == "bf16-autocast"
        call = net
        # a graph per input shape: not for a model whose input follows each image's size (a CPU never asks)
        if not self._dynamic and cuda_graph.enabled(param.device.type):
            call = functools.partial(cuda_graph.forward, net)

        def run() -> Any:  # on the process's PyTorch thread (torch_thread), where the modes are entered
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                tensor = torch.from_numpy(x).to(device=param.device, dtype=param.dtype)
                return select_output(call(tensor), self.spec).float().cpu().numpy()

        with POOL.forward():
            pred = torch_call(run)
        return finish(pred, self.spec)

    def postprocess(self, pred, size):
        return postprocess(pred, self.spec, size)

    def _cpu_threads(self) -> int:
        """The threads a forward on the CPU runs on (torch's, set to the budget), 0 on a GPU."""
        import torch

        return torch.get_num_threads() if self.device == "cpu" else 0


# Backbones whose BiRefNet matte passes the precision gate under CPU bf16
# autocast (rmbg.eval.gate: no further from exact fp32 than fp32 is from itself
# on an input moved by +-1 grey level; docs/cpu.md). Swin-L passed the earlier,
# fixed gate (mean 0.66 grey levels, worst IoU 0.9957). Swin-T (BiRefNet_lite)
# passes on the whole 30-frame DAVIS sample (`python benchmarks/speed_cpu.py
# --models birefnet-lite --frames 30`, benchmarks/results/speed_cpu.json); on 3
# frames it had missed narrowly, within the noise of so small a sample.
CPU_BF16_BACKBONES = frozenset({"swin_l", "swin_t"})


def _build_isnet():
    from ...models.isnet import build_isnet

    return build_isnet()


def _birefnet(
    spec: ModelSpec, backbone: str, patch_order: str = "column", dynamic: bool = False, **load: Any
) -> LocalProvider:
    """A BiRefNet network (RMBG-2.0's, or one of BiRefNet's own models) as a LocalProvider: slow on a CPU
    (measured on 2 cores at 1024²: Swin-T ~4.5 s (fp32), Swin-L ~10 s (bf16) to 17 s (fp32)), with bf16
    autocast there where its backbone passed the gate (CPU_BF16_BACKBONES). load: LocalProvider's
    weights, device, precision, input_size and token."""

    def build() -> Any:
        from ...models.birefnet import build_birefnet

        return build_birefnet(backbone=backbone, patch_order=patch_order)

    return LocalProvider(
        spec, build, slow_on_cpu=True, dynamic=dynamic, cpu_bf16=backbone in CPU_BF16_BACKBONES, **load
    )


def rmbg14(
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    input_size: tuple[int, int] | None = None,
    token: str | None = None,
    backend: str = "auto",
    threads: int | None = None,
):
    """BRIA RMBG-1.4 (IS-Net), from the pinned Hub revision or a local file.

    backend: "torch" (our network, model.safetensors), "onnx" (BRIA's
    onnx/model*.onnx through ONNX Runtime; precision "fp32" | "fp16" |
    "quantized"), or "auto": ONNX on CPU, torch on a GPU (see
    rmbg.providers.local.onnx_backend.choose_rmbg14_backend). threads: ONNX only.
    """
    from .onnx_backend import choose_rmbg14_backend, rmbg14_onnx

    if choose_rmbg14_backend(backend, weights=weights, device=device, precision=precision) == "onnx":
        return rmbg14_onnx(
            weights=weights,
            device=device,
            precision=precision,  # type: ignore[arg-type]  # checked there
            input_size=input_size,
            token=token,
            threads=threads,
        )
    return LocalProvider(
        RMBG_14, _build_isnet, weights=weights, device=device, precision=precision, input_size=input_size, token=token
    )


def rmbg20(
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    input_size: tuple[int, int] | None = None,
    token: str | None = None,
) -> LocalProvider:
    """BRIA RMBG-2.0 (BiRefNet, Swin-L). On CPU: bf16 autocast where the CPU has bf16 units (precision_used)."""
    return _birefnet(
        RMBG_20, "swin_l", weights=weights, device=device, precision=precision, input_size=input_size, token=token
    )


def birefnet(
    model_id: str,
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    input_size: tuple[int, int] | None = None,
    token: str | None = None,
) -> LocalProvider:
    """One of BiRefNet's open models (MIT, ungated; rmbg.models.specs.BIREFNET_VARIANTS)
    on the RMBG-2.0 network with its backbone (Swin-L, or Swin-T for birefnet-lite).

    birefnet-dynamic runs each image at its own size (dynamic_input_size)
    unless input_size is given. Every one takes seconds to tens of seconds on a CPU.
    """
    variant = BIREFNET_VARIANTS[model_id]
    return _birefnet(
        variant.spec, variant.backbone, variant.patch_order, variant.dynamic,
        weights=weights, device=device, precision=precision, input_size=input_size, token=token,
    )  # fmt: skip
