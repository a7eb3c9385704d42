"""A CPU of the test's choosing for the engine's choice: rmbg.providers.local.engines reads the CPU's
flags through its own name `this_cpu` (rmbg.providers.local.cpuinfo), so a test swaps that one name."""

from __future__ import annotations

import pytest

from rmbg.providers.local import engines
from rmbg.providers.local.cpuinfo import Cpu

AVX2 = ("avx2", "fma")  # a Zen 3 or Haswell-to-Ice-Lake class CPU: no bf16 units
ZEN4 = (*AVX2, "avx512f", "avx512_vnni", "avx512_bf16")
SAPPHIRE_RAPIDS = (*ZEN4, "amx_bf16", "amx_int8")


def use_cpu(monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...]) -> None:
    """The engine's choice sees a CPU with these flags (and no instruction-set cap)."""
    monkeypatch.setattr(engines, "this_cpu", lambda: Cpu("a test CPU", frozenset(flags)))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
