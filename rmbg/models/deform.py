"""Modulated deformable convolution (DCNv2) in pure PyTorch, and the
`DeformableConv2d` module of the RMBG-2.0 decoder (models.md section 2.6).

Semantics (same as torchvision.ops.deform_conv2d with one weight group):
for output pixel (ho, wo) and kernel tap (i, j), tap index k = i*kw + j, the
input is sampled bilinearly at

    y = ho*stride_h - pad_h + i*dil_h + offset[:, 2k]
    x = wo*stride_w - pad_w + j*dil_w + offset[:, 2k + 1]

(offsets are (y, x) pairs per tap, in input pixels), with zeros outside the
image; the sample is multiplied by mask[:, k] and the products are summed
with the conv weight.  Offsets may come in G "offset groups": then offset has
2*G*kh*kw channels and group g steers input channels [g*C/G, (g+1)*C/G).

torchvision's compiled op is used when torchvision imports and runs (CPU-only
torch wheels usually lack it); otherwise the pure version below, which samples
all taps with one grid_sample call per chunk and reduces them with a matmul.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

IntPair = Union[int, Tuple[int, int]]

# Upper bound on the sampled-column buffer of the pure version (elements);
# taps are processed in chunks so one chunk stays below it (~256 MB fp32).
_MAX_COLUMN_ELEMENTS = 1 << 26


def _pair(value: IntPair) -> Tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


@functools.lru_cache(maxsize=1)
def torchvision_deform_conv2d() -> Optional[Callable[..., torch.Tensor]]:
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
    bias: Optional[torch.Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Modulated deformable conv; torchvision's op when available, else pure PyTorch.

    Shapes: input [B, C, H, W]; offset [B, 2*G*kh*kw, Ho, Wo]; weight
    [O, C, kh, kw]; mask [B, G*kh*kw, Ho, Wo] or None (all ones); bias [O].
    Returns [B, O, Ho, Wo].
    """
    tv_deform = torchvision_deform_conv2d()
    if tv_deform is not None:
        if input.dtype == torch.bfloat16:
            # torchvision's kernels have no bf16 ("deformable_im2col not
            # implemented for 'BFloat16'", seen on CUDA): run it in fp32.
            out = tv_deform(
                input.float(), offset.float(), weight.float(), None if bias is None else bias.float(),
                stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation),
                mask=None if mask is None else mask.float(),
            )
            return out.to(torch.bfloat16)
        return tv_deform(
            input, offset, weight, bias,
            stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), mask=mask,
        )
    return deform_conv2d_pure(input, offset, weight, bias, stride, padding, dilation, mask)


def _sample_positions(
    offset: torch.Tensor,
    kernel: Tuple[int, int],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Absolute sampling rows and columns, each [B, G, K, Ho, Wo], in input pixels."""
    b, _, ho, wo = offset.shape
    kh, kw = kernel
    k = kh * kw
    off = offset.view(b, -1, k, 2, ho, wo)
    dev, dt = offset.device, offset.dtype
    base_y = torch.arange(ho, device=dev, dtype=dt) * stride[0] - padding[0]
    base_x = torch.arange(wo, device=dev, dtype=dt) * stride[1] - padding[1]
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dilation[1]).repeat(kh)
    rows = base_y.view(1, 1, 1, ho, 1) + tap_y.view(1, 1, k, 1, 1) + off[:, :, :, 0]
    cols = base_x.view(1, 1, 1, 1, wo) + tap_x.view(1, 1, k, 1, 1) + off[:, :, :, 1]
    return rows, cols


def deform_conv2d_pure(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Pure-PyTorch modulated deformable conv (DCNv2); same contract as `deform_conv2d`.

    fp16/bf16 inputs are computed in fp32 and cast back: in half precision the
    sampling positions themselves would be off by up to ~0.1 px at 256 px.
    """
    if input.dtype in (torch.float16, torch.bfloat16):
        out = deform_conv2d_pure(
            input.float(), offset.float(), weight.float(), None if bias is None else bias.float(),
            stride, padding, dilation, None if mask is None else mask.float(),
        )
        return out.to(input.dtype)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = input.shape
    out_ch, c_w, kh, kw = weight.shape
    if c_w != c:
        raise ValueError(f"weight expects {c_w} input channels, input has {c} (groups>1 unsupported)")
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    if groups < 1 or offset.shape[1] != 2 * groups * k or c % groups:
        raise ValueError(f"offset has {offset.shape[1]} channels; need 2*G*{k} with G dividing {c}")
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if offset.shape[0] != b or offset.shape[2:] != (ho, wo):
        raise ValueError(f"offset shape {tuple(offset.shape)} does not match output {ho}x{wo}")
    if mask is not None and mask.shape != (b, groups * k, ho, wo):
        raise ValueError(f"mask shape {tuple(mask.shape)}, expected {(b, groups * k, ho, wo)}")

    rows, cols = _sample_positions(offset.to(input.dtype), (kh, kw), stride, padding, dilation)
    # grid_sample with align_corners=False maps pixel p to (2p + 1) / size - 1;
    # padding_mode="zeros" reads zeros outside, exactly as DCNv2 does.
    grid = torch.stack(((2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1), dim=-1)
    grid = grid.reshape(b * groups, k, ho, wo, 2)
    feats = input.reshape(b * groups, c // groups, h, w)
    modulation = None if mask is None else mask.to(input.dtype).view(b, groups, 1, k, ho * wo)
    w_mat = weight.reshape(out_ch, c, k)

    out = input.new_zeros(b, out_ch, ho * wo)
    chunk = max(1, _MAX_COLUMN_ELEMENTS // max(1, b * c * ho * wo))
    for start in range(0, k, chunk):
        stop = min(k, start + chunk)
        n = stop - start
        g = grid[:, start:stop].reshape(b * groups, n * ho, wo, 2)
        sampled = F.grid_sample(feats, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.view(b, groups, c // groups, n, ho * wo)
        if modulation is not None:
            sampled = sampled * modulation[:, :, :, start:stop]
        columns = sampled.reshape(b, c * n, ho * wo)
        out = out + torch.matmul(w_mat[:, :, start:stop].reshape(out_ch, c * n), columns)
    if bias is not None:
        out = out + bias.view(1, out_ch, 1)
    return out.view(b, out_ch, ho, wo)


class DeformableConv2d(nn.Module):
    """Deformable conv block of the BiRefNet decoder (models.md section 2.6).

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
        self.stride = _pair(stride)
        self.padding = _pair(padding)
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
            x, offset, self.regular_conv.weight, self.regular_conv.bias,
            stride=self.stride, padding=self.padding, mask=modulator,
        )
