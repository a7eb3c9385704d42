"""The local device: which one to use, at what precision, and the one lock
that lets a single local model run on it at a time.

Two concurrent forwards on one GPU (or two CPU cores) only slow each other
down and double the memory, so every local matte (the app's Remove and
Compare tabs, rmbg.compare, the batch) runs under LOCAL_DEVICE_LOCK. It is
re-entrant so a caller that already holds it can call into code that takes it.
"""

from __future__ import annotations

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


def pick_dtype(precision: Precision, device: str) -> Any:
    """fp32 on CPU; on CUDA the default is fp16 (BiRefNet and IS-Net both
    run in half precision upstream); fp32/bf16 on request."""
    import torch

    if precision == "auto":
        precision = "fp16" if device.startswith("cuda") else "fp32"
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
