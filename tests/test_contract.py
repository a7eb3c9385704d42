"""The provider contract, over every registered provider.

One parametrized test builds each provider in `rmbg.list_providers()` without
network (local models from deterministic weights in a temporary Hugging Face
cache, RMBG-2.0's and BiRefNet's Swin-L models on a shallow, narrow Swin-L,
U2-Net-p from its real file, hosted ones against the fake server
tests.fakes.hosted.FAKES names for them) and checks the Provider protocol and
a well-formed Result. A provider registered later is covered here without a
new test: a local one needs a line in SETUP, a hosted one a line in FAKES,
and the test fails (it does not skip) until it has one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.models.specs import BIREFNET_VARIANTS, RMBG_14, RMBG_20
from rmbg.providers.base import Provider, ProviderStatus
from rmbg.result import Result
from rmbg.types import Cost
from tests.fakes.common import FakeServer
from tests.fakes.hosted import FAKES, KEYS
from tests.hfcache import HFCache, deterministic_state, read_keys

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = (64, 64)
# Swin-L's window and head width, one shifted block in the first stage, a sixth of its width: the contract is the
# provider's, not the backbone's (Swin-L's key list loads strictly in tests/test_rmbg20.py), and Swin-L itself
# would make 880 MB of weights here and run them through six providers.
SHALLOW_SWIN_L = {"embed_dim": 32, "depths": (2, 1, 1, 1), "num_heads": (1, 2, 4, 8), "window": 12}


def scene(width: int = 96, height: int = 72) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([xs * 2, ys * 3, 200 - xs], -1)
    rgb[(xs - width / 2) ** 2 + (ys - height / 2) ** 2 < (height / 4) ** 2] = (240, 200, 20)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """Deterministic safetensors files, made once: one per key list (RMBG-1.4's, BiRefNet_lite's), and "rmbg-2.0"
    for Swin-L's stand-in, SHALLOW_SWIN_L, which every Swin-L network the module builds takes."""
    from safetensors.torch import save_file

    from rmbg.models import swin
    from rmbg.models.birefnet import build_birefnet
    from tests.support.models import network_weights

    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for name in ("rmbg-1.4", "birefnet-lite"):
        path = folder / f"{name}.safetensors"
        save_file(deterministic_state(read_keys(FIXTURES / f"{name}.keys.tsv"), seed=3), str(path))
        files[name] = path
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(swin.SWIN_CONFIGS, "swin_l", SHALLOW_SWIN_L)
        files["rmbg-2.0"] = folder / "rmbg-2.0.safetensors"
        files["rmbg-2.0"].write_bytes(network_weights(build_birefnet(backbone="swin_l"), seed=3))
        yield files


class Env:
    """What a setup function may use: the offline HF cache, the weights, the fakes
    (started on first use, one per fake class, stopped after the test)."""

    def __init__(self, hf_cache: HFCache, weight_files: dict[str, Path], u2netp: Path, tmp_path: Path):
        self.hf_cache, self.weights = hf_cache, weight_files
        self.u2netp, self.tmp_path = u2netp, tmp_path
        self.fakes: dict[type[FakeServer], FakeServer] = {}

    def fake(self, kind: type[FakeServer]) -> FakeServer:
        if kind not in self.fakes:
            self.fakes[kind] = kind().start()
        return self.fakes[kind]


def _rmbg14(env: Env) -> dict:
    env.hf_cache.add_file(RMBG_14.repo_id, RMBG_14.revision, RMBG_14.filename, env.weights["rmbg-1.4"])
    return {"backend": "torch", "device": "cpu", "input_size": SMALL}


def _rmbg20(env: Env) -> dict:
    env.hf_cache.add_file(RMBG_20.repo_id, RMBG_20.revision, RMBG_20.filename, env.weights["rmbg-2.0"])
    return {"device": "cpu", "input_size": SMALL}


UNPINNED_COMMIT = "c0ffee" * 6 + "c0ff"  # what "main" resolves to in the test cache


def _birefnet(model_id: str) -> Callable[[Env], dict]:
    def setup(env: Env) -> dict:
        variant = BIREFNET_VARIANTS[model_id]
        weights = env.weights["birefnet-lite" if variant.backbone == "swin_t" else "rmbg-2.0"]
        env.hf_cache.add_file(variant.spec.repo_id, UNPINNED_COMMIT, variant.spec.filename, weights)
        # the dynamic model runs at the image's own size (here the 256 px minimum)
        return {"device": "cpu"} if variant.dynamic else {"device": "cpu", "input_size": SMALL}

    return setup


def _u2netp(env: Env) -> dict:
    return {"weights": str(env.u2netp)}


def _isnet_general(env: Env) -> dict:
    from tests.support.models import tiny_isnet_graph

    path = env.tmp_path / "isnet-general-use.onnx"
    path.write_bytes(tiny_isnet_graph())  # a tiny graph with the real file's input and output names
    return {"weights": str(path), "device": "cpu"}


def _sam2(env: Env) -> dict:
    from tests.tiny_transformers import REV, add_folder, tiny_sam2

    add_folder(env.hf_cache, "facebook/sam2.1-hiera-tiny", tiny_sam2(env.tmp_path / "sam2"))
    return {"revision": REV, "device": "cpu"}


def _hosted(provider_id: str) -> Callable[[Env], dict]:
    def setup(env: Env) -> dict:
        kind, key = FAKES[provider_id]
        return {"api_key": key, "base_url": env.fake(kind).url}

    return setup


SETUP: dict[str, Callable[[Env], dict]] = {
    "rmbg-1.4": _rmbg14,
    "rmbg-2.0": _rmbg20,
    **{model_id: _birefnet(model_id) for model_id in BIREFNET_VARIANTS},
    "u2netp": _u2netp,
    "isnet-general": _isnet_general,
    "sam2": _sam2,
    **{provider_id: _hosted(provider_id) for provider_id in FAKES},
}


@pytest.fixture
def env(hf_cache, weight_files, u2netp_path, tmp_path):
    env = Env(hf_cache, weight_files, u2netp_path, tmp_path)
    try:
        yield env
    finally:
        for fake in env.fakes.values():
            fake.stop()
    from rmbg.providers.local.hf_transformers import clear_models
    from rmbg.providers.local.torch_backend import clear_loaded_models

    clear_loaded_models()  # one Swin-L network is 880 MB (its stand-in's far less): never keep them all
    clear_models()


# RMBG-2.0 builds the full BiRefNet (Swin-L) at random: 35-50 s on 2 cores, a long check
@pytest.mark.parametrize(
    "provider_id", [pytest.param(p, marks=pytest.mark.slow) if p == "rmbg-2.0" else p for p in rmbg.list_providers()]
)
def test_every_registered_provider_keeps_the_contract(provider_id, env):
    assert provider_id in SETUP, (
        f"{provider_id} is registered but has no contract setup: add a line to SETUP in tests/test_contract.py "
        "that builds it without network"
    )
    declared = rmbg.registry.info(provider_id)
    provider = rmbg.get_provider(provider_id, **SETUP[provider_id](env))
    try:
        assert isinstance(provider, Provider)
        assert (provider.id, provider.kind) == (provider_id, declared.kind)
        assert provider.label == declared.label and declared.licence
        status = provider.status()
        assert isinstance(status, ProviderStatus) and status.ready, status
        options = provider.options()
        json.dumps(dict(options))  # part of the cache key and the provenance
        assert isinstance(provider.estimate(), Cost)
        if declared.kind == "hosted":
            assert provider.estimate() == Cost(declared.price_usd, "estimated", "price table")
            assert not any(key in repr(provider) for key in KEYS)

        image = scene()
        result = rmbg.remove_background(image, provider, cache=None)
        assert isinstance(result, Result) and result.provider == provider_id
        assert result.alpha.mode == "L" and result.alpha.size == image.size
        assert result.image.mode == "RGBA" and result.image.size == image.size
        assert isinstance(result.cost, Cost) and result.cost.usd >= Decimal(0) and not result.cached
        assert result.seconds.total >= result.seconds.model >= 0
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.meta.items())
        assert json.loads(result.meta["options"]) == json.loads(json.dumps(dict(options)))
        png = result.encode("png")
        with Image.open(io.BytesIO(png)) as decoded:
            assert decoded.text["rmbg:provider"] == provider_id
            if provider_id in BIREFNET_VARIANTS:  # unpinned: the resolved commit is recorded
                assert result.meta["revision"] == decoded.text["rmbg:revision"] == UNPINNED_COMMIT
    finally:
        getattr(provider, "close", lambda: None)()
