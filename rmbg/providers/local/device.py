"""The local device: which one to use, at what precision, and the one lock
that lets a single local model run on it at a time.

Two concurrent forwards on one GPU (or two CPU cores) only slow each other
down and double the memory, so every local matte (the app's Remove and
Compare tabs, rmbg.compare, the batch) runs under LOCAL_DEVICE_LOCK. It is
re-entrant so a caller that already holds it can call into code that takes it.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Literal

Precision = Literal["auto", "fp32", "fp16", "bf16"]

LOCAL_DEVICE_LOCK = threading.RLock()


def pick_device(device: str = "auto") -> str:
    """"auto" -> cuda, then mps, then cpu; anything else is returned as given."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(precision: str, device: str) -> str:
    """"auto" -> fp16 on CUDA (BiRefNet and IS-Net both run in half precision
    upstream), fp32 elsewhere; an explicit precision is kept."""
    if precision == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    return precision


def pick_dtype(precision: str, device: str) -> Any:
    """The torch dtype of resolve_precision(precision, device)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[resolve_precision(precision, device)]


@functools.lru_cache(maxsize=1)
def cpu_bf16_units() -> tuple[str, ...]:
    """The bf16 matrix units of this CPU, detected at run time: "amx_bf16"
    (Intel AMX tiles), "avx512_bf16" (AVX512-BF16 dot products), both or none.
    oneDNN runs bf16 convolutions and matrix products on them; without them
    bf16 is emulated and slower than fp32."""
    import torch

    cpu = getattr(torch, "cpu", None)
    found = []
    probes = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for name, probe in probes:
        check = getattr(cpu, probe, None)
        if check is not None:
            if check():
                found.append(name)
            continue
        try:  # an older torch without the probe: the kernel's flags (Linux)
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
                flags = info.read().split()
        except OSError:
            flags = []
        if name in flags:
            found.append(name)
    return tuple(found)
