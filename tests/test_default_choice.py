"""The default without an account on a CPU: the best model by published quality
that is at hand and answers a 1 MP photo within 3 s here, from a calibration
measured once per machine and cached on disk."""

from __future__ import annotations

import hashlib
import json

import pytest

import rmbg
from rmbg.defaults import default_provider
from rmbg.providers.local import calibration, isnet_general
from tests.support.cpus import AVX2, SAPPHIRE_RAPIDS, use_cpu
from tests.support.models import tiny_isnet_graph

LITE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cpu_cache(tmp_path, monkeypatch):
    """A CPU without bf16 units (IS-Net general on ONNX Runtime fp32) and a calibration cache of its own."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rmbg.defaults, "on_gpu", lambda: False)
    use_cpu(monkeypatch, AVX2)
    return tmp_path


def lite_at_hand(hf_cache) -> None:
    hf_cache.add("ZhengPeng7/BiRefNet_lite", LITE_COMMIT, "model.safetensors", b"stand-in")  # status reads no bytes


def isnet_at_hand(cache, monkeypatch) -> None:
    """A cached isnet-general file whose SHA-256 is the configured mirror's."""
    payload = tiny_isnet_graph()
    (cache / isnet_general.FILE).write_bytes(payload)
    monkeypatch.setenv(isnet_general.ENV_URL, "http://127.0.0.1:9/never-fetched")
    monkeypatch.setenv(isnet_general.ENV_SHA256, hashlib.sha256(payload).hexdigest())


def measured(model_id: str, seconds: float) -> None:
    calibration.store(model_id, calibration.config_of(model_id), seconds)


@pytest.mark.uses("onnxruntime")  # IS-Net general's status
def test_nothing_better_at_hand_gives_u2netp_without_measuring(cpu_cache):
    chosen, reason = default_provider()  # the suite is offline: no other weights can be had
    assert chosen == "u2netp"
    assert reason.startswith("Using U2-Net-p (ungated, runs offline) because no better model answers within 3 s")
    assert "BiRefNet lite, Swin-T (MIT, local): ZhengPeng7/BiRefNet_lite is not on this machine" in reason
    assert "IS-Net general use (DIS, ungated, Apache-2.0): isnet-general-use.onnx not cached" in reason
    assert not (cpu_cache / calibration.FILE).exists()  # nothing was measured


def test_birefnet_lite_when_it_answers_within_the_budget(cpu_cache, hf_cache, monkeypatch):
    lite_at_hand(hf_cache)
    isnet_at_hand(cpu_cache, monkeypatch)
    measured("birefnet-lite", 2.4)
    chosen, reason = default_provider()
    assert chosen == "birefnet-lite"
    assert "within 3 s on this CPU (2.4 s measured here; weights cached)" in reason


def test_isnet_general_when_birefnet_lite_is_too_slow(cpu_cache, hf_cache, monkeypatch):
    lite_at_hand(hf_cache)
    isnet_at_hand(cpu_cache, monkeypatch)
    measured("birefnet-lite", 5.1)
    measured("isnet-general", 1.3)
    reason = (
        "IS-Net general use (DIS, ungated, Apache-2.0): the best model by published quality that answers a "
        "1 MP photo within 3 s on this CPU (1.3 s measured here; local weights isnet-general-use.onnx)"
    )
    assert default_provider() == ("isnet-general", reason)


@pytest.mark.uses("openvino")
def test_on_a_cpu_with_bf16_units_the_reason_names_openvino_bf16_and_its_own_measurement(
    cpu_cache, hf_cache, monkeypatch
):
    """IS-Net general's default engine there is OpenVINO bf16: its calibration is kept under that
    configuration (a measurement on ONNX Runtime is not reused), and the reason says what runs."""
    lite_at_hand(hf_cache)
    isnet_at_hand(cpu_cache, monkeypatch)
    measured("birefnet-lite", 5.1)
    calibration.store("isnet-general", "onnxruntime fp32", 1.3)
    use_cpu(monkeypatch, SAPPHIRE_RAPIDS)
    assert calibration.config_of("isnet-general") == "openvino bf16"
    assert calibration.cached("isnet-general", "openvino bf16") is None
    measured("isnet-general", 0.4)
    chosen, reason = default_provider()
    assert chosen == "isnet-general"
    assert reason.endswith("(0.4 s measured here; local weights isnet-general-use.onnx, through OpenVINO bf16)")


@pytest.mark.uses("openvino")
def test_rmbg14_shares_isnet_generals_timing_only_while_both_run_onnx_runtime(cpu_cache, monkeypatch):
    """One network: RMBG-1.4 (ONNX Runtime fp32 on a CPU) is timed by IS-Net general's measurement
    while that runs on the same engine; where IS-Net general runs OpenVINO bf16, RMBG-1.4 has its own."""
    measured("isnet-general", 1.5)
    assert rmbg.defaults._cpu_seconds("rmbg-1.4") == 1.5  # no measurement of its own: nothing stored for it
    assert calibration.cached("rmbg-1.4", "onnxruntime fp32") is None
    use_cpu(monkeypatch, SAPPHIRE_RAPIDS)
    measured("isnet-general", 0.4)
    calibration.store("rmbg-1.4", "onnxruntime fp32", 1.6)
    assert calibration.config_of("rmbg-1.4") == "onnxruntime fp32"
    assert rmbg.defaults._cpu_seconds("rmbg-1.4") == 1.6
    assert rmbg.defaults._cpu_seconds("isnet-general") == 0.4


def test_u2netp_only_when_every_better_model_is_too_slow(cpu_cache, hf_cache, monkeypatch):
    lite_at_hand(hf_cache)
    isnet_at_hand(cpu_cache, monkeypatch)
    measured("birefnet-lite", 7.9)
    measured("isnet-general", 3.2)
    chosen, reason = default_provider()
    assert chosen == "u2netp"
    assert "BiRefNet lite, Swin-T (MIT, local): 7.9 s for a 1 MP photo on this CPU, over 3 s" in reason
    assert "IS-Net general use (DIS, ungated, Apache-2.0): 3.2 s for a 1 MP photo on this CPU, over 3 s" in reason


def test_a_measurement_is_kept_per_machine_and_configuration(cpu_cache):
    measured("isnet-general", 1.5)
    data = json.loads((cpu_cache / calibration.FILE).read_text())
    entry = data[calibration.machine_key()]
    assert entry["machine"]["cpu"] and entry["machine"]["torch"] and entry["machine"]["onnxruntime"]
    assert entry["seconds"]["isnet-general"]["s"] == 1.5
    assert calibration.cached("isnet-general", "onnxruntime fp32") == 1.5
    assert calibration.cached("isnet-general", "openvino int8") is None  # another engine measures again


def test_an_instruction_set_cap_is_another_machine(cpu_cache, monkeypatch):
    """Under ONEDNN_MAX_CPU_ISA (an AVX2-class run on a newer CPU) the flags read the same
    but the speed does not: a measurement taken without the cap is not reused."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    measured("isnet-general", 1.5)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert calibration.machine()["isa_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert calibration.cached("isnet-general", "onnxruntime fp32") is None


@pytest.mark.uses("onnx", "onnxruntime")  # a stand-in IS-Net run
@pytest.mark.slow  # the CPU calibration itself, stand-in models timed: 80-120 s on 2 cores
def test_calibration_measures_once_drops_its_stand_in_from_the_model_pool_then_reads_the_cache(
    cpu_cache, monkeypatch, u2netp_path
):
    """One measurement (its stand-in's export and 1 MP cut-outs are most of this test's time), stored and
    read back without measuring again; what it loaded (from its temporary folder) leaves the pool when it
    is measured, and a model loaded before it stays, asked for through the pool's public API."""
    from rmbg.providers.local.pool import POOL

    monkeypatch.setattr(calibration, "RUNS", 1)  # the median's own test is below; one run keeps this one short
    rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime").session()
    before = POOL.held()
    during: list[list[str]] = []
    stand_in = calibration.stand_in

    def watched(model_id, folder):
        provider = stand_in(model_id, folder)
        matte = provider.matte

        def matte_and_look(photo):
            out = matte(photo)
            during.append([held.source for held in POOL.held() if held not in before])
            return out

        provider.matte = matte_and_look
        return provider

    monkeypatch.setattr(calibration, "stand_in", watched)
    seconds = calibration.seconds_for("isnet-general")  # stand-in IS-Net weights, a real 1 MP cut-out
    assert 0 < seconds < 120
    assert len(during) == 2 and all(len(sources) == 1 for sources in during)  # the stand-in, while measured
    assert during[0][0].endswith("isnet.onnx") and "rmbg-calibrate-" in during[0][0]
    assert POOL.held() == before
    stored = (cpu_cache / calibration.FILE).read_text()
    assert calibration.seconds_for("isnet-general") == round(seconds, 3)
    assert (cpu_cache / calibration.FILE).read_text() == stored  # not measured again
    assert len(during) == 2  # no stand-in built or run again


def test_calibration_keeps_the_median_of_its_runs_so_one_slow_run_does_not_decide(monkeypatch):
    """A model 2.9 s on this CPU with one run slowed to 9 s by a neighbour stays under the
    3 s budget: the warm-up is not counted, the median of the three timed runs is kept."""
    clock = [0.0]
    durations = iter([20.0, 2.9, 9.0, 2.95])  # warm-up (loading), then three timed runs
    photo = object()

    class Stand:
        def matte(self, given):
            assert given is photo
            clock[0] += next(durations)

    monkeypatch.setattr(calibration.time, "perf_counter", lambda: clock[0])
    assert calibration.median_seconds(Stand(), photo, calibration.RUNS) == pytest.approx(2.95, abs=1e-9)
    assert next(durations, None) is None  # every run was made, none more


@pytest.mark.uses("onnx", "openvino")  # a stand-in IS-Net export
@pytest.mark.slow  # two stand-in networks exported and timed: 15-21 s on 2 cores
def test_rmbg14s_own_measurement_runs_on_onnx_runtime_where_isnet_general_runs_openvino(tmp_path, monkeypatch):
    use_cpu(monkeypatch, SAPPHIRE_RAPIDS)
    timed = calibration.stand_in("rmbg-1.4", tmp_path)  # what seconds_for("rmbg-1.4") measures
    assert (timed.engine, timed.precision) == ("onnxruntime", "fp32")
    same_file = tmp_path / "isnet.onnx"  # IS-Net general's own stand-in, from the same export, follows the CPU
    assert rmbg.get_provider("isnet-general", weights=same_file, device="cpu").engine == "openvino"
