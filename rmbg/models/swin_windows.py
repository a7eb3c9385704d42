"""Swin's window plumbing, shape in and shape out: cutting features into
windows and back, the relative-position index the checkpoint stores, the
shifted-window attention mask, and an in-place add that keeps autograd
honest. The attention itself is rmbg.models.swin.
"""

from __future__ import annotations

import torch

MASK_VALUE = -100.0  # what a cross-region pair of a shifted window adds to its attention logit


def add_into(acc: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """acc + other, written into acc when autograd is off and that keeps the
    result's dtype (the same sums: addition commutes), else a new tensor
    (under autocast, say, a bf16 acc meeting an fp32 map). acc must be a
    fresh tensor of the caller's own."""
    keeps_dtype = torch.promote_types(acc.dtype, other.dtype) == acc.dtype  # a dtype dynamo can trace
    if not torch.is_grad_enabled() and keeps_dtype and acc.shape == other.shape:
        return acc.add_(other)
    return acc + other


def relative_position_index(window: int) -> torch.Tensor:
    """[window², window²] int64: index into the (2w-1)² bias table for each token pair."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)  # [2, N]: row, col of each token
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] (H, W multiples of window) -> [B * nW, window², C]."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """[B * nW, window², C] -> [B, H, W, C]; inverse of window_partition."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_attention_mask(hp: int, wp: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """[nW, N, N] float mask for shifted windows on an hp x wp padded map: 0 or -100.

    The shifted map's rows (and columns) fall in three regions, cut at -window
    and -shift; a window's tokens from different regions may not attend to each
    other. Made from aranges alone (no slice assignments), so a captured graph
    folds it into one constant (assigned slice by slice it was ~240 OpenVINO
    operations per mask, tests/test_openvino.py).
    """

    def region(size: int) -> torch.Tensor:  # [size]: 0 before -window, 1 up to -shift, 2 after
        at = torch.arange(size, device=device)
        if shift == 0:  # no shift: one region
            return torch.zeros_like(at)
        return (at >= size - window).long() + (at >= size - shift).long()

    ids = (region(hp).view(hp, 1) * 3 + region(wp)).view(1, hp, wp, 1)
    ids = window_partition(ids, window).squeeze(-1)  # [nW, N]
    differs = ids.unsqueeze(1) != ids.unsqueeze(2)
    return torch.zeros(differs.shape, device=device).masked_fill(differs, MASK_VALUE)
