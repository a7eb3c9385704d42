"""Modulated deformable convolution (DCNv2) in pure PyTorch, and the
`DeformableConv2d` module of the RMBG-2.0 decoder (docs/architecture.md, "Our networks").

Semantics (same as torchvision.ops.deform_conv2d with one weight group):
for output pixel (ho, wo) and kernel tap (i, j), tap index k = i*kw + j, the
input is sampled bilinearly at

    y = ho*stride_h - pad_h + i*dil_h + offset[:, 2k]
    x = wo*stride_w - pad_w + j*dil_w + offset[:, 2k + 1]

(offsets are (y, x) pairs per tap, in input pixels), with zeros outside the
image; the sample is multiplied by mask[:, k] and the products are summed
with the conv weight.  Offsets may come in G "offset groups": then offset has
2*G*kh*kw channels and group g steers input channels [g*C/G, (g+1)*C/G).

Three implementations, one per place, each chosen by measurement:
- CPU: `deform_conv2d_pure`, except while the network is captured as a graph
  (rmbg.models.capture; then `deform_conv2d_grid`). It gathers the four
  bilinear corners of every (pixel, tap) from a channels-last copy of the
  input with one weighted `embedding_bag` (the modulation folded into the corner weights) and reduces
  the columns with one matrix product per block of output pixels. It is 4-5x
  faster than torchvision's CPU kernel (decoder block 1, 64 channels at 256²,
  7x7 taps: 1.2 s against 6.2 s on 2 cores, torch 2.14.1, torchvision 0.29.1).
- GPU: torchvision's compiled op when torchvision imports and runs, else
  `deform_conv2d_grid` (one `grid_sample` over all taps, in chunks only past
  a memory bound, then a matrix product), 2.5x faster there than the gather
  version. While a CUDA graph is
  captured (rmbg.providers.local.cuda_graph) always the grid version: replays
  of torchvision's op gave wrong mattes (RMBG-2.0 in fp32 77 grey levels off
  on average, seen on an H200 with torchvision 0.26).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from .capture import capturing
from .deform_ops import IntPair, deform_conv2d_grid, deform_conv2d_pure, pair


@functools.lru_cache(maxsize=1)
def torchvision_deform_conv2d() -> Callable[..., torch.Tensor] | None:
    """torchvision.ops.deform_conv2d if torchvision imports and its op runs, else None."""
    try:
        from torchvision.ops import deform_conv2d as tv_deform  # type: ignore[import-not-found]
    except Exception:  # ImportError, or a broken install raising at import
        return None
    try:  # the Python wrapper can import while the compiled op is missing
        x = torch.zeros(1, 1, 2, 2)
        tv_deform(x, torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 1, 1), mask=torch.ones(1, 1, 2, 2))
    except Exception:
        return None
    return tv_deform


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated deformable conv by the implementation for the input's device (module doc).

    Shapes: input [B, C, H, W]; offset [B, 2*G*kh*kw, Ho, Wo]; weight
    [O, C, kh, kw]; mask [B, G*kh*kw, Ho, Wo] or None (all ones); bias [O].
    Returns [B, O, Ho, Wo].
    """
    if input.device.type == "cpu" and not capturing():  # a captured graph: grid_sample (rmbg.models.capture)
        return deform_conv2d_pure(input, offset, weight, bias, stride, padding, dilation, mask)
    tv_deform = torchvision_deform_conv2d()
    if tv_deform is not None and not (input.is_cuda and torch.cuda.is_current_stream_capturing()):
        return run_torchvision(tv_deform, input, offset, weight, bias, stride, padding, dilation, mask)
    return deform_conv2d_grid(input, offset, weight, bias, stride, padding, dilation, mask)


def run_torchvision(
    tv_deform: Callable[..., torch.Tensor],
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """torchvision's deform_conv2d; bf16 goes through it in fp32 (its kernels
    have no bf16: "deformable_im2col not implemented for 'BFloat16'", seen on CUDA)."""
    if input.dtype == torch.bfloat16:
        out = run_torchvision(
            tv_deform,
            input.float(),
            offset.float(),
            weight.float(),
            None if bias is None else bias.float(),
            stride,
            padding,
            dilation,
            None if mask is None else mask.float(),
        )
        return out.to(torch.bfloat16)
    return tv_deform(
        input,
        offset,
        weight,
        bias,
        stride=pair(stride),
        padding=pair(padding),
        dilation=pair(dilation),
        mask=mask,
    )


class DeformableConv2d(nn.Module):
    """Deformable conv block of the BiRefNet decoder.

    offset_conv (2*k*k channels, with bias, zero-initialised) predicts the
    (y, x) offsets; modulator_conv (k*k channels, with bias, zero-initialised)
    gives the mask 2*sigmoid(.); only regular_conv's weight (bias=False in
    RMBG-2.0) enters the modulated deformable conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.stride = pair(stride)
        self.padding = pair(padding)
        taps = kernel_size * kernel_size
        self.offset_conv = nn.Conv2d(in_channels, 2 * taps, kernel_size, stride, padding, bias=True)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)  # type: ignore[arg-type]  # made with bias=True
        self.modulator_conv = nn.Conv2d(in_channels, taps, kernel_size, stride, padding, bias=True)
        nn.init.zeros_(self.modulator_conv.weight)
        nn.init.zeros_(self.modulator_conv.bias)  # type: ignore[arg-type]  # made with bias=True
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> [B, out_channels, Ho, Wo]."""
        offset = self.offset_conv(x)
        modulator = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(
            x,
            offset,
            self.regular_conv.weight,
            self.regular_conv.bias,
            stride=self.stride,
            padding=self.padding,
            mask=modulator,
        )
