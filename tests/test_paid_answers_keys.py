"""A paid answer stays with the key that paid for it: the matte cache and the kept video answers are keyed
by whose key pays (rmbg.cache.payer_scope) beside the input, provider and options. Measured from outside,
against the vendors' fakes counting their paid requests, through the launched app's REST door, the
library and a hosted clip.

Before, a matte one visitor's own fal key paid for was handed to a second visitor who sent the same photo
with a made-up key: 200, the hosted matte, "cached", $0, and the fake saw no request at all (the key was
never checked), on a server that does not share its keys; a visitor with a valid key of their own got the
first visitor's matte on the first visitor's money. The same held for a clip kept by a video service."""

from __future__ import annotations

import io
import os
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import rmbg  # noqa: E402
from rmbg.errors import ProviderError  # noqa: E402
from rmbg.registry import get_provider  # noqa: E402
from rmbg.video.providers import get_video_provider  # noqa: E402
from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import app_config, serve  # noqa: E402
from tests.test_hosted_video import FAST, _vendor, payer_for  # noqa: E402
from tests.test_hosted_video import clip as clip  # noqa: E402, F401  (the 12-frame clip fixture)

OTHER_KEY = "fal-second-visitor-key"  # a valid key of another account
MADE_UP = "not-a-key-anyone-has"


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def submits(fal: FalFake) -> int:
    return sum(1 for call in fal.calls if call.method == "POST")


def rest(url: str, image: bytes, key: str) -> httpx.Response:
    files = {"image": ("photo.png", image, "image/png")}
    return httpx.post(url, files=files, data={"provider": "fal-bria"}, headers={"X-Fal-Key": key}, timeout=60)


def paid(answer: httpx.Response) -> tuple[int, str, str]:
    return answer.status_code, answer.headers.get("x-rmbg-cost-usd", ""), answer.headers.get("x-rmbg-cached", "")


def test_rest_a_matte_one_visitors_key_paid_for_is_not_given_to_another_key(tmp_path):
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as base:
        fal.keys.add(OTHER_KEY)
        url, photo = base + "api/remove", png(11)
        assert paid(rest(url, photo, FAL_KEY)) == (200, "0.018", "false")
        assert submits(fal) == 1

        made_up = rest(url, photo, MADE_UP)  # the fake refuses the key: no matte, nothing billed
        assert made_up.status_code == 401 and "the API key was rejected" in made_up.json()["error"], paid(made_up)
        assert submits(fal) == 2  # the key was sent to fal and checked there

        assert paid(rest(url, photo, OTHER_KEY)) == (200, "0.018", "false")  # their own call, on their key
        assert submits(fal) == 3
        assert paid(rest(url, photo, FAL_KEY)) == (200, "0", "true")  # each key's matte is still its own
        assert paid(rest(url, photo, OTHER_KEY)) == (200, "0", "true")
        assert submits(fal) == 3


def test_the_library_cache_keeps_each_keys_matte_to_that_key(tmp_path):
    with FalFake() as fal:
        fal.keys.add(OTHER_KEY)
        photo = Image.open(io.BytesIO(png(12))).convert("RGB")

        def fal_on(key: str):
            return get_provider("fal-bria", api_key=key, base_url=fal.url)

        assert rmbg.remove_background(photo, fal_on(FAL_KEY)).cost.usd == Decimal("0.018")
        with pytest.raises(ProviderError, match="the API key was rejected"):
            rmbg.remove_background(photo, fal_on(MADE_UP))
        other = rmbg.remove_background(photo, fal_on(OTHER_KEY))
        assert not other.cached and other.cost.usd == Decimal("0.018")
        again = rmbg.remove_background(photo, fal_on(FAL_KEY))
        assert again.cached and again.cost.usd == 0
        assert submits(fal) == 3  # one paid call per key, one refused key


def test_a_kept_clip_answer_is_not_given_to_another_key(clip, tmp_path):
    vendor = _vendor("fal")
    with vendor.fake:
        vendor.fake.keys.add(OTHER_KEY)
        payer = payer_for(vendor)

        def remover(api_key: str = FAL_KEY):
            return get_video_provider(vendor.pid, api_key=api_key, base_url=vendor.fake.url, retry=FAST)

        first = rmbg.remove_video(clip, remover(), output=tmp_path / "a.webm", payer=payer)
        assert first.cost.usd == Decimal("0.042") and len(vendor.paid_calls()) == 1
        with pytest.raises(ProviderError, match="key"):
            rmbg.remove_video(clip, remover(api_key=MADE_UP), output=tmp_path / "b.webm", payer=payer)
        assert not (tmp_path / "b.webm").exists()
        other = rmbg.remove_video(clip, remover(api_key=OTHER_KEY), output=tmp_path / "c.webm", payer=payer)
        assert other.cost.usd == Decimal("0.042") and other.cost.source != "free"
        again = rmbg.remove_video(clip, remover(), output=tmp_path / "d.webm", payer=payer)
        assert again.cost.usd == 0 and again.cost.source == "free"
        assert len(vendor.paid_calls()) == 3  # the first key's, the refused made-up key's, the other key's
