"""BiRefNet (the RMBG-2.0 network and BiRefNet's open family), written from
the released checkpoints and papers (notes in docs/architecture.md, "Our networks").

The backbone is a parameter: Swin-L gives RMBG-2.0 / BiRefNet (754 tensors,
220,176,498 parameters), Swin-T gives BiRefNet_lite (586 tensors, 44,313,720
parameters); every decoder width follows from the backbone's channels.
Attribute names follow the checkpoints, so the official model.safetensors
files load with load_state_dict(strict=True).
Every decoder BatchNorm is kept (the reference config has batch_size 4).
The decoder's building blocks live in rmbg.models.birefnet_blocks.

Input: [B, 3, H, W] ImageNet-normalised RGB, H and W multiples of 32
(1024 x 1024 for the official pipeline). Output at eval: the list
[m4, m3, m2, p1_out] of logits at H/32, H/16, H/8 and H; the mask is
sigmoid(p1_out).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .birefnet_blocks import GDT_CHANNELS, BasicDecBlk, BasicLatBlk, SimpleConvs, gdt_convs, one_by_one
from .swin import SwinTransformer, swin_v1
from .swin_windows import add_into


def lateral_channels(backbone: SwinTransformer) -> tuple[int, int, int, int]:
    """Backbone stage channels doubled by the two-scale 'cat' input, deepest first:
    [x4, x3, x2, x1] = (3072, 1536, 768, 384) for Swin-L, (1536, 768, 384, 192) for Swin-T."""
    d1, d2, d3, d4 = (2 * c for c in backbone.num_features)
    return (d4, d3, d2, d1)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear, align_corners=True (all BiRefNet resizes); identity when the size matches."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


PATCH_ORDERS = ("column", "channel")


def image_patches(x: torch.Tensor, size: Sequence[int], order: str = "column") -> torch.Tensor:
    """P(s): cut x [B, C, H, W] into s_h x s_w tiles and stack them on channels.

    order "column" (RMBG-2.0's code, `get_patches_batch`): tile by tile,
    columns left to right and top to bottom within a column, each tile's C
    channels together: channel (j*nh + i)*C + c for column j, row i.
    order "channel" (BiRefNet's code since 2024-11-05, einops
    'b c (hg h) (wg w) -> b (c hg wg) h w'): colour channel first, then tiles
    row by row: channel c*nh*nw + i*nw + j. The checkpoints' tensors are the
    same shapes either way; the order is the one their inference code uses.
    H and W must be multiples of the tile. Result: [B, C*(H/s_h)*(W/s_w), s_h, s_w].
    """
    b, c, h, w = x.shape
    sh, sw = int(size[0]), int(size[1])
    if h % sh or w % sw:
        raise ValueError(f"image {h}x{w} is not a multiple of the {sh}x{sw} feature map")
    nh, nw = h // sh, w // sw
    grid = x.reshape(b, c, nh, sh, nw, sw)
    if order == "column":
        tiles = grid.permute(0, 4, 2, 1, 3, 5)  # [B, nw, nh, C, sh, sw]
    elif order == "channel":
        tiles = grid.permute(0, 1, 2, 4, 3, 5)  # [B, C, nh, nw, sh, sw]
    else:
        raise ValueError(f"patch order must be one of {PATCH_ORDERS}, got {order!r}")
    return tiles.reshape(b, nw * nh * c, sh, sw)


class Decoder(nn.Module):
    """BiRefNet decoder: image patches, lateral adds,
    multi-scale side logits and gradient attention."""

    def __init__(self, channels: Sequence[int], patch_order: str = "column"):
        super().__init__()
        if patch_order not in PATCH_ORDERS:
            raise ValueError(f"patch order must be one of {PATCH_ORDERS}, got {patch_order!r}")
        self.patch_order = patch_order
        c4, c3, c2, c1 = channels
        self.ipt_blk5 = SimpleConvs(3 * 32**2, c4 // 8)
        self.ipt_blk4 = SimpleConvs(3 * 16**2, c4 // 8)
        self.ipt_blk3 = SimpleConvs(3 * 8**2, c3 // 8)
        self.ipt_blk2 = SimpleConvs(3 * 4**2, c2 // 8)
        self.ipt_blk1 = SimpleConvs(3, c1 // 8)
        self.decoder_block4 = BasicDecBlk(c4 + c4 // 8, c3)
        self.decoder_block3 = BasicDecBlk(c3 + c4 // 8, c2)
        self.decoder_block2 = BasicDecBlk(c2 + c3 // 8, c1)
        self.decoder_block1 = BasicDecBlk(c1 + c2 // 8, c1 // 2)
        self.conv_out1 = one_by_one(c1 // 2 + c1 // 8)
        self.lateral_block4 = BasicLatBlk(c3, c3)
        self.lateral_block3 = BasicLatBlk(c2, c2)
        self.lateral_block2 = BasicLatBlk(c1, c1)
        self.conv_ms_spvn_4 = nn.Conv2d(c3, 1, 1)
        self.conv_ms_spvn_3 = nn.Conv2d(c2, 1, 1)
        self.conv_ms_spvn_2 = nn.Conv2d(c1, 1, 1)
        self.gdt_convs_4 = gdt_convs(c3)
        self.gdt_convs_3 = gdt_convs(c2)
        self.gdt_convs_2 = gdt_convs(c1)
        # gdt_convs_pred_* only serve training; kept because the checkpoint has them.
        self.gdt_convs_pred_4 = one_by_one(GDT_CHANNELS)
        self.gdt_convs_pred_3 = one_by_one(GDT_CHANNELS)
        self.gdt_convs_pred_2 = one_by_one(GDT_CHANNELS)
        self.gdt_convs_attn_4 = one_by_one(GDT_CHANNELS)
        self.gdt_convs_attn_3 = one_by_one(GDT_CHANNELS)
        self.gdt_convs_attn_2 = one_by_one(GDT_CHANNELS)

    def _decode(self, block: BasicDecBlk, p: torch.Tensor, image: torch.Tensor, patches: SimpleConvs) -> torch.Tensor:
        """block's conv_in (through bn_in and ReLU) over cat([p, patches(P(p's size))])."""
        size = p.shape[2:]
        return block.entry([p, patches(_resize(image_patches(image, size, self.patch_order), size))])

    @staticmethod
    def _lateral(block: BasicLatBlk, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """resize(p, x's size) + block(x); x is released once its conv has read it."""
        out = block(x)
        size = x.shape[2:]
        del x  # the caller passed the last reference (feats.pop())
        return add_into(out, _resize(p, size))

    @staticmethod
    def _gradient_attention(p: torch.Tensor, convs: nn.Module, attn: nn.Module) -> torch.Tensor:
        return p * torch.sigmoid(attn(convs(p)))

    def forward(self, image: torch.Tensor, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """image [B,3,H,W]; feats [x1, x2, x3, x4], the fused backbone maps (strides 4..32;
        x4 squeezed) -> 4 logits.

        feats is emptied as the decoder goes: each map is dropped once its
        lateral conv has read it, and each decoder block's big input once its
        conv_in has (at 1024² Swin-L's x1 and the last block's input are 96 MB
        each; holding them to the end raised the live peak by about 300 MB).
        """
        if len(feats) != 4:
            raise ValueError(f"the decoder takes 4 feature maps, got {len(feats)}")
        p = self._decode(self.decoder_block4, feats.pop(), image, self.ipt_blk5)
        p4 = self.decoder_block4.tail(p)
        m4 = self.conv_ms_spvn_4(p4)
        p4 = self._gradient_attention(p4, self.gdt_convs_4, self.gdt_convs_attn_4)

        p = self._lateral(self.lateral_block4, feats.pop(), p4)
        del p4
        p = self._decode(self.decoder_block3, p, image, self.ipt_blk4)
        p3 = self.decoder_block3.tail(p)
        m3 = self.conv_ms_spvn_3(p3)
        p3 = self._gradient_attention(p3, self.gdt_convs_3, self.gdt_convs_attn_3)

        p = self._lateral(self.lateral_block3, feats.pop(), p3)
        del p3
        p = self._decode(self.decoder_block2, p, image, self.ipt_blk3)
        p2 = self.decoder_block2.tail(p)
        m2 = self.conv_ms_spvn_2(p2)
        p2 = self._gradient_attention(p2, self.gdt_convs_2, self.gdt_convs_attn_2)

        p = self._lateral(self.lateral_block2, feats.pop(), p2)
        del p2
        p = self._decode(self.decoder_block1, p, image, self.ipt_blk2)
        p1 = self.decoder_block1.tail(p)
        del p
        return [m4, m3, m2, self._full_size_logits(image, p1)]

    def _full_size_logits(self, image: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        """conv_out1(cat[resize(p1, image size), ipt_blk1(image)]), computed without either big map.

        conv_out1 is a 1x1 conv, so its p1 half commutes with the bilinear
        resize (whose weights sum to 1): project p1's channels to one at H/4,
        then resize that one channel. Its other half is linear all the way
        from the image (ipt_blk1 is two convs with no activation between): it
        folds into 9 image convolutions to one channel each, shifted and
        summed. Same sums, grouped differently: at 1024² this skips a 96- or
        192-channel map at full size and both of ipt_blk1's 64-channel convs.
        """
        head: nn.Conv2d = self.conv_out1[0]  # type: ignore[assignment]  # a Sequential of one 1x1 conv
        first, last = self.ipt_blk1.conv1, self.ipt_blk1.conv_out
        assert head.bias is not None and first.bias is not None and last.bias is not None
        weight = head.weight.flatten(1)  # [1, c1//2 + c1//8]
        w_p1, w_ipt = weight[:, : p1.shape[1]], weight[:, p1.shape[1] :]
        low = F.conv2d(p1, w_p1[:, :, None, None])
        # head ∘ last: one 3x3 conv to one channel; its tap t reads first's output
        # (zero outside the image) one shift away, and first's output projected
        # on tap t is itself a 3x3 conv of the image: 9 small maps, shifted, summed.
        taps = torch.einsum("ko,oiyx->yxi", w_ipt, last.weight).reshape(-1, first.out_channels)  # [9, 64]
        z = F.conv2d(image, torch.einsum("ti,ichw->tchw", taps, first.weight), taps @ first.bias, padding=first.padding)
        h, w = image.shape[2:]
        kh, kw = last.kernel_size
        z = F.pad(z, (kw // 2, kw // 2, kh // 2, kh // 2))  # last's own zero padding ("same")
        out = _resize(low, image.shape[2:]) + (head.bias + w_ipt @ last.bias).view(1, 1, 1, 1)
        for t in range(kh * kw):
            i, j = divmod(t, kw)
            out = out + z[:, t : t + 1, i : i + h, j : j + w]
        return out


class BiRefNet(nn.Module):
    """A Swin backbone run at full and half scale ('cat'), context fusion, squeeze, decoder.

    The backbone decides every width: Swin-L gives RMBG-2.0 / BiRefNet, Swin-T BiRefNet_lite."""

    def __init__(self, backbone: SwinTransformer | None = None, patch_order: str = "column"):
        super().__init__()
        self.bb = backbone if backbone is not None else swin_v1("swin_l")
        channels = lateral_channels(self.bb)
        self.squeeze_module = nn.Sequential(BasicDecBlk(sum(channels[1:]) + channels[0], channels[0]))
        self.decoder = Decoder(channels, patch_order)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B,3,H,W] -> [x1, x2, x3, x4] (Swin-L: 384/768/1536/5760 channels; x4 before squeeze)."""
        h, w = x.shape[2:]
        full = self.bb(x)
        half = self.bb(F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=True))
        feats = []
        while full:  # each scale's two maps are released as their concatenation is made
            f, g = full.pop(0), half.pop(0)
            feats.append(torch.cat([f, _resize(g, f.shape[2:])], dim=1))
            del f, g
        size = feats[3].shape[2:]
        feats[3] = torch.cat([*(_resize(f, size) for f in feats[:3]), feats[3]], dim=1)
        return feats

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B,3,H,W] normalised, H, W multiples of 32 -> [m4, m3, m2, p1_out] logits."""
        if self.training:
            raise NotImplementedError("only inference is implemented; call .eval() first")
        feats = self.encode(x)
        feats[3] = self.squeeze_module(feats[3])
        return self.decoder(x, feats)  # the decoder empties feats as it goes


def build_birefnet(attention: str = "sdpa", backbone: str = "swin_l", patch_order: str = "column") -> BiRefNet:
    """BiRefNet with random weights, in eval mode, float32.

    backbone: "swin_l" (RMBG-2.0 and BiRefNet's Swin-L weights) or "swin_t" (BiRefNet_lite).
    attention: "sdpa" (torch's fused kernel) or "plain" (written-out softmax).
    patch_order: "column" (RMBG-2.0's code) or "channel" (BiRefNet's current code): see image_patches.
    Load the official weights with `load_state_dict(state, strict=True)`.
    """
    return BiRefNet(swin_v1(backbone, attention), patch_order).float().eval()
