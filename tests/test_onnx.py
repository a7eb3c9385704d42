"""RMBG-1.4 through ONNX Runtime: our PyTorch network with deterministic
weights is exported to ONNX (as BRIA's onnx/model.onnx is: input `input`,
output `output` = result[0][0], dynamic H/W), and both backends must give the
same matte. Tolerance: probabilities within 1e-4, mattes within 1 grey level.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.models.isnet import build_isnet
from rmbg.models.specs import RMBG_14
from rmbg.providers.local import onnx_backend
from rmbg.providers.local.onnx_backend import OnnxProvider, choose_rmbg14_backend
from rmbg.providers.local.torch_backend import LocalProvider
from tests.hfcache import deterministic_state, read_keys

KEYS = read_keys(Path(__file__).parent / "fixtures" / "rmbg-1.4.keys.tsv")
SIZE = (96, 96)  # network input for these tests: small, and not the export size


class FirstMask(torch.nn.Module):
    """What BRIA exported: the network with result[0][0] as its only output."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[0][0]


def export(module: torch.nn.Module, path: Path, *, names=("input", "output"), size: int = 64) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks
        torch.onnx.export(
            module.eval(),
            torch.zeros(1, 3, size, size),
            str(path),
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes={
                names[0]: {0: "batch", 2: "height", 3: "width"},
                names[1]: {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=17,
            dynamo=False,
        )
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Deterministic RMBG-1.4 as model.safetensors, model.onnx and model_quantized.onnx."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("rmbg14")
    state = deterministic_state(KEYS)
    net = build_isnet()
    net.load_state_dict(state, strict=True)
    save_file(state, str(root / "model.safetensors"), metadata={"format": "pt"})
    fp32 = export(FirstMask(net), root / "model.onnx")
    # onnx/quantize_config.json: QUInt8 weights, per_channel false, reduce_range false
    quantize_dynamic(
        str(fp32),
        str(root / "model_quantized.onnx"),
        weight_type=QuantType.QUInt8,
        per_channel=False,
        reduce_range=False,
    )
    return {"safetensors": root / "model.safetensors", "fp32": fp32, "quantized": root / "model_quantized.onnx"}


def scene(width: int = 150, height: int = 100) -> Image.Image:
    """A bright disc on a textured background (non-square, so resizes are exercised)."""
    yy, xx = np.mgrid[0:height, 0:width]
    disc = (xx - width * 0.55) ** 2 + (yy - height * 0.5) ** 2 < (height * 0.3) ** 2
    base = np.stack([(xx * 255 // width), (yy * 255 // height), ((xx + yy) % 37) * 6], axis=-1)
    base[disc] = (240, 200, 40)
    return Image.fromarray(base.astype(np.uint8), "RGB")


def test_torch_and_onnx_give_the_same_matte(files):
    image = scene()
    torch_p = rmbg.get_provider(
        "rmbg-1.4", backend="torch", weights=str(files["safetensors"]), device="cpu", input_size=SIZE
    )
    onnx_p = rmbg.get_provider("rmbg-1.4", backend="onnx", weights=str(files["fp32"]), device="cpu", input_size=SIZE)
    assert isinstance(torch_p, LocalProvider) and isinstance(onnx_p, OnnxProvider)
    x = torch_p.preprocess(image)
    assert np.array_equal(x, onnx_p.preprocess(image)) and x.shape == (1, 3) + SIZE
    a, b = torch_p.forward(x), onnx_p.forward(x)
    assert a.shape == b.shape == SIZE and np.abs(a - b).max() < 1e-4
    ta, oa = torch_p.matte(image).alpha, onnx_p.matte(image).alpha
    assert ta.size == oa.size == image.size and ta.mode == oa.mode == "L"
    diff = np.abs(np.asarray(ta).astype(int) - np.asarray(oa).astype(int))
    assert diff.max() <= 1
    assert torch_p.options()["backend"] == "torch" and onnx_p.options()["backend"] == "onnx"


def test_official_onnx_files_load_from_the_offline_hf_cache(files, hf_cache):
    for precision in ("fp32", "quantized"):
        hf_cache.add(RMBG_14.repo_id, RMBG_14.revision, RMBG_14.onnx_files[precision], files[precision].read_bytes())
    default = rmbg.get_provider("rmbg-1.4", device="cpu", input_size=SIZE)  # nothing else cached: ONNX on CPU
    assert isinstance(default, OnnxProvider) and default.status().ready
    matte = default.matte(scene())
    assert matte.meta["backend"] == "onnx" and matte.meta["precision"] == "fp32"
    assert matte.meta["revision"] == RMBG_14.revision
    quant = rmbg.get_provider("rmbg-1.4", device="cpu", precision="quantized", input_size=SIZE)
    assert quant.options()["weights"].endswith("onnx/model_quantized.onnx")
    q = quant.matte(scene())
    assert q.meta["precision"] == "quantized" and q.alpha.size == matte.alpha.size
    assert quant.options() != default.options()  # different cache keys


def test_missing_onnx_file_offline_says_what_to_do(hf_cache):
    provider = rmbg.get_provider("rmbg-1.4", backend="onnx", device="cpu")
    assert provider.status().state == "needs_token"
    with pytest.raises(ModelUnavailableError) as info:
        provider.matte(scene())
    text = str(info.value)
    assert "onnx/model.onnx" in text and "HF_HUB_OFFLINE is set" in text and "HF_TOKEN" in text


@pytest.mark.parametrize(
    "cached, kwargs, expected",
    [
        ((), {}, "onnx"),
        (("model.safetensors",), {}, "torch"),
        (("model.safetensors", "onnx/model.onnx"), {}, "onnx"),
        (("onnx/model.onnx",), {}, "onnx"),
        ((), {"weights": "/x/model.onnx"}, "onnx"),
        ((), {"weights": "/x/model.safetensors"}, "torch"),
        ((), {"precision": "quantized"}, "onnx"),
        ((), {"precision": "bf16"}, "torch"),
        (("onnx/model.onnx",), {"backend": "torch"}, "torch"),
        (("model.safetensors",), {"backend": "onnx"}, "onnx"),
        ((), {"device": "cuda"}, "torch"),
    ],
)
def test_backend_choice(hf_cache, cached, kwargs, expected):
    for name in cached:
        hf_cache.add(RMBG_14.repo_id, RMBG_14.revision, name, b"placeholder")
    args = {"backend": "auto", "weights": None, "device": "cpu", "precision": "auto"} | kwargs
    assert choose_rmbg14_backend(args.pop("backend"), **args) == expected


def test_unknown_backend_or_precision():
    with pytest.raises(ValueError, match="backend must be"):
        rmbg.get_provider("rmbg-1.4", backend="tensorrt")
    with pytest.raises(ValueError, match="ONNX precision must be"):
        rmbg.get_provider("rmbg-1.4", backend="onnx", precision="int4")


def tiny_graph(path: Path, *, inp: str, out: str, dtype) -> Path:
    """output = sigmoid(mean over channels of input), in `dtype` end to end."""
    import onnx
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", [inp], ["m"], axes=[1], keepdims=1), helper.make_node("Sigmoid", ["m"], [out])],
        "tiny",
        [helper.make_tensor_value_info(inp, elem, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info(out, elem, [1, 1, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_graph_with_other_io_names_is_refused_clearly(tmp_path):
    path = tiny_graph(tmp_path / "other.onnx", inp="pixel_values", out="alphas", dtype=np.float32)
    with pytest.raises(ModelUnavailableError) as info:
        rmbg.get_provider("rmbg-1.4", weights=str(path), device="cpu").matte(scene())
    text = str(info.value)
    assert "expected input 'input' and output 'output'" in text and "['pixel_values']" in text and "['alphas']" in text


def test_a_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelUnavailableError, match="broken.onnx is not a usable ONNX model: Protobuf parsing failed"):
        rmbg.get_provider("rmbg-1.4", weights=str(path), device="cpu").matte(scene())


def test_half_precision_graph_io_is_fed_half(tmp_path):
    path = tiny_graph(tmp_path / "half.onnx", inp="input", out="output", dtype=np.float16)
    provider = rmbg.get_provider("rmbg-1.4", weights=str(path), precision="fp16", device="cpu", input_size=(32, 48))
    image = scene(60, 40)
    x = provider.preprocess(image)
    expected = 1.0 / (1.0 + np.exp(-x[0].astype(np.float64).mean(axis=0)))
    got = provider.forward(x)
    assert got.dtype == np.float32 and got.shape == (32, 48)
    assert np.abs(got - expected).max() < 2e-3  # float16 rounding


def test_providers_share_one_session(files):
    onnx_backend.clear_sessions()
    for _ in range(3):
        rmbg.get_provider("rmbg-1.4", weights=str(files["fp32"]), device="cpu", input_size=SIZE, threads=1).matte(
            scene()
        )
    assert len(onnx_backend.loaded_sessions()) == 1
    key = onnx_backend.loaded_sessions()[0]
    assert key == (str(files["fp32"]), ("CPUExecutionProvider",), 1)


def test_load_errors_keep_the_reason(tmp_path):
    import onnx

    path = tiny_graph(tmp_path / "future.onnx", inp="input", out="output", dtype=np.float32)
    model = onnx.load(str(path))
    model.ir_version = 99
    onnx.save(model, str(path))
    with pytest.raises(
        ModelUnavailableError, match=r"future.onnx is not a usable ONNX model: Unsupported model IR version: 99"
    ):
        rmbg.get_provider("rmbg-1.4", weights=str(path), device="cpu").matte(scene())


@pytest.mark.parametrize(
    "shape, size",
    [
        ((64, 64), (300, 400)),
        ((64, 64), (64, 64)),
        ((64, 48), (40, 90)),
        ((100, 80), (30, 20)),
        ((32, 32, 3), (90, 70)),
    ],
)
@pytest.mark.parametrize("opencv", [True, False])
def test_resize_bilinear_is_torch_bilinear(shape, size, opencv, monkeypatch):
    """Every code path of processing.resize_bilinear equals F.interpolate(bilinear,
    align_corners=False): OpenCV where installed (within 1e-4 of the range: it rounds
    the source positions its own way), else PIL when a 2-D map only grows and numpy
    otherwise (within 1e-5)."""
    import sys

    import torch.nn.functional as F

    from rmbg.providers.local.processing import resize_bilinear

    if not opencv:
        monkeypatch.setitem(sys.modules, "cv2", None)  # what an install without OpenCV sees
    arr = np.random.default_rng(1).random(shape, dtype=np.float32)
    t = torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1)[None]
    expected = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    got = resize_bilinear(arr, size)
    assert got.dtype == np.float32 and got.shape == expected.reshape(size + shape[2:]).shape
    assert np.abs(got - expected.reshape(got.shape)).max() < (1e-4 if opencv else 1e-5)


def test_a_photo_much_larger_than_the_network_input_goes_by_bands(monkeypatch):
    """Past OPENCV_MAX_GROWTH input pixels per output pixel OpenCV resizes bands of rows (a
    12 MP photo is never a 144 MB float copy), with the same values as the whole resize."""
    import cv2
    import torch.nn.functional as F

    from rmbg.providers.local import processing

    calls = []
    real = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    photo = np.random.default_rng(2).integers(0, 256, (600, 500, 3), dtype=np.uint8)
    got = processing.resize_bilinear(photo, (130, 110))  # 21x the pixels: by bands of 128 output rows
    assert [shape[0] <= 600 * 128 // 130 + 2 for shape in calls] == [True, True] and all(
        shape[1:] == (500, 3) for shape in calls
    )
    t = torch.from_numpy(photo.astype(np.float32)).permute(2, 0, 1)[None]
    expected = F.interpolate(t, size=(130, 110), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() < 255e-4
    calls.clear()
    processing.resize_bilinear(photo, (400, 300))  # 2.5x: the whole photo at once
    assert calls == [(600, 500, 3)]


def test_resize_bilinear_matches_torch_on_many_shapes():
    """Random sizes up and down, 1 to 4 channels or a 2-D map: every path (whole, by bands)
    within 1e-4 of F.interpolate(bilinear, align_corners=False)."""
    import torch.nn.functional as F

    from rmbg.providers.local.processing import resize_bilinear

    rng = np.random.default_rng(5)
    for _ in range(120):
        h, w = (int(v) for v in rng.integers(1, 400, 2))
        size = tuple(int(v) for v in rng.integers(1, 200, 2))
        channels = int(rng.choice([0, 1, 3, 4]))
        arr = rng.random((h, w) if channels == 0 else (h, w, channels), dtype=np.float32)
        t = torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1)[None]
        expected = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        got = resize_bilinear(arr, size)
        assert got.shape == size + arr.shape[2:], (arr.shape, size)
        assert np.abs(got - expected.reshape(got.shape)).max() < 1e-4, (arr.shape, size)
