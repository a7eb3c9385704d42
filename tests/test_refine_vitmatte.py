"""ViTMatte refinement: trimap rule, window, paste, and the real loading path
with a tiny random ViTMatte (offline, HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import ModelUnavailableError
from rmbg.refine import UnknownRefinerError, cache_options, get_refiner, refine_matte, resolve_refiner
from rmbg.refine.morph import dilate, erode
from rmbg.refine.trimap import Window, band_radius, make_trimap, paste, plan_window
from rmbg.types import Cost, Matte
from tests.tiny_transformers import REV, add_folder, tiny_vitmatte

REPO = "hustvl/vitmatte-small-composition-1k"


@pytest.fixture(autouse=True)
def _fresh_models():
    """Loaded models are shared per process; each test starts without any."""
    from rmbg.providers.local.hf_transformers import clear_models

    clear_models()
    yield
    clear_models()


def brute_dilate(mask, r):
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            out[y, x] = mask[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].any()
    return out


@pytest.mark.parametrize("r", [0, 1, 2, 4])
def test_dilate_and_erode_match_brute_force(r):
    mask = np.random.default_rng(r).random((13, 17)) > 0.8
    assert np.array_equal(dilate(mask, r), brute_dilate(mask, r))
    padded = np.pad(~mask, r, constant_values=False)  # frame counts as set for erosion
    expected = ~brute_dilate(padded, r)[r : r + 13, r : r + 17] if r else mask
    assert np.array_equal(erode(mask, r), expected)


@pytest.mark.parametrize("w,h,r", [(100, 50, 3), (299, 10, 3), (1000, 800, 10), (4000, 3000, 40), (9000, 10, 64)])
def test_band_radius_is_one_percent_of_longer_side_clamped(w, h, r):
    assert band_radius(w, h) == r


def test_trimap_rule():
    alpha = np.zeros((40, 60), np.uint8)
    alpha[10:30, 20:40] = 255
    alpha[10:30, 40] = 128  # a soft column
    tri = make_trimap(alpha, radius=3)
    assert set(np.unique(tri)) == {0, 128, 255}
    assert tri[20, 30] == 255 and tri[0, 0] == 0
    assert tri[13, 23] == 255 and tri[12, 23] == 128  # fg eroded by 3
    assert tri[20, 16] == 0 and tri[20, 17] == 128  # bg = not dilated by 3
    assert tri[20, 40] == 128 and tri[20, 44] == 0  # soft pixels are unknown, plus the band


def test_trimap_subject_touching_the_frame_stays_certain():
    alpha = np.full((20, 20), 255, np.uint8)
    alpha[:, 15:] = 0
    tri = make_trimap(alpha, radius=2)
    assert tri[0, 0] == 255 and tri[19, 5] == 255 and tri[5, 13] == 128


@pytest.mark.parametrize(
    "box_of_unknown,max_side,margin,expected",
    [
        ((10, 5, 20, 15), 1024, 4, Window((6, 1, 24, 19), (18, 18))),
        ((0, 0, 100, 50), 50, 0, Window((0, 0, 100, 50), (50, 25))),
        ((90, 40, 100, 50), 1024, 32, Window((58, 8, 100, 50), (42, 42))),
    ],
)
def test_plan_window(box_of_unknown, max_side, margin, expected):
    unknown = np.zeros((50, 100), bool)
    x0, y0, x1, y1 = box_of_unknown
    unknown[y0:y1, x0:x1] = True
    assert plan_window(unknown, max_side, margin) == expected


def test_plan_window_none_without_unknown_pixels():
    assert plan_window(np.zeros((5, 5), bool), 64, 2) is None


def test_paste_changes_only_unknown_pixels_in_the_window():
    alpha = np.arange(100, dtype=np.uint8).reshape(10, 10)
    unknown = np.zeros((10, 10), bool)
    unknown[2:4, 2:8] = True
    refined = np.full((6, 6), 7, np.uint8)
    out = paste(alpha, refined, Window((2, 2, 8, 8), (6, 6)), unknown)
    assert np.array_equal(out[unknown], np.full(12, 7))
    assert np.array_equal(out[~unknown], alpha[~unknown])


@pytest.fixture
def vitmatte_dir(tmp_path):
    return tiny_vitmatte(tmp_path / "vitmatte")


def photo(w=120, h=90, seed=1):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    alpha[h // 4 : 3 * h // 4, 3 * w // 4] = 100
    return img, alpha


def direct_alpha(folder, rgb: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The transformers way: VitMatteImageProcessor + VitMatteForImageMatting."""
    import torch
    from transformers import VitMatteForImageMatting
    from transformers.models.vitmatte.image_processing_pil_vitmatte import VitMatteImageProcessorPil

    model = VitMatteForImageMatting.from_pretrained(folder).eval()
    inputs = VitMatteImageProcessorPil()(
        images=Image.fromarray(rgb), trimaps=Image.fromarray(trimap), return_tensors="pt"
    )
    with torch.inference_mode():
        out = model(**inputs).alphas
    return out[0, 0, : trimap.shape[0], : trimap.shape[1]].numpy()


def test_refine_matches_direct_transformers_call_and_keeps_outside_pixels(vitmatte_dir):
    img, alpha = photo()
    refiner = get_refiner("vitmatte", model=str(vitmatte_dir), device="cpu", precision="fp32", band=4, context=8)
    out = np.asarray(refiner.refine(img, Image.fromarray(alpha)))
    tri = make_trimap(alpha, 4)
    unknown = tri == 128
    window = plan_window(unknown, 1024, 8)
    x0, y0, x1, y1 = window.box
    expected = direct_alpha(vitmatte_dir, np.asarray(img)[y0:y1, x0:x1], tri[y0:y1, x0:x1])
    got = out[y0:y1, x0:x1][unknown[y0:y1, x0:x1]].astype(int)
    want = np.rint(expected * 255)[unknown[y0:y1, x0:x1]].astype(int)
    assert np.abs(got - want).max() <= 1  # float rounding of 1/255 vs / 255 only
    assert np.array_equal(out[~unknown], alpha[~unknown])
    assert (out[unknown] != alpha[unknown]).any()


def test_downscaled_window_is_resized_back_and_only_the_band_changes(vitmatte_dir):
    img, alpha = photo(200, 150, seed=2)
    refiner = get_refiner("vitmatte", model=str(vitmatte_dir), device="cpu", precision="fp32", max_side=64, band=3)
    out = np.asarray(refiner.refine(img, Image.fromarray(alpha)))
    tri = make_trimap(alpha, 3)
    unknown = tri == 128
    window = plan_window(unknown, 64, 32)
    assert max(window.size) == 64
    x0, y0, x1, y1 = window.box
    small_rgb = np.asarray(img.crop(window.box).resize(window.size, Image.Resampling.BILINEAR))
    small_tri = np.asarray(Image.fromarray(tri[y0:y1, x0:x1]).resize(window.size, Image.Resampling.NEAREST))
    pred = direct_alpha(vitmatte_dir, small_rgb, small_tri)
    back = np.asarray(Image.fromarray(pred.astype(np.float32)).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR))
    want = np.rint(back * 255).astype(int)[unknown[y0:y1, x0:x1]]
    assert np.abs(out[y0:y1, x0:x1][unknown[y0:y1, x0:x1]].astype(int) - want).max() <= 1
    assert np.array_equal(out[~unknown], alpha[~unknown])


def test_no_unknown_band_returns_the_matte_unchanged_without_loading(tmp_path):
    refiner = get_refiner("vitmatte", model=str(tmp_path / "missing"))
    img = Image.new("RGB", (20, 10))
    out = refiner.refine(img, Image.new("L", (20, 10), 0))
    assert np.array_equal(np.asarray(out), np.zeros((10, 20), np.uint8))


def test_loads_from_the_hf_cache_offline(hf_cache, vitmatte_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_folder(hf_cache, REPO, vitmatte_dir)
    refiner = get_refiner("vitmatte", revision=REV, device="cpu", band=4, context=8)
    assert refiner.status().state == "ready"
    img, alpha = photo()
    local = get_refiner("vitmatte", model=str(vitmatte_dir), device="cpu", band=4, context=8)
    a = np.asarray(refiner.refine(img, Image.fromarray(alpha)))
    assert np.array_equal(a, np.asarray(local.refine(img, Image.fromarray(alpha))))


@pytest.mark.uses("torch", "transformers")
def test_not_cached_offline_is_a_fast_clear_error(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refiner = get_refiner("vitmatte", revision=REV)
    assert refiner.status().state == "unavailable"
    img, alpha = photo()
    import torch  # noqa: F401  (imported before the clock starts: at load 16 its import alone took 28 s)

    start = time.perf_counter()
    with pytest.raises(
        ModelUnavailableError,
        match=r"not in the Hugging Face cache and downloads are switched off here \(HF_HUB_OFFLINE is set\)",
    ):
        refiner.refine(img, Image.fromarray(alpha))
    assert time.perf_counter() - start < 5


def test_refine_matte_keeps_cost_and_records_provenance(vitmatte_dir):
    img, alpha = photo()
    refiner = resolve_refiner(get_refiner("vitmatte", model=str(vitmatte_dir), device="cpu", band=4))
    matte = Matte(Image.fromarray(alpha), Cost.free(), 0.5, {"model": "x"})
    out = refine_matte(refiner, img, matte)
    assert out.cost == matte.cost and out.seconds > 0.5
    assert out.meta["refine"] == "vitmatte" and out.meta["refine_model"] == str(vitmatte_dir)
    assert out.meta["model"] == "x" and out.alpha.size == img.size


def test_resolve_and_cache_options():
    assert resolve_refiner(None) is None and resolve_refiner("") is None
    refiner = resolve_refiner("vitmatte")
    assert refiner.id == "vitmatte" and refiner.options()["model"] == REPO
    opts = cache_options({"backend": "torch"}, refiner)
    assert opts["backend"] == "torch" and opts["refine"]["id"] == "vitmatte"
    assert cache_options({"a": 1}, None) == {"a": 1}
    assert get_refiner("vitmatte", max_side=512).options() != refiner.options()
    with pytest.raises(UnknownRefinerError, match="Valid refiners: vitmatte"):
        get_refiner("nope")
    with pytest.raises(TypeError):
        resolve_refiner(3)


def test_importing_refine_loads_nothing_heavy():
    code = (
        "import sys, rmbg, rmbg.refine, rmbg.refine.vitmatte, rmbg.refine.sam2, "
        "rmbg.providers.local.hf_segmentation, rmbg.providers.local.hf_transformers\n"
        "heavy = [m for m in ('torch', 'transformers', 'gradio') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


class Counting:
    """A hosted-like provider that returns a fixed matte and counts its (paid) calls."""

    id, label, kind = "counting", "counting", "hosted"

    def __init__(self, alpha):
        self.alpha, self.calls = alpha, 0

    def options(self):
        return {}

    def status(self):
        from rmbg.providers.base import ProviderStatus

        return ProviderStatus("ready")

    def estimate(self):
        from decimal import Decimal

        from rmbg.types import Cost

        return Cost(Decimal("0.01"), "estimated")

    def matte(self, image):
        from decimal import Decimal

        from rmbg.types import Cost, Matte

        self.calls += 1
        return Matte(Image.fromarray(self.alpha), Cost(Decimal("0.01"), "reported"), 0.0)


def test_remove_background_refines_any_provider_and_never_pays_twice(vitmatte_dir):
    import rmbg
    from rmbg.cache import MatteCache

    img, alpha = photo(seed=4)
    provider, cache = Counting(alpha), MatteCache()
    refiner = get_refiner("vitmatte", model=str(vitmatte_dir), device="cpu", precision="fp32", band=4, context=8)
    refined = rmbg.remove_background(img, provider, refine=refiner, cache=cache)
    assert provider.calls == 1 and refined.cost.usd > 0 and refined.meta["refine"] == "vitmatte"
    expected = np.asarray(refiner.refine(img, Image.fromarray(alpha)))
    assert np.array_equal(np.asarray(refined.alpha), expected)
    plain = rmbg.remove_background(img, provider, cache=cache)  # the provider's own matte: cached, free
    again = rmbg.remove_background(img, provider, refine=refiner, cache=cache)  # the refined one: cached
    assert provider.calls == 1 and plain.cached and again.cached and again.cost.source == "free"
    assert np.array_equal(np.asarray(plain.alpha), alpha)
    assert np.array_equal(np.asarray(again.alpha), expected)
    unknown = make_trimap(alpha, 4) == 128
    assert np.array_equal(np.asarray(refined.alpha)[~unknown], alpha[~unknown])


@pytest.mark.uses("torch", "transformers")
def test_cli_refine_flag_runs_the_refiner_offline_with_a_clear_error_when_not_cached(tmp_path, monkeypatch, capsys):
    from rmbg import registry
    from rmbg.cli.main import main

    img, alpha = photo()
    img.save(tmp_path / "in.png")
    provider = Counting(alpha)
    provider.kind = "local"
    registry.register("counting", lambda **_: provider)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        code = main(
            ["remove", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "-p", "counting", "--refine", "vitmatte"]
        )
    finally:
        registry.unregister("counting")
    assert code == 1  # the one image failed, readably
    out = capsys.readouterr().out
    assert "hustvl/vitmatte-small-composition-1k is not in the Hugging Face cache" in out
    # the fix is the refiner's weights, not another provider (which would fail the same way)
    assert "These are the vitmatte refiner's weights: run once with network access to download them" in out
    assert "leave out --refine vitmatte." in out and "--provider" not in out


@pytest.mark.uses("torch", "transformers")
def test_a_model_folder_that_is_not_there_is_an_rmbg_error_not_huggingface_hubs(hf_cache, monkeypatch):
    """docs/python-api.md's air-gapped example, run where the folder does not exist."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refiner = get_refiner("vitmatte", model="path/to/save_pretrained-folder")
    said = (
        "path/to/save_pretrained-folder is not a folder on this machine, nor a Hugging Face repo id "
        "(namespace/name): pass the folder saved with save_pretrained(), or a repo id."
    )
    assert refiner.status().state == "unavailable" and refiner.status().message == said
    img, alpha = photo()
    with pytest.raises(ModelUnavailableError) as failed:  # an rmbg.RmbgError, not an HFValidationError
        refiner.refine(img, Image.fromarray(alpha))
    assert str(failed.value) == said
