"""hf:OWNER/REPO providers: remote-code rules, output handling, and a local
remote-code repository loaded from the HF cache offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rmbg.errors import ModelUnavailableError, RmbgError
from rmbg.providers.base import Provider
from rmbg.providers.local.hf_segmentation import (
    RemoteCodeRefusedError,
    RemoteCodeWarning,
    check_remote_code,
    hf_provider,
    pick_output,
    probability_to_matte,
    to_probability,
)
from tests.tiny_transformers import REV, add_folder

FIXTURE = Path(__file__).parent / "fixtures" / "tinyseg_remote"
REPO = "someone/tinyseg"


@pytest.fixture(autouse=True)
def _fresh_models():
    from rmbg.providers.local.hf_transformers import clear_models

    clear_models()
    yield
    clear_models()


@pytest.fixture
def remote_repo(hf_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    add_folder(hf_cache, REPO, FIXTURE)
    return hf_cache


def test_remote_code_refused_without_the_flag(remote_repo):
    provider = hf_provider(f"hf:{REPO}", revision=REV)
    with pytest.raises(RemoteCodeRefusedError, match="runs its own Python code .*trust_remote_code=True"):
        provider.matte(Image.new("RGB", (8, 8)))


@pytest.mark.parametrize("revision", [None, "main", "v1.0", REV[:12]])
def test_remote_code_refused_without_a_pinned_commit(revision):
    with pytest.raises(RemoteCodeRefusedError, match="needs a pinned revision"):
        hf_provider(f"hf:{REPO}", trust_remote_code=True, revision=revision)


def test_remote_code_loads_with_flag_and_commit_and_warns(remote_repo):
    provider = hf_provider(f"hf:{REPO}", trust_remote_code=True, revision=REV, device="cpu", input_size=(32, 48))
    assert isinstance(provider, Provider) and provider.id == f"hf:{REPO}" and provider.status().ready
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    with pytest.warns(RemoteCodeWarning, match="runs Python code from the repository"):
        matte = provider.matte(image)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    norm = (arr - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    logits = 4.0 * (norm @ np.array([1.0, -0.5, 0.25]) + 0.1)
    expected = np.rint(255 / (1 + np.exp(-logits))).astype(int)
    assert matte.alpha.mode == "L" and matte.alpha.size == image.size
    assert np.abs(np.asarray(matte.alpha).astype(int) - expected).max() <= 1
    assert matte.meta == {"model": REPO, "revision": REV, "backend": "transformers"}


def test_not_cached_is_a_clear_error(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    provider = hf_provider("hf:nobody/nothing", revision=REV)
    assert provider.status().state == "unavailable"
    with pytest.raises(ModelUnavailableError, match="not in the Hugging Face cache"):
        provider.matte(Image.new("RGB", (8, 8)))


def test_check_remote_code_native_model_needs_nothing():
    assert check_remote_code("a/b", {"model_type": "detr"}, False, None) is False


@pytest.mark.parametrize("bad", ["hf:noslash", "hf:a/b/c", "hf:/b", "hf:a/"])
def test_bad_ids(bad):
    with pytest.raises(RmbgError, match="expected hf:OWNER/REPO"):
        hf_provider(bad)


def test_pick_output_rules():
    a, b = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert pick_output([a, b], None) is b
    assert pick_output([[a, b], [b]], (0, 0)) is a

    class Out:
        logits = a

    assert pick_output(Out(), None) is a


def test_to_probability():
    logits = torch.tensor([[[[-10.0, 10.0]]]])
    np.testing.assert_allclose(to_probability(logits), [[0.0, 1.0]], atol=1e-4)
    probs = torch.tensor([[0.2, 0.9]])
    np.testing.assert_allclose(to_probability(probs), [[0.2, 0.9]], atol=1e-6)
    two = torch.tensor([[[5.0, -5.0]], [[-5.0, 5.0]]])  # class 0 = background by default
    np.testing.assert_allclose(to_probability(two), [[0.0, 1.0]], atol=1e-4)
    np.testing.assert_allclose(to_probability(two, {0: "person", 1: "Background"}), [[1.0, 0.0]], atol=1e-4)


def test_probability_to_matte_size_and_rounding():
    out = probability_to_matte(np.array([[0.0, 0.5], [1.0, 0.2]], np.float32), (2, 2))
    assert np.array_equal(np.asarray(out), [[0, 128], [255, 51]])
    assert probability_to_matte(np.zeros((4, 4), np.float32), (10, 6)).size == (10, 6)
