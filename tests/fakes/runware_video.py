"""A fake Runware for Bria Video Background Removal (`bria:51@1`) and its media
storage, as Runware documents them (the model page, the media storage page,
the task polling page; runware-sdk 1.8.0 as the reference client:
tests/test_hosted_video_sdk.py drives this fake with it over REST).

  POST /v1          a JSON array of tasks -> {"data": [...]} and/or {"errors": [...]}
    mediaStorage    operation "upload", media (data URI, base64, or a URL this fake
                    serves) -> {mediaUUID, mediaURL}
    removeBackground  model bria:51@1, inputs.video (a mediaUUID, a data URI or a URL
                    this fake serves), outputType "URL" (the only one), outputFormat
                    MP4 (default: no alpha) | WEBM | MOV, settings.rgba, includeCost,
                    deliveryMethod async (default; sync answered at once when
                    `sync_ok`) -> an acknowledgement {taskType, taskUUID}
    getResponse     processing `polls` times, then success {taskType, taskUUID,
                    videoUUID, videoURL, cost, status} (repeated on later polls)
  GET  /video/{f}   results;  GET /media/{uuid}  stored media

Auth as the image fake (Bearer, or a leading authentication task). Clips over
30 s fail in the task (an error item). Billing: $0.14 per second of a finished
task, whole seconds rounded up (`billed`); `cost` reports it.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from .common import Call, FakeServer, Fault, Reply, serve_forever
from .runware import TEST_KEY, _err, _is_uuid4
from .runware import RunwareFake as _ImageRunware
from .video import MIME, NOT_A_VIDEO, Clip, cut_out, read_clip

MODEL = "bria:51@1"
PRICE = 0.14
MAX_SECONDS = 30.0
FORMATS = {"MP4": "mp4", "WEBM": "webm", "MOV": "mov"}


class RunwareVideoFake(FakeServer):
    """Faults (op = upload | task | poll | video | *): the image fake's HTTP ones
    (insufficient-credits, invalid-parameter, forbidden, unauthorized, rate-limit,
    server-error, unavailable, not-json, drop, slow) and, on the task, what it
    then does: error-item (the poll's item has status error), timeout-provider
    (the poll answers an errors list), stuck (always processing), no-alpha,
    short, not-video, wrong-type, huge, private-url, missing-field (no videoURL),
    no-cost, bad-cost."""

    FAULTS = frozenset(
        "insufficient-credits invalid-parameter forbidden unauthorized rate-limit server-error unavailable "
        "not-json drop slow error-item timeout-provider stuck no-alpha short not-video wrong-type huge "
        "private-url missing-field no-cost bad-cost".split()
    )

    def __init__(self, host="127.0.0.1", port=0, *, keys=(TEST_KEY,), polls: int = 1, ack="item", sync_ok=False):
        super().__init__(host, port)
        self.keys = set(keys)
        self.polls = polls
        self.ack = ack  # "item": [{taskType, taskUUID}]; "empty": [] (the SDK's tests' form)
        self.sync_ok = sync_ok
        self.media: dict[str, bytes] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tasks: dict[str, dict] = {}  # taskUUID -> {"polls": n, "item": ..., "error": ...}
        self.billed: list[int] = []
        self.received: list[Clip | None] = []  # every clip a paid request brought, as read
        self.huge_bytes = 40 * 2**20

    @property
    def usd_billed(self) -> float:
        return round(sum(self.billed) * PRICE, 6)

    def handle(self, call: Call) -> Reply:
        if call.method == "GET" and call.path.startswith(("/video/", "/media/")):
            error, _ = self.next_fault("video")
            if error is not None:
                return error
            name = call.path.rsplit("/", 1)[-1]
            found = self.files.get(name) or ((self.media[name], "video/mp4") if name in self.media else None)
            return Reply(200, found[0], {"Content-Type": found[1]}) if found else Reply.json(404, {"errors": []})
        if (call.method, call.path) != ("POST", "/v1"):
            return Reply.json(404, {"errors": [_err("notFound", f"{call.method} {call.path} not found")]})
        try:
            tasks = call.json()
        except ValueError:
            tasks = None
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            return Reply.json(400, {"errors": [_err("invalidPayload", "The request body must be a JSON array.")]})
        kinds = {t.get("taskType") for t in tasks}
        op = "upload" if "mediaStorage" in kinds else "poll" if kinds == {"getResponse"} else "task"
        error, fault = self.next_fault(op)
        if error is not None:
            return error
        if tasks and tasks[0].get("taskType") == "authentication":
            key, tasks = tasks[0].get("apiKey"), tasks[1:]
        else:
            auth = call.headers.get("authorization", "")
            key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if key not in self.keys:
            err = _err("invalidApiKey", "Invalid API key.", parameter="apiKey", taskType="authentication")
            return Reply.json(401, {"errors": [err]})
        data, errors = [], []
        for task in tasks:
            item, problem = self._task(task, fault)
            if item is not None:
                data.append(item)
            if problem is not None:
                errors.append(problem)
        if errors and not data:
            return Reply.json(400, {"errors": errors})
        return Reply.json(200, {"data": data, **({"errors": errors} if errors else {})})

    def error_reply(self, fault: Fault) -> Reply | None:
        return _ImageRunware.error_reply(self, fault)  # Runware's own error shapes, shared with the image fake

    # --- tasks -------------------------------------------------------------------

    def _task(self, task: dict, fault: Fault | None) -> tuple[dict | None, dict | None]:
        kind = task.get("taskType")
        if kind == "mediaStorage":
            return self._store(task)
        if kind == "getResponse":
            return self._poll(task)
        if kind != "removeBackground":
            return None, _err("invalidTaskType", f"Unknown taskType {kind!r}", parameter="taskType")
        task_uuid = task.get("taskUUID")
        if not _is_uuid4(task_uuid):
            return None, _err("invalidTaskUUID", "taskUUID must be a UUID v4", parameter="taskUUID", taskType=kind)
        where = {"taskUUID": task_uuid, "taskType": kind}
        if task.get("model") != MODEL:
            return None, _err("invalidModel", f"Unknown model {task.get('model')!r}", parameter="model", **where)
        problem = self._check(task, where)
        if problem is not None:
            return None, problem
        inputs = task.get("inputs") if isinstance(task.get("inputs"), dict) else {}
        data = self._bytes(inputs.get("video"))
        if data is None:
            return None, _err("invalidVideo", "Could not read inputs.video", parameter="inputs.video", **where)
        entry = {"polls": self.polls, "task": task, "clip": read_clip(data), "fault": fault.kind if fault else ""}
        self.received.append(entry["clip"])
        self.tasks[task_uuid] = entry
        if task.get("deliveryMethod", "async") == "sync":
            if not self.sync_ok:
                return None, _err("unsupportedDeliveryMethod", "Video tasks are async only", **where)
            entry["polls"] = 0
            return self._poll({"taskUUID": task_uuid})
        return ({"taskType": kind, "taskUUID": task_uuid} if self.ack == "item" else None), None

    def _check(self, task: dict, where: dict) -> dict | None:
        if task.get("outputType", "URL") != "URL":
            return _err("invalidOutputType", "Video output type must be URL", parameter="outputType", **where)
        if task.get("outputFormat", "MP4") not in FORMATS:
            why = "outputFormat must be MP4, WEBM or MOV"
            return _err("invalidOutputFormat", why, parameter="outputFormat", **where)
        rgba = (task.get("settings") or {}).get("rgba", [0, 0, 0, 0])
        if not (isinstance(rgba, list) and len(rgba) == 4 and all(isinstance(v, (int, float)) for v in rgba)):
            return _err("invalidRgba", "settings.rgba must be 4 numbers", parameter="settings.rgba", **where)
        return None

    def _bytes(self, value) -> bytes | None:
        if not isinstance(value, str):
            return None
        if value in self.media:
            return self.media[value]
        if value.startswith(f"{self.url}/media/"):
            return self.media.get(value.rsplit("/", 1)[-1])
        payload = value.partition(",")[2] if value.startswith("data:") else value
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None

    def _store(self, task: dict) -> tuple[dict | None, dict | None]:
        where = {"taskUUID": task.get("taskUUID"), "taskType": "mediaStorage"}
        if task.get("operation") != "upload":
            return None, _err("invalidOperation", "operation must be upload or delete", parameter="operation", **where)
        data = self._bytes(task.get("media"))
        if not data:
            return None, _err("invalidMedia", "Could not read media", parameter="media", **where)
        media_uuid = str(uuid.uuid4())
        self.media[media_uuid] = data
        item = {**where, "operation": "upload", "mediaUUID": media_uuid, "mediaURL": f"{self.url}/media/{media_uuid}"}
        return item, None

    def _poll(self, task: dict) -> tuple[dict | None, dict | None]:
        task_uuid = task.get("taskUUID")
        entry = self.tasks.get(task_uuid)
        if entry is None:
            return None, _err("taskFailedOrNotFound", "No such task", taskUUID=task_uuid)
        where = {"taskType": "removeBackground", "taskUUID": task_uuid}
        if entry["fault"] == "stuck" or entry["polls"] > 0:
            entry["polls"] -= 1
            return {**where, "status": "processing"}, None
        clip: Clip | None = entry["clip"]
        if entry["fault"] == "timeout-provider":
            return None, _err("timeoutProvider", "The provider did not respond in time.", status="error", **where)
        if entry["fault"] == "error-item" or clip is None or clip.seconds > MAX_SECONDS:
            why = "Inference failed" if clip is not None and clip.seconds <= MAX_SECONDS else "Could not process video"
            return {**where, "status": "error", "error": {"code": "inferenceError", "message": why}}, None
        if "item" not in entry:
            entry["item"] = self._result(entry, clip)
            self.billed.append(clip.billed_seconds)
        return entry["item"], None

    def _result(self, entry: dict, clip: Clip) -> dict:
        task, kind = entry["task"], entry["fault"]
        fmt = FORMATS[task.get("outputFormat", "MP4")]
        if kind == "not-video":
            data = NOT_A_VIDEO
        elif kind == "huge":
            data = cut_out(clip, fmt) + b"\0" * self.huge_bytes
        else:
            data = cut_out(clip, fmt, alpha=kind != "no-alpha" and fmt != "mp4", keep=0.5 if kind == "short" else 1.0)
        video_uuid = str(uuid.uuid4())
        name = f"{video_uuid}.{fmt}"
        self.files[name] = (data, "text/html" if kind == "wrong-type" else MIME[fmt])
        host = "http://192.168.77.1" if kind == "private-url" else self.url
        item = {"taskType": "removeBackground", "taskUUID": task["taskUUID"], "status": "success",
                "videoUUID": video_uuid, "videoURL": f"{host}/video/{name}"}  # fmt: skip
        if kind == "missing-field":
            del item["videoURL"]
        if task.get("includeCost") and kind != "no-cost":
            item["cost"] = "plenty" if kind == "bad-cost" else round(clip.billed_seconds * PRICE, 6)
        return item


def main(argv=None) -> None:
    serve_forever(RunwareVideoFake, "Fake Runware REST API (bria:51@1 video background removal)", argv)


if __name__ == "__main__":
    main()
