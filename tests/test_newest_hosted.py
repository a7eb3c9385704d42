"""The newest hosted models against the fakes: fal's Bria RMBG 3.0 on fal's
queue (its own app, `bria/rmbg-3`) and Runware's BiRefNet models (the
removeBackground task without settings, cost as Runware reports it)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rmbg.errors import ProviderRejectedError
from rmbg.providers.hosted.payload import png_data_uri
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider, info
from tests.fakes.common import simple_matte
from tests.fakes.fixtures import fal_fake, runware_fake  # noqa: F401

FAL_KEY = "fal-test-id:fal-test-secret"
RUNWARE_KEY = "rw-test-key"


@pytest.fixture
def image() -> Image.Image:
    img = Image.new("RGB", (64, 48), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((16, 8, 48, 40), fill=(220, 30, 20))
    return img


def test_fal_rmbg3_submits_to_its_own_endpoint_and_polls_its_own_app(fal_fake, image):
    provider = get_provider("fal-rmbg-3", api_key=FAL_KEY, base_url=fal_fake.url, retry=RetryPolicy.immediate())
    matte = provider.matte(image)

    submit, *polls, result = fal_fake.calls
    rid = matte.meta["request_id"]
    assert (submit.method, submit.path) == ("POST", "/bria/rmbg-3")
    assert submit.json() == {"image_url": png_data_uri(image), "sync_mode": True}
    assert [c.path for c in polls] == [f"/bria/rmbg-3/requests/{rid}/status"] * 2
    assert (result.method, result.path) == ("GET", f"/bria/rmbg-3/requests/{rid}")
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
    assert matte.meta == {"model": "Bria RMBG 3.0", "endpoint": "bria/rmbg-3", "request_id": rid}
    assert matte.cost.usd == info("fal-rmbg-3").price_usd == Decimal("0.04") and matte.cost.source == "estimated"
    assert provider.options() == {"endpoint": "bria/rmbg-3"}


def test_fal_rmbg3_validation_error_is_not_sent_again(fal_fake, image):
    fal_fake.inject("invalid", op="submit")
    provider = get_provider("fal-rmbg-3", api_key=FAL_KEY, base_url=fal_fake.url, retry=RetryPolicy.immediate())
    with pytest.raises(ProviderRejectedError, match="image_url: Image is too large"):
        provider.matte(image)
    assert len(fal_fake.calls) == 1


@pytest.mark.parametrize(
    "provider_id, model",
    [
        ("runware-birefnet", "runware:112@1"),
        ("runware-birefnet-512", "runware:112@6"),
        ("runware-birefnet-massive", "runware:112@8"),
        ("runware-birefnet-matting", "runware:112@9"),
        ("runware-birefnet-portrait", "runware:112@10"),
    ],
)
def test_runware_birefnet_sends_its_model_without_settings_and_records_the_reported_cost(
    runware_fake, image, provider_id, model
):
    provider = get_provider(provider_id, api_key=RUNWARE_KEY, base_url=runware_fake.url, retry=RetryPolicy.immediate())
    matte = provider.matte(image)

    (call,) = runware_fake.calls
    (task,) = call.json()
    assert task["model"] == model and task["taskType"] == "removeBackground"
    assert "settings" not in task and "providerSettings" not in task
    assert (task["outputType"], task["outputFormat"], task["includeCost"]) == ("base64Data", "PNG", True)
    assert matte.cost.usd == Decimal("0.0006") and matte.cost.source == "reported"
    assert provider.estimate().usd == Decimal("0.002")  # the reservation, above what Runware reports
    assert provider.options() == {"model": model}
    assert np.array_equal(np.asarray(matte.alpha), np.asarray(simple_matte(image)))
