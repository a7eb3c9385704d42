"""RMBG-2.0 as a provider: strict load through the offline HF cache, the
model card's recipe, a golden matte at a reduced input size, gated errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.models.specs import RMBG_20
from rmbg.providers.local import torch_backend as local
from rmbg.providers.local.processing import postprocess, preprocess
from tests.fakehub import FakeHub, point_hub_at
from tests.hfcache import HFCache, deterministic_state, read_keys
from tests.support.models import scene

KEYS = read_keys(Path(__file__).parent / "fixtures" / "rmbg-2.0.keys.tsv")
GOLDEN = Path(__file__).parent / "goldens" / "rmbg20_seed0_256.png"
SIZE = (256, 256)  # reduced network input (a spec field) to keep CPU tests fast


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """Deterministic RMBG-2.0 weights, written once (880 MB), with Swin-L's real position index (window 12)."""
    from safetensors.torch import save_file

    from rmbg.models.swin import relative_position_index

    state = deterministic_state(KEYS, seed=0)
    real_index = [k for k in state if k.endswith("relative_position_index")]
    assert len(real_index) == 24
    for key in real_index:
        state[key] = relative_position_index(12)
    path = tmp_path_factory.mktemp("rmbg20") / "model.safetensors"
    save_file(state, str(path), metadata={"format": "pt"})
    return path


@pytest.fixture(autouse=True)
def _no_loaded_models():
    local.clear_loaded_models()
    yield
    local.clear_loaded_models()


def test_preprocessing_follows_the_model_card():
    img = scene(150, 97)
    x = preprocess(img, RMBG_20)
    resized = np.asarray(img.resize((1024, 1024), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    expected = (resized - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), expected, atol=1e-6)


def test_postprocessing_is_uint8_then_bicubic_without_minmax():
    logits = np.full((1024, 1024), -1.0, np.float32)
    logits[:, 512:] = 3.0
    from rmbg.providers.local.processing import finish

    prob = finish(logits, RMBG_20)
    out = postprocess(prob, RMBG_20, (300, 200))
    expected_small = Image.fromarray((1 / (1 + np.exp(-logits)) * 255).astype(np.uint8), "L")
    expected = expected_small.resize((300, 200), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    # Flat regions keep sigmoid(-1)*255 = 68.6 and sigmoid(3)*255 = 242.6,
    # truncated: no min-max stretch to 0..255.
    assert np.asarray(out)[0, 0] == 68 and np.asarray(out)[0, -1] == 242


@pytest.mark.slow  # 880 MB of weights made, then loaded
def test_strict_load_from_the_offline_hf_cache_and_golden(hf_cache: HFCache, weights_file, update_goldens):
    hf_cache.add_file(RMBG_20.repo_id, RMBG_20.revision, RMBG_20.filename, weights_file)  # a link, not a copy
    # the golden is the exact fp32 matte; "auto" would pick bf16 autocast on a CPU with bf16 units
    provider = rmbg.get_provider("rmbg-2.0", device="cpu", input_size=SIZE, precision="fp32")
    status = provider.status()
    assert status.state == "ready" and status.slow and "slow" in status.message
    result = rmbg.remove_background(scene(), provider)
    assert result.alpha.size == (160, 120) and result.provider == "rmbg-2.0"
    assert result.meta["model"] == "briaai/RMBG-2.0" and result.cost.source == "compute"
    assert result.meta["precision"] == "fp32"
    alpha = np.asarray(result.alpha)
    if update_goldens:
        result.alpha.save(GOLDEN)
    golden = np.asarray(Image.open(GOLDEN))
    diff = np.abs(alpha.astype(int) - golden.astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.99


def test_local_weights_file(weights_file):
    provider = rmbg.get_provider("rmbg-2.0", weights=str(weights_file), device="cpu", input_size=(64, 64))
    assert rmbg.remove_background(scene(40, 30), provider).alpha.size == (40, 30)


def test_gated_without_token(hf_cache, monkeypatch):
    provider = rmbg.get_provider("rmbg-2.0", device="cpu")
    assert provider.status().state == "needs_token"
    with FakeHub(mode="gated") as hub:
        point_hub_at(monkeypatch, hub.url)
        with pytest.raises(ModelUnavailableError) as info:
            provider.matte(scene())
    assert "https://huggingface.co/briaai/RMBG-2.0" in str(info.value) and "HF_TOKEN" in str(info.value)


def test_gated_with_a_token_without_access(hf_cache, monkeypatch):
    secret = "hf_AnotherSecretValue987"
    with FakeHub(mode="gated") as hub:
        point_hub_at(monkeypatch, hub.url)
        with pytest.raises(ModelUnavailableError, match="has no access to briaai/RMBG-2.0") as info:
            rmbg.get_provider("rmbg-2.0", device="cpu", token=secret).matte(scene())
    assert secret not in str(info.value)
