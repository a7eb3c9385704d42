"""The optional OpenVINO backend: same matte as ONNX Runtime on the same graph,
IR cached after the first use, and a clear message when OpenVINO is absent."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.providers.local import openvino_backend
from rmbg.providers.local.openvino_backend import openvino_provider
from tests.support.models import (
    PHOTO,
    network_weights,
    tiny_isnet_file,  # noqa: F401  (the graph fixture)
)

# The OpenVINO extra (requirements-dev.txt installs it, so CI runs these): skipped where it is not installed.
openvino = pytest.importorskip("openvino", reason='needs the OpenVINO extra: pip install "rmbg[openvino]"')


def test_fp32_matches_onnx_runtime_and_reads_the_file_as_it_is(graph, tmp_path):
    photo = Image.open(PHOTO).convert("RGB")
    ours = openvino_provider("isnet-general", weights=graph, precision="fp32")
    assert ours.status().ready
    matte = ours.matte(photo)
    assert matte.meta["backend"] == "openvino" and matte.meta["precision"] == "fp32"
    reference = rmbg.get_provider("isnet-general", weights=graph, device="cpu", engine="onnxruntime").matte(photo)
    diff = np.abs(np.asarray(matte.alpha, np.int16) - np.asarray(reference.alpha, np.int16))
    assert diff.max() <= 1
    assert not list((tmp_path / "cache").rglob("*.xml"))  # an ONNX file at fp32 needs no IR kept
    assert list((tmp_path / "cache" / "openvino" / "compiled").iterdir())  # OpenVINO's compiled blob is


def test_a_new_process_imports_the_compiled_blob_with_the_same_matte(u2netp_path, tmp_path, monkeypatch):
    """The second compile of the same file and config (a new process's, here a new Core) reads
    OpenVINO's cached blob instead of compiling again, and gives the same matte (cold start:
    benchmarks/vs_rembg_serving.py)."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    first = openvino_backend._compile("u2netp", "fp32", "fp32", u2netp_path, [], 2, tmp_path / "no.xml")
    assert int(first.get_property("INFERENCE_NUM_THREADS")) == 2  # the thread budget's, given: rmbg.threads
    assert int(first.get_property("NUM_STREAMS")) == 1
    blobs = sorted((tmp_path / "cache" / "openvino" / "compiled").iterdir())
    assert blobs
    stamps = [b.stat().st_mtime_ns for b in blobs]
    second = openvino_backend._compile("u2netp", "fp32", "fp32", u2netp_path, [], 2, tmp_path / "no.xml")
    assert sorted((tmp_path / "cache" / "openvino" / "compiled").iterdir()) == blobs
    assert [b.stat().st_mtime_ns for b in blobs] == stamps  # read, not written again
    x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
    assert np.array_equal(first(x)[0], second(x)[0])


def test_u2netp_fp32_gives_onnx_runtimes_matte_on_its_real_weights(u2netp_path, tmp_path, monkeypatch):
    """U2-Net-p's own file read by OpenVINO (exact fp32 hint): the matte of a real
    photo within one grey level of ONNX Runtime's, at the photo's size."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    photo = Image.open(PHOTO).convert("RGB")
    ours = openvino_provider("u2netp", weights=u2netp_path, precision="fp32").matte(photo)
    reference = rmbg.get_provider("u2netp", device="cpu").matte(photo)
    assert ours.alpha.size == photo.size and ours.meta["backend"] == "openvino"
    diff = np.abs(np.asarray(ours.alpha, np.int16) - np.asarray(reference.alpha, np.int16))
    assert diff.max() <= 1 and np.asarray(reference.alpha).std() > 20  # a real matte, not a flat one


def _runtime_precisions(compiled) -> set[str]:
    return {op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()}


def test_bf16_runs_the_fp32_graph_in_bf16_where_the_cpu_has_bf16_units(u2netp_path, tmp_path, monkeypatch):
    """bf16 compiles the same graph with OpenVINO's bf16 precision (ops run in bf16, no IR
    kept on disk); on a CPU without bf16 units it is refused, since OpenVINO would quietly
    run fp32 under a bf16 label."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    photo = Image.open(PHOTO).convert("RGB")
    bf16 = openvino_provider("u2netp", weights=u2netp_path, precision="bf16")
    if "BF16" not in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(ModelUnavailableError, match="bf16 units"):
            bf16.matte(photo)
        return
    matte = bf16.matte(photo)
    assert matte.meta["precision"] == "bf16" and matte.alpha.size == photo.size
    assert "bf16" in _runtime_precisions(bf16.compiled())
    assert "bf16" not in _runtime_precisions(openvino_provider("u2netp", weights=u2netp_path).compiled())
    assert not list((tmp_path / "cache").rglob("*.xml"))  # no IR kept (only OpenVINO's compiled blobs)


def test_int8_needs_calibration_frames(graph):
    with pytest.raises(ModelUnavailableError, match="calibration images"):
        openvino_provider("isnet-general", weights=graph, precision="int8")
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        openvino_provider("isnet-general", weights=graph, precision="fp16")


def test_without_openvino_the_message_says_how_to_install(graph, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an environment without the extra sees
    provider = openvino_provider("isnet-general", weights=graph)
    with pytest.raises(ModelUnavailableError, match=r'pip install "rmbg\[openvino\]"'):
        provider.matte(Image.new("RGB", (32, 24)))
    assert openvino_backend.INSTALL in str(pytest.raises(ModelUnavailableError, provider.compiled).value)


def _operations(model) -> list[str]:
    """The OpenVINO model's operations other than its inputs, outputs and constants."""
    return [op.get_type_name() for op in model.get_ordered_ops() if op.get_type_name() not in LEAVES]


LEAVES = ("Parameter", "Result", "Constant")


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,groups,batch",
    [(7, 1, 3, 1, 1, 1), (3, 2, 2, 2, 2, 2)],  # the decoder's widest conv; strided, dilated, 2 offset groups, 2 images
)
def test_captured_deformable_conv_is_14_openvino_operations_and_matches_the_pure_one(
    kernel, stride, padding, dilation, groups, batch
):
    """A deformable conv captured by torch.export (the grid version, rmbg.models.capture) converts into
    14 OpenVINO operations plus constants, its base sampling grid one constant (with the position arithmetic
    done per call it was 24; BiRefNet_lite has 20 such convs, and OpenVINO's converter and NNCF scale with the
    operations), and OpenVINO computes what deform_conv2d_pure does, offsets reaching outside the map included."""
    import torch

    from rmbg.models import deform

    gen = torch.Generator().manual_seed(7)
    c, h, w, k = 4, 11, 9, kernel * kernel
    ho = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    x = torch.randn(batch, c, h, w, generator=gen)
    offset = (torch.rand(batch, 2 * groups * k, ho, wo, generator=gen) - 0.5) * 12  # up to 6 px: past the border
    mask = 2 * torch.rand(batch, groups * k, ho, wo, generator=gen)
    weight, bias = torch.randn(5, c, kernel, kernel, generator=gen), torch.randn(5, generator=gen)

    class Deform(torch.nn.Module):
        def forward(self, x, offset, mask):
            return deform.deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)

    module = Deform().eval()
    with torch.no_grad():
        program = torch.export.export(module, (x, offset, mask), strict=False)
    model = openvino.convert_model(program)
    assert len(_operations(model)) <= 14  # with the bias's Add (BiRefNet's have none) and a Reshape per input
    got = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([x, offset, mask])[0]
    want = deform.deform_conv2d_pure(x, offset, weight, bias, stride, padding, dilation, mask)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-4)


def test_captured_shifted_window_mask_is_one_constant():
    """Swin's shifted-window attention mask, built while captured, folds into one OpenVINO constant (assigned
    slice by slice it was about 240 operations per stage and scale: 8 of them in Swin-T's BiRefNet_lite)."""
    import torch

    from rmbg.models.swin_windows import shift_attention_mask

    class Masked(torch.nn.Module):
        def forward(self, logits):
            return logits + shift_attention_mask(28, 21, 7, 3, logits.device)

    logits = torch.randn(12, 49, 49)
    model = openvino.convert_model(torch.export.export(Masked(), (logits,), strict=False))
    assert _operations(model) == ["Add"]
    got = openvino.Core().compile_model(model, "CPU")([logits])[0]
    np.testing.assert_array_equal(got, Masked()(logits).numpy())


# BiRefNet_lite's network with a shallow, narrow Swin in place of Swin-T (Swin-T's window and head width, a
# shifted block in the first stage only): the same decoder, the same kinds of operation in the converted graph, and
# a fraction of Swin-T's cost in torch.export, OpenVINO's converter and NNCF. Swin-T itself, at the trained 1024²,
# goes through the same conversion and int8 in benchmarks/speed_cpu.py --models birefnet-lite --openvino
# (docs/cpu.md, "OpenVINO and int8").
SHALLOW_SWIN_T = {"embed_dim": 32, "depths": (2, 1, 1, 1), "num_heads": (1, 2, 4, 8), "window": 7}
# Stage maps 24, 12, 6, 3 (the half scale's 12, 6, 3, 2): every one padded to the window of 7, as at 1024²
# (256 -> 259), and an odd map merged (3 -> 2). The fixture also shrinks Swin's eager blocks so that the first
# stage's are ragged at this size, as Swin-T's are at 1024²: a capture that took them (rather than the whole-map
# products of rmbg.models.capture) fails in OpenVINO's converter on their slice_scatter, as it did at 1024².
LITE_SIZE = (96, 96)


@pytest.fixture(scope="module")
def birefnet_lite(tmp_path_factory):
    """BiRefNet_lite with SHALLOW_SWIN_T and deterministic weights, converted once for the module into a cache of
    its own (torch.export, then OpenVINO's converter); (weights file, IR folder). Swin-T stays replaced for the
    module, so the PyTorch reference builds the same network."""
    from rmbg.models import swin
    from rmbg.models.birefnet import build_birefnet

    folder = tmp_path_factory.mktemp("birefnet-lite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RMBG_CACHE_DIR", str(folder / "cache"))
        patch.setitem(swin.SWIN_CONFIGS, "swin_t", SHALLOW_SWIN_T)
        patch.setattr(swin, "_MAX_TOKENS", 5 * 49)  # eager attention: 5 windows at a time, 16 in the first stage
        patch.setattr(swin, "_MAX_HIDDEN_ELEMENTS", 100 * 128)  # eager MLP: 100 rows at a time, 576 in the first
        spec = openvino_backend.SPECS["birefnet-lite"]
        patch.setitem(openvino_backend.SPECS, "birefnet-lite", dataclasses.replace(spec, input_size=LITE_SIZE))
        path = folder / "model.safetensors"
        path.write_bytes(network_weights(build_birefnet(backbone="swin_t")))
        openvino_provider("birefnet-lite", weights=path, precision="fp32").compiled()
        yield path, folder / "cache" / "openvino"


@pytest.mark.slow  # the conversion: about 30 s on 2 cores (BiRefNet_lite's own Swin-T at 224²: about 65 s)
def test_birefnet_lite_converts_through_torch_export_and_matches_pytorch(birefnet_lite):
    weights, irs = birefnet_lite
    (ir,) = irs.glob("birefnet-lite-fp32-*.xml")  # the conversion is kept for later uses
    # 2,498 operations (constants included); 3,387 while each captured deformable conv computed its sampling
    # positions per call and each shifted-window mask was assigned slice by slice (the tests above)
    assert ir.read_text().count("<layer ") <= 2600
    photo = Image.open(PHOTO).convert("RGB")
    ours = openvino_provider("birefnet-lite", weights=weights, precision="fp32").matte(photo)
    assert ours.meta["backend"] == "openvino" and ours.meta["precision"] == "fp32"
    reference = rmbg.get_provider(
        "birefnet-lite", weights=weights, device="cpu", precision="fp32", input_size=LITE_SIZE
    ).matte(photo)
    diff = np.abs(np.asarray(ours.alpha, np.int16) - np.asarray(reference.alpha, np.int16))
    assert diff.max() <= 1 and np.asarray(reference.alpha).std() > 20  # a real matte, not a flat one


@pytest.mark.slow  # NNCF: about 20 s on 2 cores (on Swin-T at 224²: about 60 s)
def test_birefnet_lite_quantizes_its_kept_fp32_graph_to_int8(birefnet_lite, monkeypatch):
    import torch

    def export(*args, **kwargs):
        raise AssertionError("int8 captured BiRefNet_lite again instead of reading its fp32 IR")

    monkeypatch.setattr(torch.export, "export", export)
    weights, irs = birefnet_lite
    photo = Image.open(PHOTO).convert("RGB")
    ours = openvino_provider("birefnet-lite", weights=weights, precision="int8", calibration=[PHOTO])
    matte = ours.matte(photo)
    assert matte.meta["precision"] == "int8" and matte.alpha.size == photo.size
    (ir,) = irs.glob("birefnet-lite-int8-*.xml")
    assert 'type="FakeQuantize"' in ir.read_text()  # NNCF's quantizers are in the saved graph


def test_openvino_is_imported_without_its_usage_report(tmp_path):
    """rmbg imports OpenVINO with its telemetry module blocked, so OpenVINO takes its no-op stub and sends
    nothing (its report forks a child that, without network, kept `rmbg video` from exiting); the
    module is importable again after. In a fresh process, outside CI (CI=true turns the report off)."""
    import os
    import subprocess

    script = (
        "import sys; from rmbg.providers.local.openvino_backend import _openvino; _openvino();"
        "import openvino.tools.ovc.telemetry_utils as used; import openvino_telemetry;"
        "print(used.tm.__name__, 'openvino_telemetry' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"HOME": str(tmp_path)}  # no consent file there
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["openvino.tools.ovc.telemetry_stub", "True"]


# A stand-in `openvino` whose import stops half-way until the test lets it go: sys.modules holds it half made.
SLOW_OPENVINO = """
import gate
gate.inside.set()
gate.release.wait(60)
__version__ = "stand-in"
"""
GATE = "import threading\ninside, release = threading.Event(), threading.Event()\n"
RACE = """
import sys, threading
import gate
from rmbg.providers.local.openvino_backend import _openvino
got = {}
def use(name):
    try:
        got[name] = _openvino().__version__
    except Exception as exc:
        got[name] = repr(exc)
first = threading.Thread(target=use, args=("first",))
first.start()
gate.inside.wait(60)
second = threading.Thread(target=use, args=("second",))
second.start()
second.join(2)
print("second waited" if second.is_alive() else "second went on", got.get("second"))
gate.release.set()
first.join(60)
second.join(60)
print(got["first"], got["second"])
"""


def test_a_second_thread_waits_for_openvinos_import_not_its_half(tmp_path):
    """Two models a Compare runs at once, each the first to use OpenVINO: the second took the module half
    imported from sys.modules and failed ("partially initialized module 'openvino' has no attribute
    '__version__'"). Now it waits for the import (a stand-in openvino held half-way, in a fresh process)."""
    import os
    import subprocess

    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "__init__.py").write_text(SLOW_OPENVINO)
    (tmp_path / "gate.py").write_text(GATE)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", RACE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["second waited None", "stand-in stand-in"]
