"""The CPU this process runs on, as the kernel describes it: a name and the flags.

On x86 a model name can be as vague as "AMD EPYC" for CPUs of several
generations (Zen 3, 4 and 5 differ in speed and in their vector units), so
the name carries the family and model numbers too ("AMD EPYC (family 25,
model 17)" is a Zen 4). What speed depends on is keyed by this name: the
calibration cache (rmbg.providers.local.calibration) and the benchmarks'
results files.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cpu:
    """name: the model name, with "(family F, model M)" where the kernel gives them;
    flags: the instruction-set flags ("avx2", "avx512_bf16", "amx_bf16", ...)."""

    name: str
    flags: frozenset[str]


def parse(text: str) -> Cpu:
    """The first processor's name and the flags of /proc/cpuinfo's text (x86 or Arm)."""
    name, flags, ids = "", set[str](), dict[str, str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("cpu family", "model") and key not in ids:
            ids[key] = value.strip()
        elif key in ("flags", "Features"):
            flags |= set(value.split())
    name = name or platform.processor() or platform.machine()
    if len(ids) == 2:
        name += f" (family {ids['cpu family']}, model {ids['model']})"
    return Cpu(name, frozenset(flags))


@functools.lru_cache(maxsize=1)
def this_cpu() -> Cpu:
    """This machine's CPU (Linux); elsewhere the platform's name and no flags."""
    try:
        return parse(Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace"))
    except OSError:
        return Cpu(platform.processor() or platform.machine(), frozenset())
