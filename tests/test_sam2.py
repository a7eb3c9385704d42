"""SAM 2 picking with a tiny random Sam2Model through our real loading path (offline)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rmbg.providers.base import Provider
from rmbg.refine.sam2 import EmbeddingCache, Sam2Picker, image_digest, sam2
from rmbg.refine.select import centre_point, grow_radius, keep_selected, normalise_prompt
from tests.tiny_transformers import REV, add_folder, tiny_sam2

REPO = "facebook/sam2.1-hiera-tiny"


@pytest.fixture(autouse=True)
def _fresh_models():
    from rmbg.providers.local.hf_transformers import clear_models

    clear_models()
    yield
    clear_models()


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    return tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny")


def picture(w=160, h=120, seed=3):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def direct_logits(folder, image, points, labels, box=None, multimask=False):
    """Sam2Model called directly on pixel values built here from the processor's recipe."""
    import torch
    from transformers import Sam2Model

    model = Sam2Model.from_pretrained(folder).eval()
    w, h = image.size
    arr = np.asarray(image.resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    arr = (arr - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    px = torch.tensor(arr.transpose(2, 0, 1)[None], dtype=torch.float32)
    kw = {}
    if points:
        kw["input_points"] = torch.tensor([[[[x * 128 / w, y * 128 / h] for x, y in points]]])
        kw["input_labels"] = torch.tensor([[labels]])
    if box:
        kw["input_boxes"] = torch.tensor([[[box[0] * 128 / w, box[1] * 128 / h, box[2] * 128 / w, box[3] * 128 / h]]])
    with torch.inference_mode():
        out = model(pixel_values=px, multimask_output=multimask, **kw)
    k = int(out.iou_scores[0, 0].argmax()) if multimask else 0
    m = out.pred_masks[0, 0, k][None, None]
    return torch.nn.functional.interpolate(m, (h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


@pytest.mark.parametrize(
    "points,labels,box,multimask",
    [
        ([(40, 30)], [1], None, True),
        ([(40, 30), (120, 90)], [1, 0], None, False),
        ([], [], (10, 20, 100, 110), False),
        ([(50, 60)], [1], (10, 20, 100, 110), False),
    ],
)
def test_picker_matches_a_direct_sam2_call(sam_dir, points, labels, box, multimask):
    image = picture()
    picker = Sam2Picker(str(sam_dir), device="cpu", cache=EmbeddingCache(2))
    prompt = [(x, y, bool(k)) for (x, y), k in zip(points, labels)]
    got = picker.logits(image, prompt, box)
    want = direct_logits(sam_dir, image, points, labels, box, multimask)
    assert got.shape == (120, 160)
    np.testing.assert_allclose(got, want, atol=1e-4)
    mask = np.asarray(picker.mask(image, prompt, box))
    assert np.array_equal(mask, np.where(got > 0, 255, 0))


def test_embedding_is_computed_once_per_image(sam_dir, monkeypatch):
    cache = EmbeddingCache(2)
    picker = Sam2Picker(str(sam_dir), device="cpu", cache=cache)
    net = picker.network()
    calls = []
    real = net.get_image_embeddings
    monkeypatch.setattr(net, "get_image_embeddings", lambda x: calls.append(1) or real(x))
    a, b, c = picture(seed=1), picture(seed=2), picture(seed=3)
    picker.mask(a, [(10, 10, True)])
    picker.mask(a, [(10, 10, True), (50, 50, False)])
    picker.mask(a, box=(5, 5, 60, 60))
    assert len(calls) == 1 and cache.hits == 2
    picker.mask(b, [(10, 10, True)])
    picker.mask(c, [(10, 10, True)])  # evicts a (LRU of 2)
    picker.mask(a, [(10, 10, True)])
    assert len(calls) == 4 and len(cache) == 2


def test_digest_tells_images_apart():
    assert image_digest(picture(seed=1)) == image_digest(picture(seed=1))
    assert image_digest(picture(seed=1)) != image_digest(picture(seed=2))


def test_keep_selected_rule():
    matte = Image.fromarray(np.full((20, 30), 200, np.uint8))
    sel = np.zeros((20, 30), np.uint8)
    sel[5:10, 5:10] = 255
    out = np.asarray(keep_selected(matte, Image.fromarray(sel), grow=2))
    expected = np.zeros((20, 30), np.uint8)
    expected[3:12, 3:12] = 200
    assert np.array_equal(out, expected)
    assert grow_radius(1000, 600) == 5 and grow_radius(100, 100) == 3


@pytest.mark.parametrize(
    "points,box,err",
    [([(1, 2, 3, 4)], None, "a point is"), ([(500, 1)], None, "outside"), ([], (5, 5, 5.5, 40), "empty")],
)
def test_prompt_validation(points, box, err):
    with pytest.raises(ValueError, match=err):
        normalise_prompt(points, box, (100, 50))


def test_prompt_normalisation():
    pts, box = normalise_prompt([(1, 2), (3, 4, 0)], (90, 60, 10, -5), (100, 50))
    assert pts == ((1.0, 2.0, True), (3.0, 4.0, False)) and box == (10.0, 0.0, 90.0, 50.0)


def test_sam2_provider_defaults_to_the_centre_point_offline(hf_cache, sam_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_folder(hf_cache, REPO, sam_dir)
    provider = sam2(revision=REV, device="cpu")
    assert isinstance(provider, Provider) and provider.status().ready
    assert provider.options()["points"] == "centre"
    image = picture()
    matte = provider.matte(image)
    picker = Sam2Picker(str(sam_dir), device="cpu", cache=EmbeddingCache(1))
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(picker.mask(image, centre_point(image.size))))
    assert matte.alpha.size == image.size and matte.meta["prompt"] == "centre point"
    boxed = sam2(revision=REV, device="cpu", box=(0, 0, 80, 60))
    assert boxed.options()["box"] == [0, 0, 80, 60] and boxed.options() != provider.options()
    assert boxed.matte(image).meta["prompt"] == "given"


def test_remove_background_keeps_the_picked_subject_and_caches_each_prompt(hf_cache, sam_dir, monkeypatch):
    import rmbg
    from rmbg.cache import MatteCache
    from rmbg.errors import InvalidImageError
    from tests.support.providers import CountingProvider

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_folder(hf_cache, REPO, sam_dir)
    image = picture()
    provider = CountingProvider()  # matte = the red channel
    store = MatteCache()
    points = [(40, 30, True), (120, 90, False)]
    picked = rmbg.remove_background(image, provider, points=points, cache=store)
    picker = Sam2Picker(str(sam_dir), device="cpu", cache=EmbeddingCache(1))
    want = keep_selected(image.getchannel("R"), picker.mask(image, points))
    assert np.array_equal(np.asarray(picked.alpha), np.asarray(want))
    assert picked.meta["refine"] == "sam2-pick" and provider.calls == 1

    again = rmbg.remove_background(image, provider, points=points, cache=store)
    assert again.cached and np.array_equal(np.asarray(again.alpha), np.asarray(want))
    boxed = rmbg.remove_background(image, provider, box=(10, 10, 90, 70), cache=store)  # new prompt: SAM only
    assert provider.calls == 1 and not np.array_equal(np.asarray(boxed.alpha), np.asarray(want))
    plain = rmbg.remove_background(image, provider, cache=store)
    assert np.array_equal(np.asarray(plain.alpha), np.asarray(image.getchannel("R")))

    fresh = CountingProvider("fresh")
    with pytest.raises(InvalidImageError, match=r"SAM 2 prompt: point \(400, 30\) is outside the 160x120 image"):
        rmbg.remove_background(image, fresh, points=[(400, 30, True)], cache=None)
    assert fresh.calls == 0
