"""rmbg.providers.local.cpuinfo: the CPU's name carries its generation, and what speed is keyed by
(the calibration cache) tells apart two CPUs whose model names and flags are the same."""

from __future__ import annotations

import pytest

from rmbg.providers.local import calibration, cpuinfo

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 avx512_vnni
processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 avx512_vnni
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics sve
CPU implementer\t: 0x41
"""


def test_an_x86_name_carries_family_and_model_and_the_flags_are_read():
    cpu = cpuinfo.parse(ZEN4)
    assert cpu.name == "AMD EPYC (family 25, model 17)"
    assert {"avx512_bf16", "avx512_vnni", "avx2"} <= cpu.flags and "amx_bf16" not in cpu.flags


def test_an_arm_cpu_has_its_features_and_the_platforms_name():
    cpu = cpuinfo.parse(ARM)
    assert {"asimd", "sve"} <= cpu.flags
    assert cpu.name and "family" not in cpu.name


@pytest.fixture
def as_cpu(monkeypatch):
    def use(text: str) -> None:
        monkeypatch.setattr(calibration, "this_cpu", lambda: cpuinfo.parse(text))

    return use


def test_the_calibration_key_tells_two_generations_with_one_name_apart(as_cpu):
    as_cpu(ZEN4)
    zen4 = calibration.machine_key()
    assert calibration.machine()["cpu"] == "AMD EPYC (family 25, model 17)"
    as_cpu(ZEN4.replace("model\t\t: 17", "model\t\t: 1"))  # family 25 model 1: a Zen 3 EPYC
    assert calibration.machine_key() != zen4
    as_cpu(ZEN4)
    assert calibration.machine_key() == zen4
