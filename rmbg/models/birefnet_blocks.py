"""BiRefNet's decoder building blocks: lateral and decoder blocks, the
deformable ASPP, the image-patch convolutions and the gradient-attention
convolutions. Attribute names follow the released checkpoints (they are the
state-dict keys), so the official weights load with strict=True; the decoder
that wires them is rmbg.models.birefnet.Decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .deform import DeformableConv2d
from .swin_windows import add_into

DEC_INTER = 64  # dec_channels_inter 'fixed'
GDT_CHANNELS = 16


class BasicLatBlk(nn.Module):
    """Lateral 1x1 conv (with bias)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SimpleConvs(nn.Module):
    """3x3 conv in->64, 3x3 conv 64->out, both with bias, no activation between."""

    def __init__(self, in_ch: int, out_ch: int, inter: int = DEC_INTER):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, inter, 3, padding=1)
        self.conv_out = nn.Conv2d(inter, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv1(x))


class _ASPPModuleDeformable(nn.Module):
    """DeformableConv2d -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, planes: int, kernel_size: int, padding: int):
        super().__init__()
        self.atrous_conv = DeformableConv2d(in_ch, planes, kernel_size, stride=1, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    """aspp1 (k1) + deformable k1/k3/k7 branches + image pooling, 1280 -> 64 channels."""

    def __init__(self, in_ch: int = DEC_INTER, out_ch: int = DEC_INTER, kernels: Sequence[int] = (1, 3, 7)):
        super().__init__()
        planes = 256
        self.aspp1 = _ASPPModuleDeformable(in_ch, planes, 1, padding=0)
        self.aspp_deforms = nn.ModuleList(_ASPPModuleDeformable(in_ch, planes, k, padding=k // 2) for k in kernels)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_ch, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(planes * (2 + len(kernels)), out_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv1(cat[aspp1, deform branches, pooled]) as a sum of per-branch products.

        conv1 is a bias-free 1x1 conv, so it splits by input channels: each
        branch meets its own slice of the weight where it lies (the deformable
        convs leave pixel-major maps, read here without a copy), and the pooled
        branch, one vector per image, adds a constant instead of being resized
        to the full map and concatenated.
        """
        b, _, h, w = x.shape
        weight = self.conv1.weight.flatten(1)  # [out, (2 + len(kernels)) * planes]
        planes = weight.shape[1] // (2 + len(self.aspp_deforms))
        pooled = self.global_avg_pool(x).flatten(1)  # [B, planes]
        acc = (pooled @ weight[:, -planes:].t()).unsqueeze(1)  # [B, 1, out]
        for i, branch in enumerate((self.aspp1, *self.aspp_deforms)):
            pixels = branch(x).permute(0, 2, 3, 1).reshape(b, h * w, planes)
            acc = acc + pixels @ weight[:, i * planes : (i + 1) * planes].t()
            del pixels  # released before the next branch's map is made (64 MB each at 256²)
        out = acc.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        return self.dropout(self.relu(self.bn1(out)))


class BasicDecBlk(nn.Module):
    """conv_in 3x3 -> bn_in -> ReLU -> ASPPDeformable -> conv_out 3x3 -> bn_out (no final ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, inter: int = DEC_INTER):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, inter, 3, padding=1)
        self.relu_in = nn.ReLU(inplace=True)
        self.dec_att = ASPPDeformable(inter, inter)
        self.conv_out = nn.Conv2d(inter, out_ch, 3, padding=1)
        # Registered after conv_out, as in the checkpoint's key order.
        self.bn_in = nn.BatchNorm2d(inter)
        self.bn_out = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.entry([x]))

    def entry(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """relu(bn_in(conv_in(cat(parts on channels)))) without the concatenation.

        conv_in splits by input channels: each part meets its own slice of
        the weight and the products are summed (the bias once). At 1024² the
        last block's input would be a 120 MB map next to the 96 MB one it is
        made of; this way neither the copy nor its conv layout exists.
        """
        weight, bias = self.conv_in.weight, self.conv_in.bias
        out: torch.Tensor | None = None
        start = 0
        for part in parts:
            stop = start + part.shape[1]
            y = F.conv2d(part, weight[:, start:stop], bias if out is None else None, padding=self.conv_in.padding)
            out = y if out is None else add_into(out, y)
            start = stop
        if out is None or start != weight.shape[1]:
            raise ValueError(f"conv_in takes {weight.shape[1]} channels, got {start}")
        return self.relu_in(self.bn_in(out))

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        """ASPP, conv_out, bn_out on entry's output."""
        return self.bn_out(self.conv_out(self.dec_att(x)))


def gdt_convs(in_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, GDT_CHANNELS, 3, padding=1), nn.BatchNorm2d(GDT_CHANNELS), nn.ReLU(inplace=True)
    )


def one_by_one(in_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, 1, 1))
