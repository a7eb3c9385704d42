"""Runware: Bria RMBG 2.0 (`bria:2@1`), RemBG 1.4 (`runware:109@1`) and the
BiRefNet models (`runware:112@1`, `@6`, `@8`).

Protocol (https://runware.ai/docs/en/image-editing/background-removal; docs/providers.md): one REST call,
  POST {base}/v1, `Authorization: Bearer <key>`, body a JSON array with one
  `removeBackground` task (fresh UUID v4, `inputs.image` a PNG data URI,
  `outputType: base64Data`, `outputFormat: PNG` (the JPG default has no
  alpha), `includeCost: true`, `deliveryMethod: sync`);
answer `{"data": [item]}` matched by taskUUID, or `{"errors": [...]}`.

The PNG's alpha channel is the matte; the item's `cost` is the reported
price. Only RemBG takes `settings`, and only those that change the matte
(post-processing and alpha matting); background colour and mask-only are
rendered locally and never sent.

Configuration: key from `api_key=` or RUNWARE_API_KEY; host from
`base_url=` or RMBG_RUNWARE_URL (default https://api.runware.ai).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import (
    ProviderHTTPError,
    ProviderResponseError,
    RmbgError,
)
from ...money.charging import current
from ...money.pricing import reported_cost
from ...types import Matte
from .base import Connection, HostedClient, HostedProvider, connected
from .http import Endpoint, json_body
from .payload import (
    alpha_from_image_bytes,
    decode_base64,
    decode_data_uri,
    download_result,
    excerpt,
    png_data_uri,
)
from .retry import Deadline
from .runware_errors import (
    VENDOR,
    code_error,
    error_list,
    item_error,
    runware_charge,
    runware_reason,
    task_failure,
)

MAX_RESULT_BYTES = 128 * 2**20  # an imageURL's file, as fal's results
URL_ENV = "RMBG_RUNWARE_URL"
DEFAULT_URL = "https://api.runware.ai"
RESULT_TASK_TYPES = ("removeBackground", "imageBackgroundRemoval")  # docs schema vs docs examples


class RunwareClient(HostedClient):
    """What every Runware client shares: its key and host, and its answers read by their error code
    (runware_errors): the image removers below and the video one (rmbg.providers.hosted.runware_video)."""

    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_URL

    def _runware_endpoint(self, *, paid: bool = False) -> Endpoint:
        """The Endpoint of one call to Runware's API; the paid task's also reads what an answer was
        charged by its error code (runware_charge)."""
        return self._endpoint(runware_reason, self._classify, charge_of=runware_charge if paid else None)

    def _classify(self, response) -> ProviderHTTPError | None:
        """Task failures Runware sends with a 4xx status that are not about our input, named by their
        code (runware_errors.task_failure); other statuses keep the mapping by HTTP status."""
        return task_failure(self.id, response, self._secrets())

    def _our_items(self, body: object, task_uuid: str, what: str = "the answer") -> list[dict]:
        """The items of our task in an answer body (`what`, for the message), oldest first; an error
        for our task, or for no task, raises (code_error), as does a body that is not a JSON object."""
        if not isinstance(body, dict):
            raise ProviderResponseError(self.id, f"{what} is not a JSON object.", excerpt=excerpt(str(body)[:400]))
        data: list = body["data"] if isinstance(body.get("data"), list) else []
        ours = [i for i in data if isinstance(i, dict) and i.get("taskUUID") == task_uuid]
        errors = [e for e in error_list(body) if e.get("taskUUID") in (None, task_uuid)]
        errors += [item_error(i) for i in ours if i.get("status") == "error"]
        if errors:
            raise code_error(self.id, errors[0], self._secrets())
        return ours


@dataclass(frozen=True)
class RembgSettings:
    """RemBG 1.4 options that change the matte (Runware's `settings`).

    Thresholds are 8-bit levels (1-255); erode size is in pixels.
    """

    post_process_mask: bool = False
    alpha_matting: bool = False
    alpha_matting_foreground_threshold: int = 240
    alpha_matting_background_threshold: int = 10
    alpha_matting_erode_size: int = 10

    def __post_init__(self):
        for name in (
            "alpha_matting_foreground_threshold",
            "alpha_matting_background_threshold",
            "alpha_matting_erode_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
                raise ValueError(f"{name} must be a whole number from 1 to 255, got {value!r}")

    def wire(self) -> dict[str, object]:
        """The `settings` object Runware expects."""
        return {
            "postProcessMask": self.post_process_mask,
            "alphaMatting": self.alpha_matting,
            "alphaMattingForegroundThreshold": self.alpha_matting_foreground_threshold,
            "alphaMattingBackgroundThreshold": self.alpha_matting_background_threshold,
            "alphaMattingErodeSize": self.alpha_matting_erode_size,
        }


class RunwareRemoveBackground(HostedProvider, RunwareClient):
    """One Runware background-removal model. Cost: Runware's reported `cost`.

    No retry of the paid POST after it may have arrived: Runware does not
    document 5xx answers as unbilled, so only a refused connection, 408 and
    429 are sent again (rmbg.providers.hosted.http). Charge (rmbg.money.charging):
    the answer carrying our task's result is ACCEPTED; errors are read by
    their code (runware_charge)."""

    def __init__(
        self,
        provider_id: str,
        label: str,
        model: str,
        connection: Connection | None = None,
        /,
        *,
        settings: RembgSettings | None = None,
        **fields,
    ):
        """model: Runware AIR id. settings: only for RemBG (runware:109@1).
        connection, or its fields by name: see HostedClient."""
        super().__init__(connection, **fields)
        self.id = provider_id
        self.label = label
        self.model = model
        self.settings = settings

    # --- Provider protocol ------------------------------------------------

    def options(self) -> Mapping[str, object]:
        opts: dict[str, object] = {"model": self.model}
        if self.settings is not None:
            opts.update(self.settings.wire())
        return opts

    def task(self, image) -> dict[str, object]:
        """The removeBackground task for one image (a fresh taskUUID each time)."""
        task: dict[str, object] = {
            "taskType": "removeBackground",
            "taskUUID": str(uuid.uuid4()),
            "model": self.model,
            "inputs": {"image": png_data_uri(image)},
            "outputType": "base64Data",
            "outputFormat": "PNG",
            "includeCost": True,
            "deliveryMethod": "sync",
        }
        if self.settings is not None:
            task["settings"] = self.settings.wire()
        return task

    def matte(self, image) -> Matte:
        """Alpha (mode L, image.size) of an RGB PIL image via Runware."""
        key = self._require_key()
        endpoint = self._runware_endpoint(paid=True)
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        task = self.task(image)
        deadline = Deadline(self.retry)
        start = time.perf_counter()
        response = self._send(
            endpoint, deadline, "POST", f"{self.base_url}/v1", json=[task], headers=headers, paid=True
        )
        meter = current()
        try:
            item = self._item(json_body(response, self.id, "the response", (key,)), str(task["taskUUID"]))
            meter.accepted(self.id, str(task["taskUUID"]))  # Runware answered our task with its result
            data = self._image_bytes(endpoint, deadline, item)
            alpha = alpha_from_image_bytes(data, image.size, self.id)
        except RmbgError as exc:
            raise meter.annotate(exc)
        meta = {"model": self.model, "request_id": str(task["taskUUID"])}
        if isinstance(item.get("imageUUID"), str):
            meta["image_uuid"] = item["imageUUID"]
        return Matte(
            alpha=alpha, cost=reported_cost(item.get("cost"), self.id), seconds=time.perf_counter() - start, meta=meta
        )

    # --- steps ------------------------------------------------------------

    def _item(self, body, task_uuid: str) -> dict:
        """Our task's result item; errors for our task (or for no task) raise."""
        ours = self._our_items(body, task_uuid, "the response")
        if not ours:
            raise ProviderResponseError(
                self.id, "the response has no result for our task.", excerpt=excerpt(str(body)[:400])
            )
        item = ours[0]
        if item.get("taskType") not in RESULT_TASK_TYPES:
            raise ProviderResponseError(
                self.id, f"the result has an unexpected taskType {str(item.get('taskType'))[:40]!r}."
            )
        return item

    def _image_bytes(self, endpoint: Endpoint, deadline: Deadline, item: dict) -> bytes:
        if isinstance(item.get("imageBase64Data"), str):
            return decode_base64(item["imageBase64Data"], self.id)
        if isinstance(item.get("imageDataURI"), str):
            return decode_data_uri(item["imageDataURI"], self.id)
        url = item.get("imageURL")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            # public, no key sent; streamed, capped, its URL guarded (payload.download_result)
            return download_result(
                url, self.id, base_url=self.base_url, max_bytes=MAX_RESULT_BYTES, seconds_left=deadline.remaining
            )
        raise ProviderResponseError(self.id, "the result has no image (imageBase64Data, imageDataURI or imageURL).")


@connected
def runware_bria(connection: Connection) -> RunwareRemoveBackground:
    """Registry factory for "runware-bria" (bria:2@1, Bria RMBG 2.0)."""
    return RunwareRemoveBackground("runware-bria", "Runware · Bria RMBG 2.0", "bria:2@1", connection)


@connected
def runware_rembg(
    connection: Connection,
    *,
    post_process_mask: bool = False,
    alpha_matting: bool = False,
    alpha_matting_foreground_threshold: int = 240,
    alpha_matting_background_threshold: int = 10,
    alpha_matting_erode_size: int = 10,
) -> RunwareRemoveBackground:
    """Registry factory for "runware-rembg" (runware:109@1, RemBG 1.4) with its options."""
    settings = RembgSettings(
        post_process_mask,
        alpha_matting,
        alpha_matting_foreground_threshold,
        alpha_matting_background_threshold,
        alpha_matting_erode_size,
    )
    label = "Runware · RemBG 1.4"
    return RunwareRemoveBackground("runware-rembg", label, "runware:109@1", connection, settings=settings)


@connected
def runware_birefnet(connection: Connection, provider_id: str, model: str, label: str) -> RunwareRemoveBackground:
    """Registry factory for Runware's BiRefNet models (runware:112@N; the
    declaration passes its id, model and label; e.g.
    https://runware.ai/docs/models/birefnet-v1-base). They take the same
    removeBackground task as bria:2@1 and answer the same way: their model
    pages list no `settings` and no provider settings, so none are sent."""
    return RunwareRemoveBackground(provider_id, label, model, connection)
