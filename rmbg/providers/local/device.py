"""The local device: which one to use, and at what precision.

One forward at a time runs on it: every local provider takes the model
pool's device lock around its own network call (rmbg.providers.local.pool,
POOL.forward()), the only place that takes it; no caller needs to.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import platform
from typing import Any, Literal

from .cpuinfo import this_cpu

Precision = Literal["auto", "fp32", "fp16", "bf16"]

_LOG = logging.getLogger(__name__)


# What a GPU torch could use leaves on the machine: NVIDIA's driver, AMD's ROCm, WSL's GPU bridge.
GPU_TRACES = ("/proc/driver/nvidia", "/dev/nvidia*", "/dev/kfd", "/dev/dxg")


def on_zerogpu() -> bool:
    """Whether this process is a ZeroGPU Space's (its GPU lent per call, through torch)."""
    return bool(os.environ.get("SPACES_ZERO_GPU"))


@functools.cache
def no_accelerator_here() -> bool:
    """Nothing here a GPU could be reached through: no GPU driver's trace (GPU_TRACES), not Apple
    silicon (MPS), not a ZeroGPU Space (its GPU is lent per call, through torch). Then "auto" is the
    CPU without importing torch: 1.5-2 s and its memory, at the start of an app that runs only ONNX
    models on a CPU."""
    if on_zerogpu() or (platform.system() == "Darwin" and platform.machine() == "arm64"):
        return False
    return not any(glob.glob(trace) for trace in GPU_TRACES)


def pick_device(device: str = "auto") -> str:
    """ "auto" -> cuda, then mps, then cpu; anything else is returned as given."""
    if device != "auto":
        return device
    if no_accelerator_here():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(precision: str, device: str) -> str:
    """ "auto" -> fp16 on CUDA (BiRefNet and IS-Net both run in half precision
    upstream), fp32 elsewhere; an explicit precision is kept, except "bf16" on
    a CPU without bf16 units (cpu_bf16_units), which is refused
    (InvalidRequestError): there PyTorch runs bf16 convolutions through its
    slow reference kernel, far slower than fp32 (RMBG-2.0's bf16 benchmark
    worker on an AVX2 EPYC had not finished one forward after 16 minutes;
    fp32 takes about 27 s)."""
    if precision == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if precision == "bf16" and device == "cpu" and not cpu_bf16_units():
        from ...errors import InvalidRequestError

        raise InvalidRequestError(
            "precision='bf16' needs a CPU with bf16 units (AVX512-BF16 or AMX) and this one has none: "
            "bf16 would be emulated, many times slower than fp32. Use precision='auto' (bf16 only where "
            "the CPU has the units) or 'fp32'."
        )
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
    bf16 is emulated and slower than fp32. A cap on oneDNN's instruction
    sets (ONEDNN_MAX_CPU_ISA, isa_cap_allows) hides the units it excludes."""
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
        if name in this_cpu().flags:  # an older torch without the probe: the kernel's flags (Linux)
            found.append(name)
    return tuple(name for name in found if isa_cap_allows(name))


# oneDNN's instruction-set levels, lowest first (ONEDNN_MAX_CPU_ISA's values), and the
# first level that uses each bf16 unit.
_ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)
_FIRST_WITH = {"avx512_bf16": "AVX512_CORE_BF16", "amx_bf16": "AVX512_CORE_AMX"}


def isa_cap_allows(unit: str) -> bool:
    """Whether ONEDNN_MAX_CPU_ISA (if set) lets oneDNN use a bf16 unit: a run capped at
    AVX2 on an AMX machine is an AVX2-class run (benchmarks/speed_cpu.py --isa-cap)."""
    import os

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if not cap or cap in ("ALL", "DEFAULT") or cap not in _ONEDNN_ISAS:
        return True
    return _ONEDNN_ISAS.index(cap) >= _ONEDNN_ISAS.index(_FIRST_WITH[unit])


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


@functools.lru_cache(maxsize=1)
def tune_cpu_allocator() -> str:
    """Have the C allocator keep freed memory for the next forward; returns
    what is in effect: "glibc-reuse" or "system".

    A CPU forward allocates and frees activations of tens of MB. glibc
    serves big blocks with a fresh mmap and unmaps them on free, so each
    forward pays the kernel to fault in and zero every page again (reuse takes
    4-9 % off RMBG-2.0's and BiRefNet_lite's forward on 2 AVX2 cores in
    `benchmarks/speed_birefnet.py`). With mmap off (M_MMAP_MAX 0),
    top-of-heap trimming only past 2 GiB (M_TRIM_THRESHOLD) and one arena for
    all threads (M_ARENA_MAX 1, so the app's worker threads share it), freed
    blocks are reused: resident memory stays at the forward's high-water mark
    instead of being handed back and faulted in again. The price is that
    high-water mark, and fragmentation when the live blocks are big: before
    the networks released their big temporaries early, RMBG-2.0's fp32 peak
    was 2987 MiB with reuse against 2745 without; since, 2218 against 2168
    MiB (the README's AVX2 tables).

    Which (cpu_allocator_choice): RMBG_CPU_ALLOCATOR "reuse" or "system"
    forces either; unset (or "auto") is reuse. Always "system" where the C
    library is not glibc.

    Process-wide and once per process (setting the same values twice, should
    two threads race here, changes nothing): called by the local torch
    provider before it loads a network on the CPU.
    """
    return _apply_allocator_settings()


@functools.lru_cache(maxsize=1)
def torch_cpu_threads() -> int:
    """Have torch's CPU kernels run on the process's thread budget (rmbg.threads), once per
    process, and return it. torch sizes its pool from the machine (a container's quota is
    not read), and its inter-op pool would add as many again: our networks run one op after
    another, so one inter-op thread is enough. Called by the local torch providers before
    they load a network on the CPU; their forwards take torch.get_num_threads() threads from
    the budget."""
    import torch

    from ...threads import usable_cores

    threads = usable_cores()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as exc:  # torch refuses once its inter-op pool has started: it keeps its size
        _LOG.debug("torch's inter-op threads left as they are: %s", exc)
    return threads


def cpu_allocator_choice() -> str:
    """What tune_cpu_allocator does in this process: "reuse" or "system"
    (RMBG_CPU_ALLOCATOR; unset or "auto" is reuse; "system" where the C
    library is not glibc). Sets nothing."""
    import platform

    from ...settings import current

    choice = current().choice("RMBG_CPU_ALLOCATOR", ("auto", "reuse", "system"), "auto")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "system"
    return "reuse" if choice == "auto" else choice


def _apply_allocator_settings() -> str:
    import ctypes

    if cpu_allocator_choice() == "system":
        return "system"
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return "system"
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_ARENA_MAX, 1))
    if not all(mallopt(param, value) == 1 for param, value in settings):
        return "system"
    return "glibc-reuse"
