"""RMBG-2.0 network (BiRefNet, Swin-L): checkpoint layout, deformable conv,
Swin attention and a reduced-size forward pass."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rmbg.models import birefnet, deform, deform_ops, swin
from rmbg.models.birefnet_blocks import BasicDecBlk

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


@pytest.mark.parametrize("version", ["deform_conv2d_pure", "deform_conv2d_grid"])
@pytest.mark.parametrize("kernel,stride,padding,dilation,modulated", DEFORM_CASES)
def test_pure_deform_conv_matches_per_pixel_reference(version, kernel, stride, padding, dilation, modulated):
    inp, offset, weight, bias, mask = _deform_inputs(kernel, stride, padding, dilation, modulated)
    got = getattr(deform, version)(inp, offset, weight, bias, stride, padding, dilation, mask)
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


def test_grid_deform_conv_chunked_taps_match_one_chunk_and_half_runs_in_fp32(monkeypatch):
    inp, offset, weight, bias, mask = _deform_inputs(7, 1, 3, 1, True, seed=3)
    whole = deform.deform_conv2d_grid(inp, offset, weight, bias, 1, 3, 1, mask)
    monkeypatch.setattr(deform_ops, "_MAX_GRID_ELEMENTS", 2 * 3 * 6 * 5 * 4)  # 4 taps a chunk
    torch.testing.assert_close(
        deform.deform_conv2d_grid(inp, offset, weight, bias, 1, 3, 1, mask), whole, atol=1e-5, rtol=1e-5
    )
    half = [t.to(torch.bfloat16) for t in (inp, offset, weight, bias, mask)]
    got = deform.deform_conv2d_grid(half[0], half[1], half[2], half[3], 1, 3, 1, half[4])
    want = deform.deform_conv2d_grid(*(t.float() for t in half[:4]), 1, 3, 1, half[4].float())
    assert got.dtype == torch.bfloat16 and torch.equal(got, want.to(torch.bfloat16))


def test_pure_deform_conv_pixel_blocks_match_one_block(monkeypatch):
    inp, offset, weight, bias, mask = _deform_inputs(7, 1, 3, 1, True, seed=3)
    whole = deform.deform_conv2d_pure(inp, offset, weight, bias, 1, 3, 1, mask)
    monkeypatch.setattr(deform_ops, "_MAX_COLUMN_ELEMENTS", 2 * 49 * 3 * 4)  # 4 of the 30 output pixels a block
    chunked = deform.deform_conv2d_pure(inp, offset, weight, bias, 1, 3, 1, mask)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype,atol", [(torch.float16, 0.02), (torch.bfloat16, 0.15)])
def test_pure_deform_conv_half_precision_samples_at_fp32_positions(dtype, atol):
    # A 300 px wide map: half-precision positions there would be rounded to
    # 0.25 px (fp16) or 2 px (bf16), errors of 1.4 and 14.8 on outputs up to 14;
    # with fp32 positions only the rounding of the values remains.
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(1, 2, 4, 300, generator=gen).to(dtype)
    offset = ((torch.rand(1, 18, 4, 300, generator=gen) - 0.5) * 3).to(dtype)
    weight = torch.randn(3, 2, 3, 3, generator=gen).to(dtype)
    mask = (2 * torch.rand(1, 9, 4, 300, generator=gen)).to(dtype)
    got = deform.deform_conv2d_pure(inp, offset, weight, None, 1, 1, 1, mask)
    assert got.dtype == dtype
    want = deform.deform_conv2d_pure(inp.float(), offset.float(), weight.float(), None, 1, 1, 1, mask.float())
    assert want.abs().max() > 10
    torch.testing.assert_close(got.float(), want, atol=atol, rtol=0)


def test_pure_deform_conv_matches_torchvision():
    tv_deform = deform.torchvision_deform_conv2d()
    if tv_deform is None:
        pytest.skip("torchvision (with its compiled deform_conv2d op) is not installed on this machine")
    for kernel, stride, padding, dilation, modulated in DEFORM_CASES:
        inp, offset, weight, bias, mask = _deform_inputs(kernel, stride, padding, dilation, modulated)
        want = tv_deform(inp, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
        got = deform.deform_conv2d_pure(inp, offset, weight, bias, stride, padding, dilation, mask)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_bf16_reaches_torchvision_in_fp32():
    # torchvision's deform_conv2d refuses bf16 (on CUDA: "deformable_im2col"
    # not implemented for 'BFloat16'); a stand-in with that behaviour, whose
    # arithmetic is our pure version's.
    def fp32_only(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
        if torch.bfloat16 in (input.dtype, offset.dtype, weight.dtype, None if mask is None else mask.dtype):
            raise NotImplementedError("\"deformable_im2col\" not implemented for 'BFloat16'")
        return deform.deform_conv2d_pure(input, offset, weight, bias, stride, padding, dilation, mask)

    inp, offset, weight, bias, mask = _deform_inputs(3, 1, 1, 1, True, seed=4)
    half = [t.to(torch.bfloat16) for t in (inp, offset, weight, bias, mask)]
    got = deform.run_torchvision(fp32_only, half[0], half[1], half[2], half[3], 1, 1, 1, half[4])
    assert got.dtype == torch.bfloat16
    want = fp32_only(*(t.float() for t in half[:4]), 1, 1, 1, half[4].float())
    assert torch.equal(got, want.to(torch.bfloat16))


def test_cpu_tensors_take_the_pure_version_even_with_torchvision(monkeypatch):
    # measured 4-5x faster than torchvision's CPU kernel (deform.py docstring)
    def refuse(*args, **kwargs):
        raise AssertionError("torchvision's kernel must not run on CPU tensors")

    monkeypatch.setattr(deform, "torchvision_deform_conv2d", lambda: refuse)
    inp, offset, weight, bias, mask = _deform_inputs(3, 1, 1, 1, True, seed=6)
    got = deform.deform_conv2d(inp, offset, weight, bias, 1, 1, 1, mask)
    assert torch.equal(got, deform.deform_conv2d_pure(inp, offset, weight, bias, 1, 1, 1, mask))


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


# ---------------------------------------------------------------- Swin attention


def test_relative_position_index_matches_direct_formula():
    w = 12
    index = swin.relative_position_index(w)
    assert index.dtype == torch.int64 and index.shape == (w * w, w * w)
    for p in (0, 5, 13, 77, 143):
        for q in (0, 11, 12, 100, 143):
            dr = p // w - q // w
            dc = p % w - q % w
            assert int(index[p, q]) == (dr + w - 1) * (2 * w - 1) + (dc + w - 1)
    assert int(index.min()) == 0 and int(index.max()) == (2 * w - 1) ** 2 - 1


def test_shift_mask_separates_regions_of_the_rolled_map():
    # 24x24 padded map, window 12, shift 6: window (0, 0) holds only region 0 (no -100);
    # the bottom-right window mixes 4 regions.
    mask = swin.shift_attention_mask(24, 24, 12, 6, torch.device("cpu"))
    assert mask.shape == (4, 144, 144)
    assert set(torch.unique(mask).tolist()) == {0.0, -100.0}
    assert not mask[0].any()
    last = mask[3]
    # token (0, 0) and token (11, 11) of the last window come from different regions
    assert float(last[0, 143]) == -100.0 and float(last[0, 1]) == 0.0


@pytest.mark.parametrize("shift,mask_windows", [(0, None), (6, None), (6, 4)])
def test_swin_block_sdpa_matches_plain_attention(shift, mask_windows, monkeypatch):
    if mask_windows:  # the shifted mask built 4 windows at a time: blocks of 4 and 2 of each image's 6
        monkeypatch.setattr(swin, "_MAX_MASK_ELEMENTS", mask_windows * 2 * 144 * 144)
    torch.manual_seed(0)
    block = swin.SwinTransformerBlock(dim=64, num_heads=2, window=12, shift=shift).eval()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 1.0)
    h, w = 30, 20  # padded to 36x24: padding and (when shifted) the mask are exercised
    x = torch.randn(2, h * w, 64)
    mask = swin.shift_attention_mask(36, 24, 12, 6, torch.device("cpu"))
    with torch.no_grad():
        block.attn.attention = "plain"
        plain = block(x, h, w, mask)
        block.attn.attention = "sdpa"
        fused = block(x, h, w, mask)
    assert not torch.equal(plain, x)
    torch.testing.assert_close(fused, plain, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("shift", [0, 6])
def test_swin_block_in_blocks_of_windows_and_tokens_matches_whole_maps(shift, monkeypatch):
    torch.manual_seed(0)
    block = swin.SwinTransformerBlock(dim=32, num_heads=2, window=12, shift=shift).eval()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 1.0)
    h, w = 30, 20  # padded to 36x24: 6 windows per image
    x = torch.randn(2, h * w, 32)
    mask = swin.shift_attention_mask(36, 24, 12, 6, torch.device("cpu"))
    calls = {"qkv": 0, "fc1": 0}
    block.attn.qkv.register_forward_hook(lambda *_: calls.__setitem__("qkv", calls["qkv"] + 1))
    block.mlp.fc1.register_forward_hook(lambda *_: calls.__setitem__("fc1", calls["fc1"] + 1))

    def run(tokens: int, hidden: int) -> torch.Tensor:
        monkeypatch.setattr(swin, "_MAX_TOKENS", tokens)
        monkeypatch.setattr(swin, "_MAX_HIDDEN_ELEMENTS", hidden)
        calls.update(qkv=0, fc1=0)
        with torch.inference_mode():
            return block(x, h, w, mask)

    whole = run(1 << 30, 1 << 30)
    assert calls == {"qkv": 1 if shift == 0 else 2, "fc1": 1}  # shifted: the mask is per image
    blocks = run(4 * 144, 500 * 128)  # 4 windows, then 500 tokens at a time
    # unshifted: the 12 windows in 3 blocks of 4; shifted: windows 0-3 and 4-5 of each
    # image (the mask rows follow the image); the MLP: 1200 tokens in blocks of 500
    assert calls == {"qkv": 3 if shift == 0 else 4, "fc1": 3}
    torch.testing.assert_close(blocks, whole, atol=1e-6, rtol=1e-6)
    with torch.no_grad():  # with autograd on (training), the MLP keeps its whole-map path
        torch.testing.assert_close(block(x, h, w, mask), whole, atol=1e-6, rtol=1e-6)


def test_decoder_block_conv_in_over_parts_equals_conv_over_their_concatenation():
    torch.manual_seed(0)
    block = BasicDecBlk(48 + 16, 32).eval()
    a, b = torch.randn(1, 48, 20, 24), torch.randn(1, 16, 20, 24)
    with torch.inference_mode():
        whole = block.relu_in(block.bn_in(block.conv_in(torch.cat([a, b], dim=1))))
        torch.testing.assert_close(block.entry([a, b]), whole, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(block(torch.cat([a, b], dim=1)), block.tail(whole), atol=1e-6, rtol=1e-6)
        with pytest.raises(ValueError, match="conv_in takes 64 channels, got 48"):
            block.entry([a])


def _live_tensor_peak_mib(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest total size of the tensors alive at once during net(x) (inference
    mode), counted at every operator: each output's storage from when it is
    made until it is freed. The weights, made before, are not counted."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode

    live: dict[int, int] = {}
    peak = [0]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key not in live and storage.nbytes():
                        live[key] = storage.nbytes()
                        weakref.finalize(storage, live.pop, key, None)
            peak[0] = max(peak[0], sum(live.values()))
            return out

    with torch.inference_mode(), Count():
        net(x)
    return peak[0] / 2**20


@pytest.mark.slow  # a full-size forward, its memory traced: 15-22 s on 2 cores
def test_birefnet_lite_releases_its_big_temporaries_early():
    net = birefnet.build_birefnet(backbone="swin_t")
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    peak = _live_tensor_peak_mib(net, x)
    # measured 123 MiB; 180 MiB while the decoder held every backbone map to
    # the end and Swin built its MLP's hidden map (twice) and q, k, v for whole maps
    assert 100 < peak < 140, peak


def test_swin_stage_traces_as_one_graph_for_torch_compile():
    # torch.compile (benchmarks/speed.py --compile) sees a whole Swin stage as one
    # graph: a dtype computed with torch.result_type broke the graph in every MLP,
    # after which each block was compiled on its own until dynamo's recompile
    # limit sent the rest back to eager
    torch.manual_seed(0)
    layer = swin.BasicLayer(dim=32, depth=2, num_heads=2, window=12, downsample=True).eval()
    x = torch.randn(1, 30 * 20, 32)
    with torch.inference_mode():
        explained = torch._dynamo.explain(layer)(x, 30, 20)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


def test_shifted_block_differs_from_unshifted():
    torch.manual_seed(0)
    block = swin.SwinTransformerBlock(dim=32, num_heads=2, window=12, shift=6).eval()
    x = torch.randn(1, 24 * 24, 32)
    mask = swin.shift_attention_mask(24, 24, 12, 6, torch.device("cpu"))
    with torch.no_grad():
        shifted = block(x, 24, 24, mask)
        block.shift = 0
        unshifted = block(x, 24, 24, mask)
    assert (shifted - unshifted).abs().max() > 1e-3


# ---------------------------------------------------------------- full network


def _fixture_rows():
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "key\tshape\tdtype"
    return [tuple(line.split("\t")) for line in lines[1:]]


@pytest.fixture(scope="module")
def model():
    return birefnet.build_birefnet()


def _deterministic_state(net, seed):
    """Plausible weights: norms near 1, the rest small, positive variances."""
    gen = torch.Generator().manual_seed(seed)
    norm_types = (torch.nn.LayerNorm, torch.nn.BatchNorm2d)
    state = {}
    for name, ref in net.state_dict().items():
        module_name, _, leaf = name.rpartition(".")
        module = net.get_submodule(module_name)
        if leaf == "relative_position_index":
            value = swin.relative_position_index(module.window)
        elif leaf == "num_batches_tracked":
            value = torch.tensor(seed * 1000 + len(state), dtype=torch.int64)
        elif leaf == "running_var":
            value = 1 + 0.1 * torch.rand(ref.shape, generator=gen)
        elif leaf == "weight" and isinstance(module, norm_types):
            value = 1 + 0.1 * torch.randn(ref.shape, generator=gen)
        else:
            value = 0.02 * torch.randn(ref.shape, generator=gen)
        state[name] = value
    return state


def test_state_dict_matches_checkpoint_key_list(model):
    got = [(name, str(tuple(t.shape)), str(t.dtype).removeprefix("torch.")) for name, t in model.state_dict().items()]
    want = _fixture_rows()
    assert len(want) == 754
    assert got == want  # names, shapes, dtypes, and the checkpoint's order
    buffers = dict(model.named_buffers())
    assert sum(name.endswith("relative_position_index") for name in buffers) == 24
    assert sum(name.endswith("num_batches_tracked") for name in buffers) == 43
    assert sum(p.numel() for p in model.parameters()) == 220_176_498


def test_strict_load_round_trips(model):
    state = _deterministic_state(model, seed=7)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    loaded = model.state_dict()
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype, name
        assert torch.equal(loaded[name], value), name
    missing = dict(state)
    del missing["decoder.gdt_convs_pred_2.0.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(missing, strict=True)
    extra = dict(state, **{"bb.layers.0.blocks.0.attn.extra": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict(extra, strict=True)


def test_image_patches_are_column_major():
    image = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).view(2, 3, 8, 12)
    got = birefnet.image_patches(image, (4, 4))
    want = []
    for n in range(2):
        tiles = []
        for col in range(3):  # left to right
            for row in range(2):  # top to bottom within a column
                tiles.append(image[n, :, row * 4 : (row + 1) * 4, col * 4 : (col + 1) * 4])
        want.append(torch.cat(tiles, dim=0))
    assert torch.equal(got, torch.stack(want))
    assert got.shape == (2, 3 * 6, 4, 4)


def test_image_patches_in_channel_order_follow_birefnets_current_code():
    # einops 'b c (hg h) (wg w) -> b (c hg wg) h w': colour channel, then tiles row by row
    image = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).view(2, 3, 8, 12)
    got = birefnet.image_patches(image, (4, 4), "channel")
    want = torch.stack(
        [
            torch.stack(
                [
                    image[n, ch, row * 4 : (row + 1) * 4, col * 4 : (col + 1) * 4]
                    for ch in range(3)
                    for row in range(2)
                    for col in range(3)
                ]
            )
            for n in range(2)
        ]
    )
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="patch order"):
        birefnet.image_patches(image, (4, 4), "row")


@pytest.mark.slow  # four forwards of the full network: 35-70 s on a busy 2-core machine
def test_forward_at_reduced_size_then_batch_items_are_independent_and_attention_modes_agree(model):
    """Both forward checks on one load of the same deterministic weights (generating the 220 M
    parameters' values is a few seconds of its own)."""
    model.load_state_dict(_deterministic_state(model, seed=1), strict=True)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        outs = model(x)
    assert isinstance(outs, list)
    assert [tuple(o.shape) for o in outs] == [(1, 1, 4, 4), (1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 128, 128)]
    for out in outs:
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()
    assert float(outs[-1].std()) > 0  # not a constant map

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    try:
        with torch.inference_mode():
            both = model(x)
            first = model(x[:1])
            model.bb.set_attention("plain")
            plain = model(x)
    finally:
        model.bb.set_attention("sdpa")
    for b, f, p in zip(both, first, plain):
        torch.testing.assert_close(b[:1], f, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b, p, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(both[-1][0], both[-1][1])
