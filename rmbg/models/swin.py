"""Swin Transformer v1 backbone (the `bb.*` part of RMBG-2.0), written from
the Swin Transformer paper and the RMBG-2.0 checkpoint (notes: docs/architecture.md).

Swin-L: embed 192, depths [2, 2, 18, 2], heads [6, 12, 24, 48], window 12,
patch 4, MLP ratio 4, qkv bias, LayerNorm eps 1e-5, exact GELU. Features are
zero-padded to a multiple of the window before windowing and cropped back;
odd blocks roll by -window/2 and mask cross-region pairs with -100.
`relative_position_index` is a persistent int64 buffer because the
checkpoint stores it.

Attention runs through torch's scaled_dot_product_attention with the relative
position bias (plus the shift mask) as attn_mask, or, with
`attention="plain"`, as softmax(q k^T * scale + bias + mask) v written out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .capture import capturing
from .swin_windows import relative_position_index, shift_attention_mask, window_partition, window_reverse

ATTENTION_MODES = ("sdpa", "plain")
_MAX_MASK_ELEMENTS = 1 << 22  # attention-mask elements built at once (16 MB in fp32)
_MAX_TOKENS = 1 << 13  # tokens through qkv and attention at once (Swin-L's first stage: 18 MB of q, k, v)
_MAX_HIDDEN_ELEMENTS = 1 << 22  # MLP hidden elements at once (16 MB in fp32)


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def residual(self, x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """x + self(norm(x)) for tokens x [B, L, C].

        Every step is per token, so without autograd it runs a block of
        tokens at a time on a CPU (the GELU in place everywhere): the normed
        map and the 4x-wide hidden map exist for one block, not for the whole
        image (Swin-L's first stage at 1024²: 48 + 2 x 192 MB before, 16 MB
        now). The same per-token sums, grouped into blocks of rows.
        """
        if torch.is_grad_enabled() or capturing():  # a captured graph takes the whole map (rmbg.models.capture)
            return x + self(norm(x))
        flat = x.reshape(-1, x.shape[-1])
        rows = flat.shape[0]
        # a GPU keeps whole-map products
        step = max(1, _MAX_HIDDEN_ELEMENTS // self.fc1.out_features) if x.device.type == "cpu" else rows
        out: torch.Tensor | None = None
        for start in range(0, rows, step):
            part = flat[start : start + step]
            hidden = torch.ops.aten.gelu_(self.fc1(norm(part)), approximate=self.act.approximate)
            y = self.fc2(hidden)
            del hidden
            if out is None:
                out = flat.new_empty((rows, y.shape[-1]), dtype=torch.promote_types(part.dtype, y.dtype))
            torch.add(part, y, out=out[start : start + step])
        assert out is not None
        return out.view(x.shape[:-1] + out.shape[-1:])


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a relative position bias."""

    def __init__(self, dim: int, window: int, num_heads: int, attention: str = "sdpa"):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.attention = attention
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=True)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        """[heads, N, N] bias gathered from the table."""
        n = self.window * self.window
        index = self.get_buffer("relative_position_index")
        bias = self.relative_position_bias_table[index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B*nW, N, C]; mask [nW, N, N] or None -> [B*nW, N, C].

        A block of windows at a time, from qkv to proj: the attention mask is
        built for one block, never for all windows (for Swin-L's first stage
        at 1024² the whole [484, 6, 144, 144] mask is 241 MB in fp32, a block
        of 33 windows 16 MB), and on a CPU so are q, k, v (151 MB for all
        windows there, 18 MB for a block of 56).
        The mask is 4-D ([windows, heads, N, N]) so SDPA keeps its fused
        CPU/CUDA kernels (a 5-D query falls back to the unfused maths, 3.5x
        slower on CPU).
        """
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        bw, n, _ = x.shape
        nw = bw if mask is None else mask.shape[0]
        step = max(1, _MAX_TOKENS // n) if x.device.type == "cpu" else bw  # a GPU keeps whole-map products
        if capturing():  # one image's windows at once in a captured graph (rmbg.models.capture)
            step = nw
        elif mask is not None:
            step = min(step, max(1, _MAX_MASK_ELEMENTS // (self.num_heads * n * n)))
        bias = self.position_bias().unsqueeze(0)  # [1, heads, N, N]
        out: torch.Tensor | None = None
        for first in range(0, bw, nw):  # each image's windows meet the mask rows 0..nW-1
            for start in range(0, nw, step):
                stop = min(nw, start + step)
                rows = slice(first + start, first + stop)
                y = self._windows(x[rows], bias if mask is None else bias + mask[start:stop].unsqueeze(1))
                if out is None:
                    if stop - start == bw:
                        return y
                    out = y.new_empty((bw,) + y.shape[1:])
                out[rows] = y
        assert out is not None
        return out

    def _windows(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attention within the windows x [w, N, C]; bias [1 or w, heads, N, N] added to the scores."""
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [w, heads, N, d]
        if self.attention == "sdpa":
            mask = bias.to(q.dtype)
            if q.device.type != "cpu":  # CUDA's fused kernels take a mask with rows of stride 1, else the maths
                mask = mask.contiguous()
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            out = ((q * self.scale) @ k.transpose(-2, -1) + bias).softmax(dim=-1) @ v
        del qkv, q, k, v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinTransformerBlock(nn.Module):
    """x + W-MSA(norm1 x) (shifted when shift > 0), then x + MLP(norm2 x)."""

    def __init__(
        self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float = 4.0, attention: str = "sdpa"
    ):
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, attention)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B, H*W, C] tokens of an h x w map; mask from shift_attention_mask (used if shifted)."""
        b, _, c = x.shape
        ws = self.window
        y = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))  # zeros after the norm, as in Swin
        hp, wp = h + pad_b, w + pad_r
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, ws), mask if self.shift > 0 else None), ws, hp, wp)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y[:, :h, :w, :].reshape(b, h * w, c)
        del y
        return self.mlp.residual(x, self.norm2)


class PatchMerging(nn.Module):
    """2x2 token merge: cat(x0, x1, x2, x3) -> LayerNorm(4C) -> Linear(4C -> 2C, no bias)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """x [B, H*W, C] -> [B, ceil(H/2)*ceil(W/2), 2C]."""
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x0 = x[:, 0::2, 0::2, :]  # even rows, even cols
        x1 = x[:, 1::2, 0::2, :]  # odd rows, even cols
        x2 = x[:, 0::2, 1::2, :]  # even rows, odd cols
        x3 = x[:, 1::2, 1::2, :]  # odd rows, odd cols
        x = torch.cat([x0, x1, x2, x3], dim=-1).view(b, -1, 4 * c)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    """One Swin stage: `depth` blocks alternating shift 0 / window//2, then an optional merge."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int,
        downsample: bool,
        mlp_ratio: float = 4.0,
        attention: str = "sdpa",
    ):
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, num_heads, window, 0 if i % 2 == 0 else self.shift, mlp_ratio, attention)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Returns (stage output [B, h*w, C], next-stage input, next h, next w)."""
        hp = -(-h // self.window) * self.window
        wp = -(-w // self.window) * self.window
        mask = shift_attention_mask(hp, wp, self.window, self.shift, x.device).to(x.dtype)
        for block in self.blocks:
            x = block(x, h, w, mask)
        if self.downsample is None:
            return x, x, h, w
        return x, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2


class PatchEmbed(nn.Module):
    """Zero-pad to a multiple of the patch, Conv(k=s=patch), LayerNorm over channels."""

    def __init__(self, patch: int, in_chans: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> [B, dim, ceil(H/patch), ceil(W/patch)]."""
        h, w = x.shape[2:]
        x = F.pad(x, (0, (-w) % self.patch, 0, (-h) % self.patch))
        x = self.proj(x)
        b, c, hh, ww = x.shape
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(b, c, hh, ww)


class SwinTransformer(nn.Module):
    """Swin v1 backbone returning the four normed stage maps [B, C_i, H/4/2^i, W/4/2^i]."""

    def __init__(
        self,
        embed_dim: int = 192,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (6, 12, 24, 48),
        window: int = 12,
        patch: int = 4,
        mlp_ratio: float = 4.0,
        in_chans: int = 3,
        attention: str = "sdpa",
    ):
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        self.patch_embed = PatchEmbed(patch, in_chans, embed_dim)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        self.num_features = dims
        self.layers = nn.ModuleList(
            BasicLayer(dims[i], depths[i], num_heads[i], window, i < len(depths) - 1, mlp_ratio, attention)
            for i in range(len(depths))
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def set_attention(self, attention: str) -> None:
        """Switch every window attention to "sdpa" or "plain" (same weights, same maths)."""
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        for module in self.modules():
            if isinstance(module, WindowAttention):
                module.attention = attention

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, 3, H, W] (normalised image) -> 4 maps with strides 4, 8, 16, 32."""
        x = self.patch_embed(x)
        h, w = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)
        outs = []
        for i, layer in enumerate(self.layers):
            out, x, nh, nw = layer(x, h, w)
            out = getattr(self, f"norm{i}")(out)
            outs.append(out.view(-1, h, w, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
            h, w = nh, nw
        return outs


# Backbones of BiRefNet's family (Swin-L and Swin-T), as data.
SWIN_CONFIGS: dict[str, dict] = {
    "swin_l": {"embed_dim": 192, "depths": (2, 2, 18, 2), "num_heads": (6, 12, 24, 48), "window": 12},
    "swin_t": {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "window": 7},
}


def swin_v1(name: str = "swin_l", attention: str = "sdpa") -> SwinTransformer:
    """A Swin v1 backbone by name: "swin_l" (RMBG-2.0, BiRefNet) or "swin_t" (BiRefNet_lite)."""
    try:
        config = SWIN_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown Swin backbone {name!r}; known: {', '.join(SWIN_CONFIGS)}") from None
    return SwinTransformer(**config, attention=attention)
