"""IS-Net general use: declared once, fetched once with a pinned SHA-256 (pooch),
offline from a local HTTP server on 127.0.0.1 serving a small deterministic
ONNX graph with the export's input/output names."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.models.specs import ISNET_GENERAL, RMBG_14
from rmbg.providers.local import isnet_general
from tests.support.models import PHOTO, WeightsServer, tiny_isnet_graph


@pytest.fixture(autouse=True)
def _fresh_reachability():
    """Each test asks about its own host: no answer cached by an earlier test (ports get reused)."""
    from rmbg.providers.local.hub import forget_hub_reachability

    forget_hub_reachability()
    yield
    forget_hub_reachability()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RMBG_OFFLINE", raising=False)
    served = WeightsServer(tiny_isnet_graph())
    monkeypatch.setenv(isnet_general.ENV_URL, served.url)
    yield served
    served.close()


def test_declared_once_with_the_isnet_recipe():
    declared = rmbg.registry.info("isnet-general")
    assert declared.kind == "local" and declared.licence.name == "Apache-2.0" and declared.key_env == ""
    assert "isnet-general" in rmbg.list_providers()
    recipe = ("input_size", "resize_in", "input_scale", "mean", "std", "minmax", "quantize_first", "resize_out")
    assert all(getattr(ISNET_GENERAL, f) == getattr(RMBG_14, f) for f in recipe)
    assert not ISNET_GENERAL.gated


def test_first_use_downloads_once_then_runs_from_the_cache(server, monkeypatch):
    monkeypatch.setenv(isnet_general.ENV_SHA256, hashlib.sha256(server.payload).hexdigest())
    provider = rmbg.get_provider("isnet-general", device="cpu", engine="onnxruntime")  # the engine: test_isnet_engine
    assert provider.status().ready and "downloads isnet-general-use.onnx" in provider.status().message
    assert server.gets == 0  # status never touches the network
    photo = Image.open(PHOTO).convert("RGB")
    matte = provider.matte(photo)
    assert server.gets == 1
    alpha = np.asarray(matte.alpha)
    assert matte.alpha.size == photo.size and alpha.min() == 0 and alpha.max() == 255  # the recipe's min-max
    assert matte.meta["backend"] == "onnx" and matte.meta["precision"] == "fp32"
    again = rmbg.get_provider("isnet-general", device="cpu", engine="onnxruntime")
    assert again.status().message == "local weights isnet-general-use.onnx"
    np.testing.assert_array_equal(np.asarray(again.matte(photo).alpha), alpha)
    assert server.gets == 1  # the cached, verified file is used


def test_the_pinned_checksum_refuses_other_bytes(server, tmp_path):
    with pytest.raises(ModelUnavailableError, match="SHA-256 differs"):
        isnet_general.ensure()
    assert server.gets == 1
    assert not (tmp_path / "cache" / "isnet-general-use.onnx").exists()  # nothing unverified is kept


@pytest.mark.uses("onnxruntime", "pooch")
def test_unreachable_mirror_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RMBG_OFFLINE", raising=False)
    closed = WeightsServer(b"")
    closed.close()  # nothing listens on its port any more
    monkeypatch.setenv(isnet_general.ENV_URL, closed.url)
    with pytest.raises(ModelUnavailableError, match="Download it by hand") as raised:
        isnet_general.ensure()
    assert isnet_general.SHA256 in str(raised.value)


def test_offline_without_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RMBG_OFFLINE", "1")
    assert rmbg.get_provider("isnet-general").status().state == "unavailable"
    with pytest.raises(ModelUnavailableError, match="RMBG_OFFLINE forbids"):
        isnet_general.ensure()


@pytest.mark.uses("onnxruntime", "pooch")
def test_an_unreachable_host_is_not_ready_and_fails_fast(tmp_path, monkeypatch):
    """ "ready" means fetchable now: with the download host down, the status says so
    (so the default passes it over) and a run fails within seconds, without a GET."""
    import time

    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RMBG_OFFLINE", raising=False)
    closed = WeightsServer(b"")
    closed.close()
    monkeypatch.setenv(isnet_general.ENV_URL, closed.url)
    status = rmbg.get_provider("isnet-general").status()
    assert status.state == "unavailable"
    assert "download host cannot be reached now (the connection failed" in status.message
    import pooch  # noqa: F401  (the download's modules: their first import is not the wait)
    import requests  # noqa: F401

    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="its host cannot be reached"):
        isnet_general.ensure()
    assert time.monotonic() - started < 3.0 and closed.gets == 0


@pytest.mark.uses("onnxruntime", "pooch")
def test_a_mirrors_user_name_and_password_are_never_shown(server, tmp_path, monkeypatch):
    """A private mirror's URL may carry its token (https://user:token@host/...): the download uses it; the
    errors, the status and the advice name the mirror without it. Before, each sentence quoted it whole."""
    secret = "tok3n-s3cret"
    with_token = server.url.replace("http://", f"http://mirror:{secret}@", 1)
    monkeypatch.setenv(isnet_general.ENV_URL, with_token)
    said = []
    with pytest.raises(ModelUnavailableError, match="SHA-256 differs") as mismatch:  # the mirror was asked
        isnet_general.ensure()
    said.append(str(mismatch.value))
    assert server.gets == 1
    closed = WeightsServer(b"")
    closed.close()
    monkeypatch.setenv(isnet_general.ENV_URL, closed.url.replace("http://", f"http://mirror:{secret}@", 1))
    said.append(rmbg.get_provider("isnet-general").status().message)
    with pytest.raises(ModelUnavailableError, match="Download it by hand") as unreachable:
        isnet_general.ensure()
    said.append(str(unreachable.value))
    monkeypatch.setenv("RMBG_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="RMBG_OFFLINE forbids") as offline:
        isnet_general.ensure()
    said.append(str(offline.value))
    assert all(secret not in text and "mirror:" not in text for text in said), said
    assert f"http://127.0.0.1:{closed.url.split(':')[2].split('/')[0]}/" in said[-1]  # the mirror, named
