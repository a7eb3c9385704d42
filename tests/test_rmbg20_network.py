"""RMBG-2.0 network (BiRefNet, Swin-L): checkpoint layout, deformable conv,
Swin attention and a reduced-size forward pass (models.md section 2)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rmbg.models import deform

FIXTURE = Path(__file__).parent / "fixtures" / "rmbg-2.0.keys.tsv"


# ---------------------------------------------------------------- deformable conv


def _bilinear_zero(img: torch.Tensor, y: float, x: float) -> float:
    """Value of a [H, W] image at (y, x): bilinear, zeros outside the image."""
    h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(img[yy, xx])
    return total


def _reference_deform(inp, offset, weight, bias, stride, padding, dilation, mask):
    """Direct per-pixel modulated deformable conv, one offset group."""
    b, c, h, w = inp.shape
    o, _, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    out = torch.zeros(b, o, ho, wo, dtype=torch.float64)
    for n in range(b):
        for oy in range(ho):
            for ox in range(wo):
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        y = oy * stride - padding + i * dilation + float(offset[n, 2 * k, oy, ox])
                        x = ox * stride - padding + j * dilation + float(offset[n, 2 * k + 1, oy, ox])
                        m = 1.0 if mask is None else float(mask[n, k, oy, ox])
                        for ci in range(c):
                            v = _bilinear_zero(inp[n, ci], y, x) * m
                            out[n, :, oy, ox] += weight[:, ci, i, j].double() * v
    if bias is not None:
        out += bias.double().view(1, o, 1, 1)
    return out


DEFORM_CASES = [
    # kernel, stride, padding, dilation, modulated
    (1, 1, 0, 1, True),
    (3, 1, 1, 1, True),
    (3, 1, 1, 1, False),
    (3, 2, 0, 1, True),
    (3, 1, 2, 2, False),
    (7, 1, 3, 1, True),
]


def _deform_inputs(kernel, stride, padding, dilation, modulated, seed=0):
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w, o = 2, 3, 6, 5, 4
    ho = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    k = kernel * kernel
    inp = torch.randn(b, c, h, w, generator=gen)
    # Offsets up to +-4 px on a 6x5 image: many samples land (partly) outside.
    offset = (torch.rand(b, 2 * k, ho, wo, generator=gen) - 0.5) * 8
    offset[0, 0, 0, 0] = -7.5  # far outside
    offset[0, 1, 0, 0] = 9.25
    weight = torch.randn(o, c, kernel, kernel, generator=gen)
    bias = torch.randn(o, generator=gen)
    mask = 2 * torch.rand(b, k, ho, wo, generator=gen) if modulated else None
    return inp, offset, weight, bias, mask


@pytest.mark.parametrize("kernel,stride,padding,dilation,modulated", DEFORM_CASES)
def test_pure_deform_conv_matches_per_pixel_reference(kernel, stride, padding, dilation, modulated):
    inp, offset, weight, bias, mask = _deform_inputs(kernel, stride, padding, dilation, modulated)
    got = deform.deform_conv2d_pure(inp, offset, weight, bias, stride, padding, dilation, mask)
    want = _reference_deform(inp, offset, weight, bias, stride, padding, dilation, mask)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_pure_deform_conv_zero_offsets_equal_plain_conv():
    gen = torch.Generator().manual_seed(1)
    inp = torch.randn(1, 5, 9, 8, generator=gen)
    weight = torch.randn(6, 5, 3, 3, generator=gen)
    offset = torch.zeros(1, 18, 9, 8)
    got = deform.deform_conv2d_pure(inp, offset, weight, padding=1)
    torch.testing.assert_close(got, torch.nn.functional.conv2d(inp, weight, padding=1), atol=1e-4, rtol=1e-4)


def test_pure_deform_conv_chunked_taps_match_single_chunk(monkeypatch):
    inp, offset, weight, bias, mask = _deform_inputs(7, 1, 3, 1, True, seed=3)
    whole = deform.deform_conv2d_pure(inp, offset, weight, bias, 1, 3, 1, mask)
    monkeypatch.setattr(deform, "_MAX_COLUMN_ELEMENTS", 2 * 3 * 6 * 5 * 4)  # 4 taps a chunk
    chunked = deform.deform_conv2d_pure(inp, offset, weight, bias, 1, 3, 1, mask)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_pure_deform_conv_matches_torchvision():
    tv_deform = deform.torchvision_deform_conv2d()
    if tv_deform is None:
        pytest.skip("torchvision (with its compiled deform_conv2d op) is not installed on this machine")
    for kernel, stride, padding, dilation, modulated in DEFORM_CASES:
        inp, offset, weight, bias, mask = _deform_inputs(kernel, stride, padding, dilation, modulated)
        want = tv_deform(inp, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
        got = deform.deform_conv2d_pure(inp, offset, weight, bias, stride, padding, dilation, mask)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_deformable_conv2d_module_uses_offsets_and_modulator():
    torch.manual_seed(0)
    block = deform.DeformableConv2d(4, 8, kernel_size=3, padding=1)
    assert block.regular_conv.bias is None
    x = torch.randn(1, 4, 7, 7)
    assert not block.offset_conv.weight.any() and not block.offset_conv.bias.any()
    # Zero-initialised offsets and modulator: mask 2*sigmoid(0) = 1, a plain conv.
    plain = torch.nn.functional.conv2d(x, block.regular_conv.weight, padding=1)
    torch.testing.assert_close(block(x), plain, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        block.offset_conv.bias.uniform_(-2, 2)
        block.modulator_conv.bias.uniform_(-1, 1)
        offset = block.offset_conv(x)
        mask = 2 * torch.sigmoid(block.modulator_conv(x))
        want = _reference_deform(x, offset, block.regular_conv.weight, None, 1, 1, 1, mask)
        torch.testing.assert_close(block(x).double(), want, atol=1e-4, rtol=1e-4)
