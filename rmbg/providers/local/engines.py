"""Which engine runs a local ONNX model (U2-Net-p, IS-Net general) on this machine, at which precision.

Both engines read the same ONNX file: ONNX Runtime (exact fp32, the reference) and,
where the openvino extra is installed, OpenVINO. engine="auto" takes OpenVINO only
where it was measured faster than ONNX Runtime's fp32 with its mattes inside the
precision gate (docs/cpu.md): U2-Net-p at exact fp32 on any CPU, IS-Net general in
bf16 on a CPU with bf16 units (0.24x ONNX Runtime's time on trained weights; its
OpenVINO fp32 is no faster, so without bf16 units it stays on ONNX Runtime).

The bf16 units are read from the kernel's CPU flags (rmbg.providers.local.cpuinfo):
AVX512-BF16 or AMX, the units OpenVINO compiles bf16 for, less any that an
ONEDNN_MAX_CPU_ISA cap hides. So the choice imports neither engine: a cold start
loads only the one it runs. OpenVINO's own list is still asked when it compiles,
and a bf16 model on a CPU without the units is refused there, never run as fp32
under a bf16 label (rmbg.providers.local.openvino_backend).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .cpuinfo import this_cpu
from .device import isa_cap_allows

Engine = Literal["auto", "onnxruntime", "openvino"]
ENGINES: tuple[Engine, ...] = ("auto", "onnxruntime", "openvino")
BF16_UNITS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 units (AVX512-BF16 or AMX) that no instruction-set cap hides."""
    flags = this_cpu().flags
    return any(unit in flags and isa_cap_allows(unit) for unit in BF16_UNITS)


@dataclass(frozen=True)
class OpenVinoPath:
    """How a model runs through OpenVINO.

    loader(onnx_file, threads, precision) -> load() -> OpenVINO's compiled model, whose infer(x, output_name)
    runs it (from the model pool: loaded by the first call; a provider keeps the loader, not the model);
    bf16: it runs in bf16 where the CPU has bf16 units, else in exact fp32;
    auto: the precisions at which engine="auto" takes OpenVINO rather than ONNX Runtime."""

    loader: Callable[[Path, int, str], Callable[[], Any]]
    bf16: bool = False
    auto: tuple[str, ...] = ("fp32",)

    def precision(self) -> str:
        """The precision OpenVINO runs the model at on this CPU."""
        return "bf16" if self.bf16 and cpu_has_bf16() else "fp32"

    def preferred(self) -> bool:
        """Whether engine="auto" takes OpenVINO on a CPU here: installed, and at a precision in `auto`."""
        return self.precision() in self.auto and importlib.util.find_spec("openvino") is not None


def may_have_cuda(device: str) -> bool:
    """False when ONNX Runtime's CUDA provider cannot be what `device` gets: "cpu", or "auto" on a
    machine without an NVIDIA driver (then nothing needs importing to know it)."""
    if device != "auto":
        return device != "cpu"
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None
