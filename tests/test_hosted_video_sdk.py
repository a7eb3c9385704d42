"""The hosted video fakes checked against the vendors' official clients: fal_client
(1.0.x, over https, as it only speaks https) and runware-sdk (1.8.x, over REST)
drive tests/fakes/fal_video.py and runware_video.py through upload, submit,
polling, result and errors. What the official clients accept, the fakes must
answer; so rmbg's own clients, tested against the fakes, speak the vendors'
protocol and not a private one of the fakes."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import ENDPOINT, FalVideoFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware_video import RunwareVideoFake
from tests.fakes.tls import make_certificate
from tests.fakes.video import read_clip
from tests.test_hosted_video import clip  # noqa: F401
from tests.video_clips import decoded


@pytest.fixture
def fal_sdk(tmp_path, monkeypatch):
    """fal_client pointed at an https fake fal: its queue, REST and CDN hosts are the fake."""
    fal_client = pytest.importorskip("fal_client")
    import fal_client.client as internals

    cert = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.ca_file))  # httpx trusts the fake's certificate
    fake = FalVideoFake().use_tls(cert.server_context())
    with fake:
        monkeypatch.setattr(internals, "QUEUE_URL_FORMAT", f"{fake.url}/")
        monkeypatch.setattr(internals, "REST_URL", fake.url)
        monkeypatch.setattr(internals, "CDN_URL", fake.url)
        yield fal_client.SyncClient(key=FAL_KEY), fake


def test_fal_client_uploads_submits_polls_and_reads_the_result(fal_sdk, clip, tmp_path):
    client, fake = fal_sdk
    url = client.upload(clip.read_bytes(), "video/mp4", "clip.mp4")  # token, then the CDN upload
    assert url.startswith(f"{fake.url}/files/")
    result = client.subscribe(
        ENDPOINT, arguments={"video_url": url, "output_container_and_codec": "webm_vp9", "preserve_audio": False}
    )
    video = result["video"]
    assert video["content_type"] == "video/webm" and video["file_size"] > 0
    data = httpx.get(video["url"]).content
    (tmp_path / "out.webm").write_bytes(data)
    frames, _ = decoded(tmp_path / "out.webm", alpha=True)
    assert len(frames) == 12 and frames[0].shape == (120, 214, 4) and frames[0][..., 3].std() > 20  # a real alpha
    assert fake.billed == [1]


def test_fal_client_sends_a_data_uri_and_reads_fals_errors(fal_sdk, clip):
    fal_client = pytest.importorskip("fal_client")
    client, fake = fal_sdk
    data_uri = fal_client.encode(clip.read_bytes(), "video/mp4")
    handle = client.submit(ENDPOINT, arguments={"video_url": data_uri})
    assert handle.get()["video"]["url"].endswith(".webm")  # fal's default output: webm_vp9
    with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
        client.submit(ENDPOINT, arguments={"output_container_and_codec": "webm_vp9"})  # no video_url
    assert refused.value.status_code == 422 and "video_url" in str(refused.value)
    fake.inject("failed", op="submit")
    with pytest.raises(fal_client.client.FalClientHTTPError) as failed:
        client.subscribe(ENDPOINT, arguments={"video_url": data_uri})
    assert failed.value.status_code == 422  # accepted, then failed: fal's result answers its error
    fake.inject("stuck", op="submit")
    stuck = client.submit(ENDPOINT, arguments={"video_url": data_uri})
    stuck.cancel()
    assert fake.jobs[stuck.request_id].cancelled and fake.billed == [1]


def _runware(fake, **overrides):
    runware = pytest.importorskip("runware")
    return runware.Runware(
        api_key=RUNWARE_KEY, transport="rest", http_base_url=f"{fake.url}/v1", max_retries=0, **overrides
    )


def test_runware_sdk_stores_runs_and_polls_the_video_task(clip, tmp_path):
    async def go(fake):
        async with _runware(fake) as client:
            media = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
            (stored,) = await client.media_storage({"operation": "upload", "media": media})
            results = await client.run(
                {
                    "taskType": "removeBackground",
                    "model": "bria:51@1",
                    "inputs": {"video": stored["mediaUUID"]},
                    "outputFormat": "MOV",
                    "includeCost": True,
                    "settings": {"rgba": [0, 0, 0, 0]},
                }
            )
            return stored, results

    with RunwareVideoFake(ack="empty") as fake:
        stored, (result,) = asyncio.run(go(fake))
        assert stored["mediaURL"].endswith(stored["mediaUUID"])
        assert result["cost"] == 0.14 and result["videoURL"].endswith(".mov")
        (task,) = [c.json()[0] for c in fake.calls if c.json()[0]["taskType"] == "removeBackground"]
        assert task["deliveryMethod"] == "async"  # the SDK's default, which the fake acknowledges and then polls
        (tmp_path / "out.mov").write_bytes(httpx.get(result["videoURL"]).content)
        frames, _ = decoded(tmp_path / "out.mov", alpha=True)
        assert len(frames) == 12 and frames[0][..., 3].std() > 20
        assert read_clip(clip.read_bytes()).billed_seconds == 1 and fake.billed == [1]


@pytest.mark.parametrize(
    "fault, code, status",
    [("insufficient-credits", "quota", 402), ("error-item", "provider", None)],  # the SDK's categories of the codes
)
def test_runware_sdk_reads_the_fakes_errors(fault, code, status, clip):
    runware = pytest.importorskip("runware")

    async def go(fake):
        async with _runware(fake) as client:
            media = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
            (stored,) = await client.media_storage({"operation": "upload", "media": media})
            fake.inject(fault, op="task")
            await client.run(
                {"taskType": "removeBackground", "model": "bria:51@1", "inputs": {"video": stored["mediaUUID"]},
                 "outputFormat": "WEBM"}
            )  # fmt: skip

    with RunwareVideoFake(polls=0) as fake:
        with pytest.raises(runware.RunwareError) as caught:
            asyncio.run(go(fake))
        assert caught.value.code == code and caught.value.status_code == status
