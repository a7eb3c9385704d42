"""ONNX files of our networks made the way rembg's model files are made, for benchmarks/vs_rembg_models.py.

- BiRefNet_lite, as BiRefNet's authors export their release files (their
  conversion notebook): torch.onnx.export's TorchScript path at opset 17, a
  static 1x3x1024x1024 input `input_image`, the final logits as the one output
  `output_image` (rembg's birefnet sessions apply the sigmoid themselves), and
  the deformable convolution lowered to standard ONNX operators by a symbolic
  registered for the export. The authors register the one of the
  `deform_conv2d_onnx_exporter` package for torchvision's op; torchvision has
  no CPU build here, so `deform_conv2d_symbolic` below lowers our own op to the
  same kind of graph, written from the algorithm (DCNv2): pad, sampling
  positions (Add), Floor, Cast, Slice, Clip of the four corners, their bilinear
  weights (Sub, Mul), one GatherND (batch_dims 2) per corner from a
  channels-last copy of the input, Sum, the modulation (Mul), the samples laid
  out as kernel-sized tiles (Transpose, Reshape, Split, Concat) and one Conv
  with the kernel as its stride. Not grid_sample: that would be a GridSample
  node, which the released files do not have. The network's last head is the
  authors' formulation too (the full-size map and conv_out1), not the folded
  one our eager network runs (rmbg.models.birefnet: _full_size_logits), its
  attention the written-out softmax, and Swin's map sizes constants of the
  trace (traced, their window-padding arithmetic exported wrong).
- IS-Net general, as rembg's isnet-general-use.onnx is laid out: a static
  1x3x1024x1024 input `input_image`, the first side output (already
  sigmoided) as `output_image`; opset 11 (the release file's own is not known here).

Both read deterministic weights (speed_setup: the real ones cannot be
downloaded here) and are kept in the bench cache, made once per torch version.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import speed_setup

BIREFNET_OPSET = 17  # BiRefNet's conversion notebook
ISNET_OPSET = 11
SIZE = 1024
_OP = "rmbg_export::deform_conv2d"
_LIB: Any = None


def _define_op() -> None:
    """rmbg_export::deform_conv2d: our CPU deformable convolution as one traced op, so the
    exporter meets it whole and hands it to deform_conv2d_symbolic."""
    global _LIB
    if _LIB is not None:
        return
    from rmbg.models.deform_ops import deform_conv2d_pure

    _LIB = torch.library.Library("rmbg_export", "DEF")
    _LIB.define(
        "deform_conv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias, "
        "int[] stride, int[] padding, int[] dilation, Tensor? mask, int[] shapes) -> Tensor"
    )

    def eager(input, offset, weight, bias, stride, padding, dilation, mask, shapes):  # type: ignore[no-untyped-def]
        return deform_conv2d_pure(input, offset, weight, bias, tuple(stride), tuple(padding), tuple(dilation), mask)

    _LIB.impl("deform_conv2d", eager, "CPU")
    torch.onnx.register_custom_op_symbolic(_OP, deform_conv2d_symbolic, BIREFNET_OPSET)


def _const(g: Any, value: Any, dtype: torch.dtype = torch.int64) -> Any:
    return g.op("Constant", value_t=torch.as_tensor(value, dtype=dtype))


def deform_conv2d_symbolic(g: Any, input, offset, weight, bias, stride, padding, dilation, mask, shapes) -> Any:  # type: ignore[no-untyped-def]
    """The ONNX graph of one modulated deformable convolution (module doc). `shapes`: the input's,
    the offset's and the weight's sizes, constants of the trace (the graph is for one input size)."""
    from torch.onnx import symbolic_helper as sh

    stride, padding, dilation = (sh._parse_arg(v, "is") for v in (stride, padding, dilation))
    b, c, h, w, _, offset_ch, ho, wo, out_ch, _, kh, kw = sh._parse_arg(shapes, "is")
    k = kh * kw
    groups = offset_ch // (2 * k)
    cg = c // groups
    # pad by at least one pixel: corners clipped to the padded border then read zeros, as DCNv2 does outside
    extra = [1 if p == 0 else 0 for p in padding]
    pad = [p + e for p, e in zip(padding, extra)]
    hp, wp = h + 2 * pad[0], w + 2 * pad[1]
    padded = g.op("Pad", input, _const(g, [0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]]), mode_s="constant")

    # sampling positions in the padded input: base grid + taps + offsets, [B, G, K, 2, Ho, Wo]
    ys = (
        torch.arange(ho).view(1, ho, 1) * stride[0]
        + extra[0]
        + (torch.arange(kh) * dilation[0]).repeat_interleave(kw).view(k, 1, 1)
    )
    xs = (
        torch.arange(wo).view(1, 1, wo) * stride[1]
        + extra[1]
        + (torch.arange(kw) * dilation[1]).repeat(kh).view(k, 1, 1)
    )
    base = torch.stack((ys.expand(k, ho, wo), xs.expand(k, ho, wo)), dim=1).view(1, 1, k, 2, ho, wo).float()
    pos = g.op("Add", _const(g, base, torch.float32), g.op("Reshape", offset, _const(g, [b, groups, k, 2, ho, wo])))
    low = g.op("Floor", pos)
    frac = g.op("Sub", pos, low)
    corner = g.op("Cast", low, to_i=sh.cast_pytorch_to_onnx["Long"])

    def axis(t: Any, i: int) -> Any:  # [B, G, K, 1, Ho, Wo]
        return g.op("Slice", t, _const(g, [i]), _const(g, [i + 1]), _const(g, [3]))

    one = _const(g, 1)
    top, left = axis(corner, 0), axis(corner, 1)
    rows = {"t": top, "b": g.op("Add", top, one)}
    cols = {"l": left, "r": g.op("Add", left, one)}
    rows = {key: g.op("Clip", v, _const(g, 0), _const(g, hp - 1)) for key, v in rows.items()}
    cols = {key: g.op("Clip", v, _const(g, 0), _const(g, wp - 1)) for key, v in cols.items()}
    fy, fx = axis(frac, 0), axis(frac, 1)
    unit = _const(g, 1.0, torch.float32)
    wy = {"t": g.op("Sub", unit, fy), "b": fy}
    wx = {"l": g.op("Sub", unit, fx), "r": fx}

    table = g.op(
        "Transpose", g.op("Reshape", padded, _const(g, [b, groups, cg, hp, wp])), perm_i=[0, 1, 3, 4, 2]
    )  # [B, G, Hp, Wp, Cg]
    terms = []
    for ry in ("t", "b"):
        for rx in ("l", "r"):
            flat = [g.op("Reshape", v, _const(g, [b, groups, k * ho * wo, 1])) for v in (rows[ry], cols[rx])]
            picked = g.op("GatherND", table, g.op("Concat", *flat, axis_i=3), batch_dims_i=2)  # [B, G, K*Ho*Wo, Cg]
            picked = g.op(
                "Reshape", g.op("Transpose", picked, perm_i=[0, 1, 3, 2]), _const(g, [b, groups, cg, k, ho, wo])
            )
            weight_k = g.op("Reshape", g.op("Mul", wy[ry], wx[rx]), _const(g, [b, groups, 1, k, ho, wo]))
            terms.append(g.op("Mul", weight_k, picked))
    sampled = g.op("Sum", *terms)  # [B, G, Cg, K, Ho, Wo]
    if not sh._is_none(mask):
        sampled = g.op("Mul", sampled, g.op("Reshape", mask, _const(g, [b, groups, 1, k, ho, wo])))

    # tap (i, j) of output pixel (y, x) goes to row y*kh + i, column x*kw + j: a kh x kw tile per pixel
    tiles = g.op("Reshape", g.op("Transpose", sampled, perm_i=[0, 1, 2, 4, 5, 3]), _const(g, [b, c, ho, wo, k]))
    if kh > 1:
        parts = g.op("Split", tiles, _const(g, [kw] * kh), axis_i=4, outputs=kh)
        rows_of_taps = [g.op("Reshape", part, _const(g, [b, c, ho, wo * kw])) for part in parts]
        tiles = g.op("Concat", *rows_of_taps, axis_i=3)
    tiles = g.op("Reshape", tiles, _const(g, [b, c, ho * kh, wo * kw]))
    out = g.op("Conv", tiles, weight, kernel_shape_i=[kh, kw], strides_i=[kh, kw])
    if not sh._is_none(bias):
        out = g.op("Add", out, g.op("Reshape", bias, _const(g, [1, out_ch, 1, 1])))
    return out


@contextlib.contextmanager
def _exportable_birefnet() -> Iterator[None]:
    """While exporting: the deformable convolution as rmbg_export::deform_conv2d, and the last head
    as the authors write it (the full-size map, then conv_out1)."""
    import torch.nn.functional as F

    from rmbg.models import birefnet, deform, swin
    from rmbg.models.deform_ops import pair

    _define_op()

    def as_op(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):  # type: ignore[no-untyped-def]
        args = (list(pair(stride)), list(pair(padding)), list(pair(dilation)))
        # plain ints: the trace keeps them as constants (a traced size would become a Shape node)
        shapes = [int(s) for t in (input, offset, weight) for s in t.shape]
        return torch.ops.rmbg_export.deform_conv2d(input, offset, weight, bias, *args, mask, shapes)

    def authors_head(self, image, p1):  # type: ignore[no-untyped-def]
        full = F.interpolate(p1, size=image.shape[2:], mode="bilinear", align_corners=True)
        return self.conv_out1(torch.cat([full, self.ipt_blk1(image)], dim=1))

    layer = swin.BasicLayer.forward

    def sized(self, x, h, w):  # type: ignore[no-untyped-def]
        # the map's size as constants: traced, the window padding's size arithmetic
        # exported wrong (ONNX Runtime then met 252 rows where 259 were padded)
        return layer(self, x, int(h), int(w))

    saved = deform.deform_conv2d, birefnet.Decoder._full_size_logits
    deform.deform_conv2d, birefnet.Decoder._full_size_logits, swin.BasicLayer.forward = as_op, authors_head, sized
    try:
        yield
    finally:
        deform.deform_conv2d, birefnet.Decoder._full_size_logits = saved
        swin.BasicLayer.forward = layer


class _Last(torch.nn.Module):
    """The network with one output: BiRefNet's final logits (index -1) or IS-Net's first side map (0, 0)."""

    def __init__(self, net: torch.nn.Module, path: tuple[int, ...]):
        super().__init__()
        self.net, self.path = net, path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: Any = self.net(x)
        for index in self.path:
            out = out[index]
        return out


def _export(module: torch.nn.Module, path: Path, opset: int) -> Path:
    part = Path(str(path) + ".part")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks
        torch.onnx.export(
            module.eval(),
            torch.zeros(1, 3, SIZE, SIZE),
            str(part),
            input_names=["input_image"],
            output_names=["output_image"],
            opset_version=opset,
            dynamo=False,
        )
    os.replace(part, path)
    return path


def birefnet_lite(weights: Path | None = None, out: Path | None = None) -> tuple[Path, Path]:
    """(safetensors, onnx) of BiRefNet_lite with deterministic weights; the ONNX file made once."""
    from safetensors.torch import load_file

    from rmbg.models.birefnet import build_birefnet
    from rmbg.models.specs import BIREFNET_VARIANTS

    weights = weights or speed_setup.deterministic_weights("birefnet-lite")
    out = (
        out or speed_setup.bench_cache() / f"birefnet-lite-authors-opset{BIREFNET_OPSET}-torch{torch.__version__}.onnx"
    )
    if not out.is_file():
        order = BIREFNET_VARIANTS["birefnet-lite"].patch_order
        net = build_birefnet(attention="plain", backbone="swin_t", patch_order=order)
        net.load_state_dict(load_file(str(weights)), strict=True)
        with _exportable_birefnet():
            _export(_Last(net, (-1,)), out, BIREFNET_OPSET)
    return weights, out


def isnet_general(out: Path | None = None) -> Path:
    """IS-Net general's layout (isnet-general-use.onnx) with the deterministic RMBG-1.4 weights."""
    from safetensors.torch import load_file

    from rmbg.models.isnet import build_isnet

    out = out or speed_setup.bench_cache() / f"isnet-general-use-opset{ISNET_OPSET}-torch{torch.__version__}.onnx"
    if not out.is_file():
        net = build_isnet()
        net.load_state_dict(load_file(str(speed_setup.rmbg14_files()["safetensors"])), strict=True)
        _export(_Last(net, (0, 0)), out, ISNET_OPSET)
    return out


def operators(path: Path) -> dict[str, int]:
    """How many nodes of each ONNX operator the file has."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
