"""Runware: Bria Video Background Removal (`bria:51@1`).

Schema (Runware's model page, https://runware.ai/docs/models/bria-video-background-removal,
and the official SDK's bundled schema, runware-sdk `BriaVideoBackgroundRemovalParams`):
  task    taskType "removeBackground", taskUUID (UUID v4), model "bria:51@1",
          inputs.video (required: a media UUID, a URL or a data URI), outputType "URL"
          (the only one), outputFormat WEBM | MOV (MP4, the page's default, has no
          alpha), settings.rgba (background; [0, 0, 0, 0], transparent, by default for
          video), includeCost, deliveryMethod "async" (a video task is long: Runware
          answers with an acknowledgement, the result is polled with getResponse);
  result  {taskType, taskUUID, videoUUID, videoURL, cost};
  price   $0.14 per second (Runware reports each task's `cost`, which is what is settled).

The clip goes up as Runware documents media inputs: a `mediaStorage` task
(operation "upload", the clip as a data URI) stores it and answers with a
`mediaUUID`, which the paid task names in `inputs.video`. Storing is not the
paid request. Runware's clips are at most 30 s (its Bria provider page).

Charge (rmbg.money.charging): the removeBackground POST is the paid request; an
answer without an error for our task is Runware taking the job (ACCEPTED), so
any later failure (a failed task, our deadline, a bad result) keeps the charge.
Runware has no cancel: a task we stop waiting for still runs and is billed,
and the error says so. Errors are read by their code (runware_errors).

Configuration: key from `api_key=` or RUNWARE_API_KEY; host RMBG_RUNWARE_URL.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ...errors import ProviderResponseError, ProviderTimeoutError, RmbgError
from ...money.charging import current
from ...money.pricing import reported_cost
from .base import Connection, connected
from .http import json_body
from .payload import excerpt
from .retry import Deadline, Misses
from .runware import RunwareClient
from .video_job import DeclaredVideo, HostedVideo, VideoJob

MODEL = "bria:51@1"
FORMATS = {"webm": "WEBM", "mov": "MOV"}  # Runware's outputFormat for each transparent output
TRANSPARENT = [0, 0, 0, 0]  # settings.rgba: no background colour
UPLOAD_MAX = 100 * 2**20  # rmbg's own cap on one JSON upload (a data URI of the clip)
NO_CANCEL = "Runware has no cancel: the task may still run."


class RunwareBriaVideo(DeclaredVideo, RunwareClient):
    """Bria Video Background Removal on Runware: one paid task per clip, priced per second."""

    id = "runware-bria-video"
    UPLOAD_MAX = UPLOAD_MAX
    PRICE_WORDS = "Runware's price"  # what is held; Runware reports the real cost
    kind: ClassVar[Literal["hosted"]] = "hosted"

    def __init__(self, connection: Connection | None = None, /, **settings: Any):
        from .fal_video import VIDEO_RETRY

        connection = connection or Connection(**settings)
        super().__init__(connection)
        if connection.retry is None:
            deadline = VIDEO_RETRY.deadline_s if connection.deadline_s is None else connection.deadline_s
            self.retry = replace(VIDEO_RETRY, deadline_s=deadline)

    def options(self) -> dict[str, object]:
        return {"model": MODEL}

    def remove(self, job: VideoJob, folder: Path) -> HostedVideo:
        """Upload the clip, run the task, poll it, download the result into `folder`."""
        self.check(job)
        key = self._require_key()
        started = time.perf_counter()
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        deadline = Deadline(self.retry)
        media = self._upload(job, headers, deadline)
        task = self.task(media, job)
        task_uuid = str(task["taskUUID"])
        endpoint = self._runware_endpoint(paid=True)
        api = f"{self.base_url}/v1"
        response = self._send(endpoint, deadline, "POST", api, json=[task], headers=headers, paid=True)
        meter = current()
        try:
            item = self._ours(json_body(response, self.id, "the task's answer", (key,)), task_uuid)
            meter.accepted(self.id, task_uuid)  # Runware took our task: from here it may bill it
            if item is None or not _done(item):
                item = self._wait(task_uuid, headers, deadline)
            url = item.get("videoURL")
            if not isinstance(url, str) or not url:
                raise ProviderResponseError(self.id, "the result has no videoURL.", excerpt=excerpt(str(item)[:400]))
            dest = folder / f"result.{job.output}"
            mime = self._download(url, job, dest, deadline.remaining)
        except RmbgError as exc:
            if isinstance(exc, ProviderTimeoutError) and exc.args and NO_CANCEL not in str(exc.args[0]):
                exc.args = (f"{str(exc.args[0]).rstrip()} {NO_CANCEL}", *exc.args[1:])
            raise meter.annotate(exc)
        estimate = self.estimate(job.billed_seconds)
        cost = reported_cost(item.get("cost"), self.id, estimate.usd)
        meta = {"model": MODEL, "request_id": task_uuid, "seconds": f"{time.perf_counter() - started:.1f}"}
        if isinstance(item.get("videoUUID"), str):
            meta["video_uuid"] = item["videoUUID"]
        return HostedVideo(dest, mime, cost, meta)

    def task(self, media: str, job: VideoJob) -> dict[str, object]:
        """The removeBackground task for one stored clip (a fresh taskUUID each time)."""
        return {
            "taskType": "removeBackground",
            "taskUUID": str(uuid.uuid4()),
            "model": MODEL,
            "inputs": {"video": media},
            "outputType": "URL",
            "outputFormat": FORMATS[job.output],
            "settings": {"rgba": list(TRANSPARENT)},
            "includeCost": True,
            "deliveryMethod": "async",
        }

    # --- steps ------------------------------------------------------------

    def _upload(self, job: VideoJob, headers: dict[str, str], deadline: Deadline) -> str:
        """Store the clip in Runware's media storage (not billed): its mediaUUID."""
        data = job.path.read_bytes()
        media = f"data:{job.content_type};base64," + base64.b64encode(data).decode("ascii")
        task = {"taskType": "mediaStorage", "taskUUID": str(uuid.uuid4()), "operation": "upload", "media": media}
        endpoint = self._runware_endpoint()
        api = f"{self.base_url}/v1"
        response = self._send(endpoint, deadline, "POST", api, json=[task], headers=headers, paid=False)
        item = self._ours(json_body(response, self.id, "the upload's answer", endpoint.secrets), str(task["taskUUID"]))
        stored = item.get("mediaUUID") if item else None
        if not isinstance(stored, str) or not stored:
            raise ProviderResponseError(self.id, "the upload's answer has no mediaUUID.")
        return stored

    def _wait(self, task_uuid: str, headers: dict[str, str], deadline: Deadline) -> dict:
        """Poll getResponse until our task has its result; ProviderTimeoutError at the deadline."""
        endpoint = self._runware_endpoint()
        poll = [{"taskType": "getResponse", "taskUUID": task_uuid}]
        polls, misses = 0, Misses(self.retry)
        while True:
            pause = self.retry.poll_wait(polls + 1)
            if pause >= deadline.remaining():
                raise ProviderTimeoutError(
                    self.id, f"timed out after {self.retry.deadline_s:g} s waiting for task {task_uuid}."
                )
            self.retry.sleep(pause)
            response = self._send(
                endpoint, deadline, "POST", f"{self.base_url}/v1", json=poll, headers=headers, paid=False,
                idempotent=True,
            )  # fmt: skip
            body = misses.read(json_body, response, self.id, "the poll's answer", endpoint.secrets)
            item = None if body is None else self._ours(body, task_uuid)  # None body: polled again (Misses)
            polls += 1
            if item is not None and _done(item):
                return item

    def _ours(self, body: object, task_uuid: str) -> dict | None:
        """Our task's item in an answer (None when there is none yet); its error raises."""
        ours = self._our_items(body, task_uuid)
        return ours[-1] if ours else None


def _done(item: dict) -> bool:
    """A finished item: status success, or a video in it (as the official SDK reads it)."""
    return item.get("status") == "success" or any(
        item.get(name) is not None for name in ("videoURL", "videoBase64Data", "videoDataURI")
    )


@connected
def runware_bria_video(connection: Connection) -> RunwareBriaVideo:
    """Factory for "runware-bria-video" (rmbg.video.providers)."""
    return RunwareBriaVideo(connection)
