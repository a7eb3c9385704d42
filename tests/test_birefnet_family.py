"""BiRefNet's open family on our one BiRefNet network: Swin-T (BiRefNet_lite)
exact to its checkpoint key list, strict load of deterministic weights through
the offline Hugging Face cache, a golden matte, the specs and the dynamic size rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rmbg.models import birefnet, swin
from rmbg.models.specs import BIREFNET_VARIANTS, RMBG_20, dynamic_input_size
from rmbg.providers.local.processing import finish, postprocess, preprocess, select_output
from tests.hfcache import HFCache, deterministic_state, read_keys
from tests.support.models import LITE_KEYS_FILE, SMALL, lite_weights, scene

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "goldens" / "birefnet_lite_seed0_224.png"
# bf16 on a CPU without bf16 units is emulated (about 20 s a forward at 224² on 2 cores): the bf16 checks run at
# 96², where Swin-T's stage maps (24, 12, 6, 3; half scale 12, 6, 3, 2) are still padded to its window of 7.
BF16_SIZE = (96, 96)


@pytest.fixture(scope="module")
def lite():
    return birefnet.build_birefnet(backbone="swin_t")


@pytest.fixture(scope="module")
def lite_bytes() -> bytes:
    """lite_weights(), made once for the module (each test writes the bytes where it needs them)."""
    return lite_weights()


def test_swin_t_network_matches_the_birefnet_lite_key_list(lite):
    lines = LITE_KEYS_FILE.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "key\tshape\tdtype"
    want = [tuple(line.split("\t")) for line in lines[1:]]
    got = [(k, str(tuple(v.shape)), str(v.dtype).removeprefix("torch.")) for k, v in lite.state_dict().items()]
    assert len(want) == 586
    assert got == want  # names, shapes, dtypes and order
    buffers = dict(lite.named_buffers())
    assert sum(k.endswith("relative_position_index") for k in buffers) == 12
    assert sum(k.endswith("num_batches_tracked") for k in buffers) == 43
    assert sum(p.numel() for p in lite.parameters()) == 44_313_720
    assert all(tuple(v.shape) == (49, 49) for k, v in buffers.items() if k.endswith("relative_position_index"))


def test_widths_follow_the_backbone():
    with torch.device("meta"):  # the modules as built, without filling Swin-L's 200 M parameters
        assert birefnet.lateral_channels(swin.swin_v1("swin_t")) == (1536, 768, 384, 192)
        assert birefnet.lateral_channels(swin.swin_v1("swin_l")) == (3072, 1536, 768, 384)
    with pytest.raises(ValueError, match="unknown Swin backbone 'swin_b'"):
        swin.swin_v1("swin_b")


def _matte_through_the_hf_cache(spec, backbone: str, image: Image.Image, patch_order: str) -> Image.Image:
    """What the provider does: hf_hub_download (offline) -> safetensors -> strict load -> recipe."""
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    path = hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision)
    net = birefnet.build_birefnet(backbone=backbone, patch_order=patch_order)
    result = net.load_state_dict(load_file(path), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.inference_mode():
        raw = net(torch.from_numpy(preprocess(image, spec)))
    pred = finish(select_output(raw, spec).float().numpy(), spec)
    return postprocess(pred, spec, image.size)


def test_lite_loads_strictly_from_the_offline_hf_cache_and_matches_its_golden(
    hf_cache: HFCache, lite_bytes, update_goldens
):
    variant = BIREFNET_VARIANTS["birefnet-lite"]
    commit = "0123456789abcdef0123456789abcdef01234567"
    hf_cache.add(variant.spec.repo_id, commit, variant.spec.filename, lite_bytes)  # refs/main -> commit
    spec = dataclasses.replace(variant.spec, input_size=SMALL)
    assert variant.patch_order == "channel"  # BiRefNet's own code's order (specs.BiRefNetVariant)
    alpha = _matte_through_the_hf_cache(spec, variant.backbone, scene(), variant.patch_order)
    assert alpha.mode == "L" and alpha.size == (160, 120)
    got = np.asarray(alpha)
    assert got.std() > 1  # not a constant map
    if update_goldens:
        alpha.save(GOLDEN)
    golden = np.asarray(Image.open(GOLDEN))
    diff = np.abs(got.astype(int) - golden.astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.99


def test_swin_l_weights_do_not_load_into_the_lite_network(lite):
    state = deterministic_state(read_keys(FIXTURES / "rmbg-2.0.keys.tsv")[:40], seed=0)
    with pytest.raises(RuntimeError, match="size mismatch|Missing key"):
        lite.load_state_dict(state, strict=True)


def test_specs_follow_the_model_card_recipe_at_each_trained_size():
    expected = {
        "birefnet": ("ZhengPeng7/BiRefNet", "swin_l", 1024, False),
        "birefnet-lite": ("ZhengPeng7/BiRefNet_lite", "swin_t", 1024, False),
        "birefnet-hr": ("ZhengPeng7/BiRefNet_HR", "swin_l", 2048, False),
        "birefnet-matting": ("ZhengPeng7/BiRefNet-matting", "swin_l", 1024, False),
        "birefnet-portrait": ("ZhengPeng7/BiRefNet-portrait", "swin_l", 1024, False),
        "birefnet-dynamic": ("ZhengPeng7/BiRefNet_dynamic", "swin_l", 1024, True),
    }
    assert set(BIREFNET_VARIANTS) == set(expected)
    recipe = (
        "resize_in",
        "input_scale",
        "mean",
        "std",
        "output_path",
        "activation",
        "minmax",
        "quantize_first",
        "resize_out",
        "filename",
    )
    for model_id, (repo, backbone, size, dynamic) in expected.items():
        variant = BIREFNET_VARIANTS[model_id]
        spec = variant.spec
        assert (spec.id, spec.repo_id, variant.backbone, spec.input_size, variant.dynamic) == (
            model_id,
            repo,
            backbone,
            (size, size),
            dynamic,
        )
        assert all(getattr(spec, f) == getattr(RMBG_20, f) for f in recipe)
        assert not spec.gated and spec.licence.startswith("MIT weights") and "research data sets" in spec.licence
        assert spec.revision == "main" and not variant.pinned and not spec.onnx_files


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((640, 480), (480, 640)),  # already multiples of 32
        ((1000, 750), (736, 992)),  # 1000/32 = 31.25 -> 992; 750/32 = 23.4 -> 736
        ((4000, 3000), (1728, 2304)),  # long side capped at 2304, aspect kept
        ((3000, 4000), (2304, 1728)),
        ((2304, 2304), (2304, 2304)),
        ((100, 50), (256, 256)),  # clamped up to 256
        ((5000, 200), (256, 2304)),  # 200 * 2304/5000 = 92 -> clamped to 256
        ((1040, 16), (256, 1056)),  # 1040/32 = 32.5 -> rounds half up to 33
    ],
)
def test_dynamic_input_size_rule(size, expected):
    assert dynamic_input_size(*size) == expected
    h, w = expected
    assert h % 32 == 0 and w % 32 == 0 and 256 <= min(h, w) and max(h, w) <= 2304


def test_dynamic_input_size_rejects_empty_images():
    with pytest.raises(ValueError, match="must be positive"):
        dynamic_input_size(0, 10)


# ------------------------------------------------------------ CPU precision


def test_cpu_bf16_units_are_what_the_kernel_reports():
    from rmbg.providers.local.device import cpu_bf16_units

    units = cpu_bf16_units()
    assert set(units) <= {"amx_bf16", "avx512_bf16"}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = cpuinfo.read_text(errors="replace").split()
        assert ("avx512_bf16" in units) == ("avx512_bf16" in flags)


@pytest.mark.parametrize(
    "cap,unit,allowed",
    [
        ("", "amx_bf16", True),
        ("AVX2", "avx512_bf16", False),
        ("avx512_core_vnni", "avx512_bf16", False),
        ("AVX512_CORE_BF16", "avx512_bf16", True),
        ("AVX512_CORE_BF16", "amx_bf16", False),
        ("AVX512_CORE_AMX", "amx_bf16", True),
        ("ALL", "amx_bf16", True),
        ("NOT_AN_ISA", "amx_bf16", True),  # oneDNN ignores a value it does not know
    ],
)
def test_an_instruction_set_cap_hides_the_bf16_units_it_excludes(monkeypatch, cap, unit, allowed):
    from rmbg.providers.local.device import isa_cap_allows

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert isa_cap_allows(unit) is allowed


def test_a_process_capped_at_avx2_has_no_bf16_units(monkeypatch):
    """An AVX2-class run on a newer CPU (benchmarks/speed_cpu.py --isa-cap AVX2) gets exact
    fp32, not bf16 that oneDNN would have to emulate. The process's first look at its units, here
    (the answer is kept per process: forgotten before and after, so no other test sees this one's)."""
    from rmbg.providers.local.device import cpu_bf16_units

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    cpu_bf16_units.cache_clear()
    try:
        assert cpu_bf16_units() == ()
    finally:
        cpu_bf16_units.cache_clear()


@pytest.mark.parametrize(
    "units,model,want",
    [
        ((), "rmbg-2.0", "fp32"),  # no bf16 units: exact fp32
        (("avx512_bf16",), "rmbg-2.0", "bf16-autocast"),  # Swin-L passes the agreement gate
        (("amx_bf16", "avx512_bf16"), "birefnet", "bf16-autocast"),
        (("avx512_bf16",), "birefnet-lite", "bf16-autocast"),  # Swin-T passes it on the 30-frame sample
        ((), "birefnet-lite", "fp32"),
    ],
)
def test_cpu_auto_precision_follows_the_units_and_the_measured_gate(monkeypatch, units, model, want):
    import rmbg
    from rmbg.providers.local import device, torch_backend

    monkeypatch.setattr(torch_backend, "cpu_bf16_units", lambda: units)
    monkeypatch.setattr(device, "cpu_bf16_units", lambda: units)
    assert rmbg.get_provider(model, device="cpu").precision_used() == want
    assert rmbg.get_provider(model, device="cpu", precision="fp32").precision_used() == "fp32"
    if units:
        assert rmbg.get_provider(model, device="cpu", precision="bf16").precision_used() == "bf16-autocast"
    else:  # emulated bf16 runs PyTorch's reference conv kernel, far slower than fp32: refused, saying why
        with pytest.raises(
            rmbg.InvalidRequestError,
            match=r"precision='bf16' needs a CPU with bf16 units .* "
            r"Use precision='auto' \(bf16 only where the CPU has the units\) or 'fp32'",
        ):
            rmbg.get_provider(model, device="cpu", precision="bf16").precision_used()


def test_every_local_network_refuses_cpu_bf16_without_bf16_units(monkeypatch):
    # pick_dtype is what ViTMatte, SAM 2 and hf: segmentation models load with
    from rmbg import InvalidRequestError
    from rmbg.providers.local import device

    monkeypatch.setattr(device, "cpu_bf16_units", lambda: ())
    with pytest.raises(InvalidRequestError, match=r"precision='bf16' needs a CPU with bf16 units"):
        device.pick_dtype("bf16", "cpu")
    assert device.pick_dtype("fp32", "cpu") == torch.float32
    assert device.pick_dtype("bf16", "cuda") == torch.bfloat16  # a GPU is not asked about CPU units
    monkeypatch.setattr(device, "cpu_bf16_units", lambda: ("amx_bf16",))
    assert device.pick_dtype("bf16", "cpu") == torch.bfloat16


def test_lite_bf16_autocast_on_cpu_says_so_and_stays_near_fp32(hf_cache: HFCache, lite_bytes, monkeypatch):
    import rmbg
    from rmbg.providers.local import device, torch_backend
    from rmbg.providers.local.device import cpu_allocator_choice, tune_cpu_allocator

    # the process-wide allocator setting, as this process has it (once per process)
    allocator = tune_cpu_allocator()
    assert allocator == ("glibc-reuse" if cpu_allocator_choice() == "reuse" else "system")
    # the autocast path runs everywhere (emulated, slowly: at BF16_SIZE)
    # even where the CPU has no bf16 units and the provider would refuse it
    monkeypatch.setattr(torch_backend, "cpu_bf16_units", lambda: ("avx512_bf16",))
    monkeypatch.setattr(device, "cpu_bf16_units", lambda: ("avx512_bf16",))
    variant = BIREFNET_VARIANTS["birefnet-lite"]
    hf_cache.add(variant.spec.repo_id, "89abcdef0123456789abcdef0123456789abcdef", variant.spec.filename, lite_bytes)
    image = scene()
    exact = rmbg.get_provider("birefnet-lite", device="cpu", precision="fp32", input_size=SMALL).matte(image)
    golden = np.asarray(Image.open(GOLDEN)).astype(int)  # made at SMALL
    assert np.abs(np.asarray(exact.alpha).astype(int) - golden).max() <= 2
    exact = rmbg.get_provider("birefnet-lite", device="cpu", precision="fp32", input_size=BF16_SIZE).matte(image)
    fast = rmbg.get_provider("birefnet-lite", device="cpu", precision="bf16", input_size=BF16_SIZE).matte(image)
    assert exact.meta["precision"] == "fp32" and fast.meta["precision"] == "bf16-autocast"
    assert fast.meta["cpu_bf16_units"] == "avx512_bf16"
    assert exact.meta["cpu_allocator"] == fast.meta["cpu_allocator"] == allocator
    diff = np.abs(np.asarray(fast.alpha).astype(int) - np.asarray(exact.alpha).astype(int))
    assert 0 < diff.mean() <= 2.5 and diff.max() <= 20  # measured 0.63 and 8 at BF16_SIZE on this synthetic scene


def test_bf16_stored_weights_give_exactly_the_autocast_matte(tmp_path, lite_bytes):
    # the provider's CPU bf16 path stores Linear/Conv weights in bf16 as it
    # loads them; autocast would cast them to the same values on every call
    from rmbg.providers.local.torch_backend import load_network

    path = tmp_path / "model.safetensors"
    path.write_bytes(lite_bytes)
    build = lambda: birefnet.build_birefnet(backbone="swin_t")  # noqa: E731
    exact = load_network(build, path, "cpu", torch.float32)
    stored = load_network(build, path, "cpu", torch.float32, matmul_bf16=True)
    assert stored.bb.layers[0].blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert stored.decoder.decoder_block1.dec_att.aspp_deforms[2].atrous_conv.offset_conv.weight.dtype == torch.bfloat16
    assert stored.bb.layers[0].blocks[0].attn.qkv.bias.dtype == torch.float32
    assert stored.bb.norm0.weight.dtype == torch.float32
    assert exact.bb.layers[0].blocks[0].attn.qkv.weight.dtype == torch.float32
    x = torch.randn(1, 3, *BF16_SIZE, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = exact(x)[-1]
        got = stored(x)[-1]
    assert torch.equal(got, want)


def test_bf16_loading_lets_go_of_the_weights_file(tmp_path, lite_bytes):
    # safetensors maps the file and its tensors are views of the map: a single
    # fp32 norm left as a view would keep the whole file resident beside the
    # bf16 copies (843 MB for RMBG-2.0)
    from rmbg.providers.local.torch_backend import load_network

    path = tmp_path / "model.safetensors"
    path.write_bytes(lite_bytes)
    net = load_network(lambda: birefnet.build_birefnet(backbone="swin_t"), path, "cpu", torch.float32, matmul_bf16=True)
    from safetensors.torch import load_file

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("this machine has no /proc/self/maps to list the mapped files")
    state = load_file(str(path))
    assert any(line.endswith(str(path)) for line in maps.read_text().splitlines())  # a view of the map
    assert torch.equal(net.bb.norm0.weight, state["bb.norm0.weight"])
    assert torch.equal(
        net.bb.layers[0].blocks[0].attn.qkv.weight, state["bb.layers.0.blocks.0.attn.qkv.weight"].bfloat16()
    )
    del state
    assert not any(line.endswith(str(path)) for line in maps.read_text().splitlines())  # the network holds none
