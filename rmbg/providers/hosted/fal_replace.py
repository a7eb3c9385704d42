"""fal.ai: Bria background replace (`fal-ai/bria/background/replace`) through fal's queue.

Protocol (docs/providers.md; the endpoint's schema on
https://fal.ai/models/fal-ai/bria/background/replace/api), on the same FalQueue as removal (submit, poll,
result, cancel at our deadline):
  POST {queue}/fal-ai/bria/background/replace
    {"image_url": <PNG data URI>,
     "prompt": "..."  or  "ref_image_url": <PNG data URI>   (exactly one),
     "negative_prompt": "", "refine_prompt": true, "original_quality": true,
     "num_images": 1..4, "seed": 0..2147483647 (only when given), "sync_mode": true}
`fast` is not sent: Bria V2 on fal deprecated it and ignores it. Without
`original_quality` the images come back at about 1 MP whatever the input's
size; with it, at the input's size (what a person replacing a background expects).
  -> {"images": [{"url": ...}, ...], "seed": int}
Each url is a data URI (sync_mode: nothing kept in fal's request history) or
a file URL; both go through FalQueue.download (type and size checked, within
the call's deadline, file URLs fetched without our key).

Retries and billing are FalQueue's and http.send's, unchanged: the paid
submit is sent again only when fal certainly did not accept it (no
connection, 408, 429, fal's never-billed 5xx); a dropped connection or a read
timeout after it was sent is not re-sent, and the error says it may have been
billed. Once fal answers the submit with a request id the call is charged
(rmbg.money.charging: ACCEPTED), whatever the polls and downloads then answer.

Cost: fal's answer carries no cost, so it is the price table's estimate per
generated image x num_images (source "estimated").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, Literal

from ...errors import ProviderResponseError
from ...money.pricing import price_estimate
from ...types import SEED_MAX, Cost, Generated, ReplaceRequest
from .base import Connection, HostedClient, connected
from .fal import DEFAULT_QUEUE_URL, URL_ENV, VENDOR, FalQueue
from .payload import excerpt, png_data_uri

if TYPE_CHECKING:
    from PIL import Image

ENDPOINT_ID = "fal-ai/bria/background/replace"


def request_body(image: Image.Image, request: ReplaceRequest) -> dict[str, object]:
    """The JSON body fal's replace endpoint takes for `request` (fields as in its schema)."""
    body: dict[str, object] = {"image_url": png_data_uri(image)}
    if request.ref is not None:
        body["ref_image_url"] = png_data_uri(request.ref)
    else:
        body["prompt"] = request.prompt
    body.update(
        negative_prompt=request.negative_prompt,
        refine_prompt=request.refine_prompt,
        original_quality=True,
        num_images=request.num_images,
        sync_mode=True,
    )
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def read_output(body: object, provider_id: str, requested: int) -> tuple[list[str], int | None]:
    """(image URLs, seed or None) of a result: 1..requested images, each with a url."""
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list) or not images:
        raise ProviderResponseError(provider_id, "the result has no images.", excerpt=excerpt(str(body)[:400]))
    if len(images) > requested:
        raise ProviderResponseError(provider_id, f"returned {len(images)} images for {requested} requested.")
    urls = [item.get("url") if isinstance(item, dict) else None for item in images]
    if not all(isinstance(url, str) and url for url in urls):
        raise ProviderResponseError(provider_id, "an image in the result has no url.", excerpt=excerpt(str(body)[:400]))
    seed = body.get("seed") if isinstance(body, dict) else None
    valid_seed = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX
    return [str(url) for url in urls], (seed if valid_seed else None)


class FalBriaReplace(HostedClient):
    """Bria background replace hosted by fal.ai: new backgrounds from a prompt
    or a reference image, behind the subject of the input. A replacer, not a
    removal provider (rmbg.providers.base.Replacer)."""

    id = "fal-bria-replace"
    label = "fal.ai · Bria background replace"
    kind: ClassVar[Literal["replace"]] = "replace"
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_QUEUE_URL

    def estimate(self, num_images: int = 1) -> Cost:
        """The price table's USD per generated image x num_images."""
        return price_estimate(self.id, num_images)

    def replace(self, image: Image.Image, request: ReplaceRequest) -> Generated:
        """Images (as sent by fal) with new backgrounds behind the subject of an RGB image."""
        start = time.perf_counter()
        queue = FalQueue(self, ENDPOINT_ID)
        handle, body, endpoint, deadline = queue.run(request_body(image, request))
        try:
            urls, seed = read_output(body, self.id, request.num_images)
        except ProviderResponseError as exc:
            raise queue.failed(exc)
        files = tuple(queue.download(url, endpoint, deadline) for url in urls)
        if seed is None:  # fal's schema requires it; tolerate its absence and say so
            seed, source = request.seed, ("request" if request.seed is not None else "unknown")
        else:
            source = "provider"
        meta = {
            "model": "Bria background replace",
            "endpoint": ENDPOINT_ID,
            "request_id": handle.request_id,
            "original_quality": "true",
            "seed_source": source,
        }
        return Generated(files, seed, self.estimate(request.num_images), time.perf_counter() - start, meta)


@connected
def fal_bria_replace(connection: Connection) -> FalBriaReplace:
    """Registry factory for "fal-bria-replace"."""
    return FalBriaReplace(connection)
