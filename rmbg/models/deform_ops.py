"""The two pure-PyTorch modulated deformable convolutions (DCNv2) behind
rmbg.models.deform.deform_conv2d (semantics in that module's doc):
`deform_conv2d_pure` (CPU: the four bilinear corners gathered with one
weighted embedding_bag per block of output pixels, then one matrix product)
and `deform_conv2d_grid` (GPU without torchvision, and captured graphs: one
grid_sample over all taps, then one matrix product).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IntPair = int | tuple[int, int]

# Upper bound on the gathered-column buffer of the pure version (elements);
# output pixels are processed in blocks so one block stays below it (16 MB fp32).
_MAX_COLUMN_ELEMENTS = 1 << 22
# The GPU version's sampled-tap buffer (elements): taps in chunks below it (~256 MB fp32).
_MAX_GRID_ELEMENTS = 1 << 26


def pair(value: IntPair) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _corner_bags(
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    pixels: slice,
    size: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the padded input table and their weights for the output pixels in `pixels`.

    size is (B, G, H, W) of the input, whose table has a one-pixel zero border
    ((H+2) x (W+2) rows per image and group); offset is [B, Ho*Wo, G, K, 2]
    (fp32), mask [B, Ho*Wo, G, K] or None. Returns (index, weight), each
    [B*n*G*K, 4]: for every (image, pixel, group, tap), in that order, the rows
    of its four bilinear corners and their weights (bilinear coefficient times
    the modulation). A sample within one pixel of the image reads the zero
    border for the corners outside it; one further out is zero (weight 0), as
    in DCNv2.
    """
    b, groups, h, w = size
    kh, kw = kernel
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    dev = offset.device
    pix = torch.arange(pixels.start, pixels.stop, device=dev)
    base_y = (pix // wo * stride[0] - padding[0]).float().view(-1, 1, 1)
    base_x = (pix % wo * stride[1] - padding[1]).float().view(-1, 1, 1)
    tap_y = (torch.arange(kh, device=dev, dtype=torch.float32) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev, dtype=torch.float32) * dilation[1]).repeat(kh)
    off = offset[:, pixels]
    y = base_y + tap_y + off[..., 0]  # [B, n, G, K], input pixels
    x = base_x + tap_x + off[..., 1]
    inside = (y > -1) & (y < h) & (x > -1) & (x < w)
    y0 = torch.floor(y).clamp_(-1, h - 1)
    x0 = torch.floor(x).clamp_(-1, w - 1)
    ly, lx = y - y0, x - x0
    row_len = w + 2
    first = torch.arange(b, device=dev).view(-1, 1, 1, 1) * groups + torch.arange(groups, device=dev).view(1, 1, -1, 1)
    first = first * ((h + 2) * row_len) + (y0.long() + 1) * row_len + (x0.long() + 1)
    corners = torch.tensor([0, 1, row_len, row_len + 1], device=dev)
    index = (first.unsqueeze(-1) + corners).view(-1, 4)
    scale = inside.float() if mask is None else mask[:, pixels] * inside
    wy = torch.stack(((1 - ly) * scale, ly * scale), dim=-1)  # [B, n, G, K, 2]
    wx = torch.stack((1 - lx, lx), dim=-1)
    weight = (wy.unsqueeze(-1) * wx.unsqueeze(-2)).view(-1, 4)  # corners (0,0), (0,1), (1,0), (1,1)
    return index, weight


def _check_shapes(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int]:
    """(offset groups G, Ho, Wo) of a valid call; ValueError naming what does not fit."""
    b, c, h, w = input.shape
    _, c_w, kh, kw = weight.shape
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
    return groups, ho, wo


def deform_conv2d_grid(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The GPU and captured-graph version (same contract as `deform_conv2d`):
    every tap sampled with one `grid_sample` over the NCHW input (the taps
    stacked along its rows), modulated, then one matrix product; taps go in
    chunks only where their samples would pass _MAX_GRID_ELEMENTS. Captured
    (torch.export), one such conv is a dozen operations plus constants. On an H100 it runs BiRefNet 2.5x faster than
    the gather version (whose `embedding_bag` kernel is slow there); on a CPU
    it is the slower one. fp16/bf16 are computed in fp32 and cast back (half
    precision positions would be off by up to ~0.1 px at 256 px).
    """
    if input.dtype in (torch.float16, torch.bfloat16):
        out = deform_conv2d_grid(
            input.float(),
            offset.float(),
            weight.float(),
            None if bias is None else bias.float(),
            stride,
            padding,
            dilation,
            None if mask is None else mask.float(),
        )
        return out.to(input.dtype)
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    b, c, h, w = input.shape
    out_ch, _, kh, kw = weight.shape
    k = kh * kw
    groups, ho, wo = _check_shapes(input, offset, weight, mask, stride, padding, dilation)
    bg = b * groups
    # Offsets come as (y, x) pairs per tap; grid_sample takes (x, y) in its own units, so each
    # pair is flipped, scaled and added to where the tap samples without offset.
    off = offset.reshape(bg, k, 2, ho, wo).flip(2).permute(0, 1, 3, 4, 2)  # [BG, K, Ho, Wo, (x, y)]
    scale = torch.stack((input.new_full((), 2.0 / w), input.new_full((), 2.0 / h)))
    grid = off * scale + _base_grid(input, (kh, kw), (ho, wo), stride, padding, dilation)
    feats = input.reshape(bg, c // groups, h, w)
    modulation = None if mask is None else mask.reshape(bg, 1, k, ho, wo)
    w_mat = weight.reshape(out_ch, c, k)
    acc: torch.Tensor | None = None  # [(B,) O, Ho*Wo]
    chunk = max(1, _MAX_GRID_ELEMENTS // max(1, b * c * ho * wo))
    for start in range(0, k, chunk):  # one chunk (no slicing) unless the sampled taps would pass the bound
        taps = slice(start, min(k, start + chunk))
        n = taps.stop - taps.start
        g = grid if n == k else grid[:, taps]
        # padding_mode="zeros" reads zeros outside the image, exactly as DCNv2 does
        sampled = F.grid_sample(feats, g.reshape(bg, n * ho, wo, 2), padding_mode="zeros", align_corners=False)
        if modulation is not None:  # sampled [BG, C/G, n*Ho, Wo]: each tap's rows scaled by its mask
            scaled = (modulation if n == k else modulation[:, :, taps]).reshape(bg, 1, n * ho, wo)
            # in place where nothing is kept for a backward pass (inference: every caller here): a chunk's
            # samples are the conv's largest buffer (up to _MAX_GRID_ELEMENTS), and a second one raised
            # RMBG-2.0's peak GPU memory by 321 MiB at 1024² (benchmarks/cuda.py, H200)
            sampled = sampled * scaled if torch.is_grad_enabled() else sampled.mul_(scaled)
        w_taps = w_mat if n == k else w_mat[:, :, taps]
        # one image: a plain matrix product ([B, C*n, Ho*Wo] would be transposed around it when captured)
        cols = sampled.view(c * n, ho * wo) if b == 1 else sampled.view(b, c * n, ho * wo)
        part = torch.matmul(w_taps.reshape(out_ch, c * n), cols)  # [(B,) O, Ho*Wo]
        acc = part if acc is None else acc + part
    assert acc is not None  # k >= 1
    if bias is not None:
        acc = acc + bias.view(out_ch, 1)
    return acc.view(b, out_ch, ho, wo)


def _base_grid(
    like: torch.Tensor,
    kernel: tuple[int, int],
    out_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> torch.Tensor:
    """[K, Ho, Wo, 2]: where tap k = i*kw + j of output pixel (ho, wo) samples
    with a zero offset, (x, y) in grid_sample's units (align_corners=False maps
    pixel p of a size-n axis to (2p + 1) / n - 1). Made from the shapes alone,
    on the input's device (no host copy: a CUDA graph can capture it); a
    captured graph folds it into one constant.
    """
    (kh, kw), (ho, wo) = kernel, out_size
    h, w = like.shape[2:]

    def axis(taps: int, size: int, step: int, pad: int, dil: int, length: int) -> torch.Tensor:
        pixels = torch.arange(taps, device=like.device, dtype=like.dtype).view(-1, 1) * dil
        pixels = pixels + torch.arange(size, device=like.device, dtype=like.dtype) * step - pad  # [taps, size]
        return (2 * pixels + 1) / length - 1

    y = axis(kh, ho, stride[0], padding[0], dilation[0], h).view(kh, 1, ho, 1).expand(kh, kw, ho, wo)
    x = axis(kw, wo, stride[1], padding[1], dilation[1], w).view(1, kw, 1, wo).expand(kh, kw, ho, wo)
    return torch.stack((x, y), dim=-1).reshape(kh * kw, ho, wo, 2)


def deform_conv2d_pure(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pure-PyTorch modulated deformable conv (DCNv2); same contract as `deform_conv2d`.

    The input becomes a channels-last table of rows; every (pixel, tap) gathers
    its four bilinear corners from it with one weighted `embedding_bag`
    (bilinear coefficient x modulation, zero outside the image), and the
    gathered columns meet the conv weight in one matrix product, a block of
    output pixels at a time. Sampling positions and corner weights are always
    computed in fp32 (in half precision a position would be off by up to
    ~0.1 px at 256 px); the gathered values and the matrix product run in the
    input's dtype, so a bf16 network gets bf16 matrix units here too.
    """
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    b, c, h, w = input.shape
    out_ch, _, kh, kw = weight.shape
    k = kh * kw
    groups, ho, wo = _check_shapes(input, offset, weight, mask, stride, padding, dilation)

    cg = c // groups
    # [B*G*(H+2)*(W+2), C/G]: row (image, group, y+1, x+1) holds that pixel's channels of the
    # group; the one-pixel zero border stands for the outside of the image
    table = F.pad(input, (1, 1, 1, 1)).reshape(b, groups, cg, h + 2, w + 2).permute(0, 1, 3, 4, 2)
    table = table.contiguous().view(-1, cg)
    off = offset.float().reshape(b, groups, k, 2, ho * wo).permute(0, 4, 1, 2, 3).contiguous()
    modulation = None
    if mask is not None:
        modulation = mask.float().reshape(b, groups, k, ho * wo).permute(0, 3, 1, 2).contiguous()
    # weight [O, G*Cg, kh, kw] -> [G*K*Cg, O], rows ordered (group, tap, channel) like the bags
    w_cols = weight.to(input.dtype).reshape(out_ch, groups, cg, k).permute(0, 1, 3, 2).reshape(out_ch, -1).t()

    out = input.new_empty(b, ho * wo, out_ch)  # pixel-major: [n, GKC] @ [GKC, O] is the faster product
    step = max(1, _MAX_COLUMN_ELEMENTS // max(1, b * k * c))
    for start in range(0, ho * wo, step):
        pixels = slice(start, min(ho * wo, start + step))
        index, coeff = _corner_bags(off, modulation, pixels, (b, groups, h, w), (kh, kw), stride, padding, dilation)
        columns = F.embedding_bag(index, table, per_sample_weights=coeff.to(table.dtype), mode="sum")
        columns = columns.view(b, pixels.stop - pixels.start, -1)
        if torch.is_grad_enabled() and (columns.requires_grad or w_cols.requires_grad):
            out[:, pixels] = torch.matmul(columns, w_cols)  # out= has no autograd
            continue
        for image in range(b):  # each image's block of `out` is contiguous: the product lands in place
            torch.mm(columns[image], w_cols, out=out[image, pixels])
    if bias is not None:
        out += bias.to(out.dtype)
    # [B, Ho*Wo, O] -> [B, O, Ho, Wo] (channels-last strides)
    return out.permute(0, 2, 1).reshape(b, out_ch, ho, wo)
