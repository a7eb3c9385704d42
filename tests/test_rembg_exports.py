"""benchmarks/rembg_exports.py: the deformable convolution lowered to ONNX the way BiRefNet's
release files have it (gathers and arithmetic, no GridSample) computes what our convolution does.

(The whole BiRefNet_lite export takes about a minute; benchmarks/vs_rembg_models.py runs it in
rembg's own session.)"""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rmbg.models.deform import DeformableConv2d
from tests.support.bench_modules import benchmark_module

exports = benchmark_module("rembg_exports")


# kernel, stride, padding: BiRefNet's ASPP taps (1x1 unpadded, 3x3, 7x7) and a strided one
@pytest.mark.parametrize("kernel,stride,padding", [(1, 1, 0), (3, 1, 1), (7, 1, 3), (3, 2, 1)])
def test_deformable_convolution_exports_to_gathers_that_match_ours(tmp_path, kernel, stride, padding):
    torch.manual_seed(kernel * 10 + stride)
    layer = DeformableConv2d(6, 4, kernel, stride, padding, bias=True).eval()
    for parameter in layer.parameters():  # offsets of a few pixels, modulation away from 1
        torch.nn.init.normal_(parameter, std=0.3)
    x = torch.randn(1, 6, 12, 10)
    with torch.no_grad():
        want = layer(x).numpy()
    path = tmp_path / "dcn.onnx"
    with exports._exportable_birefnet(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's about sizes taken as constants (the graph is for one size)
        torch.onnx.export(layer, (x,), str(path), opset_version=17, dynamo=False, input_names=["x"])
    ops = exports.operators(path)
    assert ops["GatherND"] == 4 and "GridSample" not in ops and ops["Conv"] == 3  # offsets, modulator, taps
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4 * float(np.abs(want).max()), rtol=0)
