"""RMBG-1.4 locally: the network matches the checkpoint, loads through the
real Hugging Face code offline, follows the official recipe, and fails with
instructions when the gated weights cannot be had."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.models.isnet import build_isnet
from rmbg.models.specs import RMBG_14
from rmbg.providers.local import torch_backend as local
from rmbg.providers.local.processing import postprocess, preprocess
from tests.fakehub import FakeHub, point_hub_at
from tests.hfcache import deterministic_state, read_keys
from tests.support.models import scene

KEYS = read_keys(Path(__file__).parent / "fixtures" / "rmbg-1.4.keys.tsv")
GOLDEN = Path(__file__).parent / "goldens" / "rmbg14_seed0.png"


@pytest.fixture(scope="module")
def state():
    return deterministic_state(KEYS, seed=0)


@pytest.fixture(autouse=True)
def _no_loaded_models():
    local.clear_loaded_models()
    yield
    local.clear_loaded_models()


def test_state_dict_matches_the_checkpoint_key_list():
    net = build_isnet()
    mine = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in net.state_dict().items()]
    assert sorted(mine) == sorted(KEYS)
    assert len(mine) == 798
    assert sum(p.numel() for p in net.parameters()) == 44_046_790


def test_forward_returns_six_sigmoid_maps_and_features():
    net = build_isnet()
    with torch.inference_mode():
        maps, feats = net(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(1, 1, 64, 64)] * 6
    assert [f.shape[1] for f in feats] == [64, 64, 128, 256, 512, 512]
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in maps)


def test_preprocessing_is_the_official_recipe():
    img = scene(150, 97)
    ours = preprocess(img, RMBG_14)
    tensor = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float()
    official = F.interpolate(tensor, size=(1024, 1024), mode="bilinear", align_corners=False) / 255.0 - 0.5
    assert ours.shape == (1, 3, 1024, 1024) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, official.numpy(), atol=2e-6, rtol=0)


def test_postprocessing_is_the_official_recipe():
    rng = np.random.default_rng(1)
    pred = rng.uniform(0.2, 0.7, (1024, 1024)).astype(np.float32)
    ours = np.asarray(postprocess(pred, RMBG_14, (150, 97)))
    up = F.interpolate(torch.from_numpy(pred)[None, None], size=(97, 150), mode="bilinear", align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min())
    official = (up * 255).numpy().astype(np.uint8)
    assert ours.shape == (97, 150)
    assert np.abs(ours.astype(int) - official.astype(int)).max() <= 1
    assert (ours == official).mean() > 0.999


@pytest.mark.slow
def test_strict_load_from_the_offline_hf_cache_and_golden_matte(hf_cache, state, update_goldens):
    hf_cache.add_state(RMBG_14.repo_id, RMBG_14.revision, RMBG_14.filename, state)
    provider = rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu")
    assert provider.status().state == "ready"
    result = rmbg.remove_background(scene(), provider)
    alpha = np.asarray(result.alpha)
    assert result.alpha.size == (160, 120) and alpha.min() == 0 and alpha.max() == 255  # min-max applied
    assert result.cost.source == "compute" and result.meta["revision"] == RMBG_14.revision
    if update_goldens:
        GOLDEN.parent.mkdir(exist_ok=True)
        result.alpha.save(GOLDEN)
    golden = np.asarray(Image.open(GOLDEN))
    # Tolerance: float differences between CPUs may move a value across a
    # uint8 truncation boundary, never further.
    diff = np.abs(alpha.astype(int) - golden.astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.99


def test_local_weights_file_for_air_gapped_use(tmp_path, state):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    provider = rmbg.get_provider("rmbg-1.4", backend="torch", weights=str(path), device="cpu", input_size=(64, 64))
    assert provider.status().state == "ready"
    assert rmbg.remove_background(scene(40, 30), provider).alpha.size == (40, 30)


def test_seconds_are_the_models_not_the_first_load(tmp_path, state, monkeypatch):
    # a fake clock that a (pretend) 100 s load moves forward: the matte's
    # seconds, which cost projections are built on, must not contain it
    from safetensors.torch import save_file

    from rmbg.providers.local import processing

    now = [1000.0]
    monkeypatch.setattr(processing.time, "perf_counter", lambda: now[0])
    real = local.load_network

    def slow_load(*args, **kwargs):
        now[0] += 100.0
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "load_network", slow_load)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    provider = rmbg.get_provider("rmbg-1.4", backend="torch", weights=str(path), device="cpu", input_size=(64, 64))
    assert provider.matte(scene(40, 30)).seconds == 0.0 and now[0] == 1100.0


def test_a_wrong_weights_file_says_so(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(path))
    provider = rmbg.get_provider("rmbg-1.4", backend="torch", weights=str(path), device="cpu")
    with pytest.raises(ModelUnavailableError, match="other.safetensors does not match this network"):
        rmbg.remove_background(scene(40, 30), provider)
    with pytest.raises(ModelUnavailableError, match="Weights file not found"):
        rmbg.remove_background(
            scene(40, 30), rmbg.get_provider("rmbg-1.4", backend="torch", weights=str(tmp_path / "none"))
        )


def test_the_model_loads_once_for_concurrent_callers(hf_cache, state, monkeypatch):
    hf_cache.add_state(RMBG_14.repo_id, RMBG_14.revision, RMBG_14.filename, state)
    builds = []
    real = local.load_network

    def counting(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "load_network", counting)
    providers = [rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu", input_size=(64, 64)) for _ in range(4)]
    barrier = threading.Barrier(4)
    nets = []

    def work(p):
        barrier.wait()
        nets.append(p.network())

    threads = [threading.Thread(target=work, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len({id(n) for n in nets}) == 1


def test_offline_without_cache_says_what_to_do(hf_cache):
    provider = rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu")
    status = provider.status()
    assert status.state == "needs_token" and "HF_TOKEN" in status.message
    with pytest.raises(ModelUnavailableError) as info:
        provider.matte(scene())
    text = str(info.value)
    assert "not in the Hugging Face cache and HF_HUB_OFFLINE is set" in text
    assert "https://huggingface.co/briaai/RMBG-1.4" in text and "HF_TOKEN" in text


def test_gated_repo_without_token(hf_cache, monkeypatch):
    with FakeHub(mode="gated") as hub:
        point_hub_at(monkeypatch, hub.url)
        with pytest.raises(ModelUnavailableError) as info:
            rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu").matte(scene())
    assert "gated" in str(info.value) and "accept its terms" in str(info.value)
    assert "set it as HF_TOKEN" in str(info.value)


def test_gated_repo_with_a_token_that_has_no_access_never_shows_the_token(hf_cache, monkeypatch):
    secret = "hf_ThisIsASecretTokenValue123"
    with FakeHub(mode="gated") as hub:
        point_hub_at(monkeypatch, hub.url)
        with pytest.raises(ModelUnavailableError) as info:
            rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu", token=secret).matte(scene())
        assert any(auth == f"Bearer {secret}" for _, _, auth in hub.requests)
    assert "has no access" in str(info.value) and "accept its terms" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_unreachable_hub_fails_fast(hf_cache, monkeypatch):
    with FakeHub() as hub:
        url = hub.url
    point_hub_at(monkeypatch, url)  # the server is gone: connection refused
    monkeypatch.setenv("HF_TOKEN", "hf_SomeValidLookingToken1")
    # huggingface_hub would retry with 1-8 s back-off (23 s in all): one probe first.
    import huggingface_hub.utils._http as hf_http

    waits = []
    monkeypatch.setattr(hf_http.time, "sleep", waits.append)
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="could not be reached: the connection failed") as info:
        rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu").matte(scene())
    assert time.perf_counter() - start < 10  # huggingface_hub's back-off alone: 23 s
    assert waits == []  # no retry loop was entered
    assert "hf_SomeValidLookingToken1" not in str(info.value)


def test_gated_without_a_token_fails_fast_without_asking_the_hub(hf_cache, monkeypatch):
    with FakeHub(mode="gated") as hub:
        point_hub_at(monkeypatch, hub.url)
        start = time.perf_counter()
        with pytest.raises(ModelUnavailableError, match="set it as HF_TOKEN"):
            rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu").matte(scene())
        assert time.perf_counter() - start < 10  # as for a Hub that refuses (above)
        assert hub.requests == []


def test_download_once_then_nothing(hf_cache, state, monkeypatch):
    from safetensors.torch import save

    monkeypatch.setenv("HF_TOKEN", "hf_SomeValidLookingToken1")
    blob = save(state, metadata={"format": "pt"})
    files = {(RMBG_14.repo_id, RMBG_14.revision, RMBG_14.filename): blob}
    with FakeHub(files) as hub:
        point_hub_at(monkeypatch, hub.url)
        rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu", input_size=(64, 64)).matte(scene(40, 30))
        downloads = [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]
        assert len(downloads) == 1
        local.clear_loaded_models()
        before = len(hub.requests)
        rmbg.get_provider("rmbg-1.4", backend="torch", device="cpu", input_size=(64, 64)).matte(scene(40, 30))
        assert len(hub.requests) == before
