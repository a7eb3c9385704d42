"""A fake Runware REST API for `removeBackground` (Runware's documented API; docs/providers.md).

  POST /v1           JSON array of tasks -> {"data": [...]} and/or {"errors": [...]}
  GET  /image/{f}    URL outputs (outputType "URL", the default)

Auth: `Authorization: Bearer <key>` or a leading
{"taskType": "authentication", "apiKey": ...} element; else 401 invalidApiKey.
Tasks: removeBackground (dialect A: inputs.image; legacy inputImage and
imageBackgroundRemoval accepted leniently) and getResponse (async polling).
outputFormat defaults to JPG, which has no alpha, as on the real API.
With includeCost each result carries `cost` (COSTS below).

Run alone: python -m tests.fakes.runware --port 8766  (key: rw-test-key)
"""

from __future__ import annotations

import base64
import uuid

from PIL import Image

from .common import (
    Call,
    FakeServer,
    Fault,
    Reply,
    cutout,
    data_uri,
    decode_image_input,
    encode,
    serve_forever,
    simple_matte,
)

TEST_KEY = "rw-test-key"
# Sources, cited where the code makes each claim: Runware's model pages (https://runware.ai/docs/models/bria-rmbg-v2-0,
# https://runware.ai/docs/models/rembg-v1-4), its errors page (https://runware.ai/docs/platform/errors), its
# authentication page (https://runware.ai/docs/models-api/authentication), its task polling page
# (https://runware.ai/docs/platform/task-polling.md) and the official runware-sdk 1.8.0 (types/task_map.py).
# `cost` with includeCost: the model pages' response examples; BiRefNet has none, so 0.0006 (a third-party
# integration's figure, unconfirmed).
COSTS = {
    "bria:2@1": 0.018,
    "runware:109@1": 0.0013,
    **{f"runware:112@{n}": 0.0006 for n in (1, 2, 3, 5, 6, 7, 8, 9, 10)},
}
REMBG = "runware:109@1"
MIME = {"PNG": "image/png", "JPG": "image/jpeg", "WEBP": "image/webp"}
PIL_FORMAT = {"PNG": "PNG", "JPG": "JPEG", "WEBP": "WEBP"}


# Task failures by code, one of each runware-sdk family (its errors.py): fault name -> (code, message).
TASK_CODES = {
    "content-policy": ("providerContentPolicyViolation", "The provider's content policy refused the input"),
    "sensitive": ("sensitiveContentDetected", "Sensitive content detected in the input image"),
    "image-blocked": ("imageBlocked", "The image was blocked by moderation"),
    "token-expired": ("tokenExpired", "The authentication token has expired"),
    "account-suspended": ("accountSuspended", "This account is suspended"),
    "revoked-key": ("revokedApiKey", "This API key was revoked"),
    "low-balance": ("insufficientBalance", "The balance is too low for this task"),
    "monthly-quota": ("monthlyQuotaReached", "The monthly quota of this account is reached"),
    "no-server": ("noAvailableServer", "No server is available for this model"),
    "model-unavailable": ("modelUnavailable", "The model is not available right now"),
}


def _err(code: str, message: str, **extra) -> dict:
    """One item of `errors`: {code, message, parameter?, taskType?, taskUUID?} (Runware's errors page); the codes
    the fake uses beyond invalidApiKey (the authentication page's example) are illustrative."""
    return {"code": code, "message": message, **extra}


class RunwareFake(FakeServer):
    """Fake Runware. Faults (op = v1 | image | *): insufficient-credits (402),
    invalid-parameter (400), forbidden (403), unauthorized (401), rate-limit
    (429, Retry-After if given), server-error (500), unavailable (503),
    slow (hold `delay` s), not-json, timeout-provider (200 with an errors
    item for the task), error-item (a status:"error" item inside data),
    partial (data for our task plus errors for another), missing-field (no
    image in the item), not-image, wrong-size, no-alpha, no-cost, bad-cost,
    other-uuid (the item answers another taskUUID); and an errors item for the task with one of the
    codes of TASK_CODES (the families runware-sdk's errors.py sorts codes into: a content refusal, an
    expired token, a balance, a busy provider), answered as timeout-provider is.
    """

    FAULTS = frozenset(
        "insufficient-credits invalid-parameter forbidden unauthorized rate-limit server-error unavailable drop slow "
        "not-json timeout-provider error-item partial missing-field not-image wrong-size no-alpha no-cost bad-cost "
        "other-uuid".split()
    ) | frozenset(TASK_CODES)

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        keys=(TEST_KEY,),
        result_task_type="removeBackground",
        settings_on_bria="ignore",
        async_polls: int = 1,
        async_ack="empty",
        force_output_type=None,
        task_error_status: int = 400,
        costs: dict[str, float] | None = None,
        file_query: str = "",
    ):
        """costs: the `cost` reported per model, instead of COSTS (a vendor
        reporting more than the price table says); file_query: a query the imageURLs carry (a signed URL's)."""
        super().__init__(host, port)
        self.costs = {**COSTS, **(costs or {})}
        self.task_error_status = task_error_status  # HTTP status when every task failed (unconfirmed: 400 or 200)
        self.force_output_type = force_output_type  # e.g. "URL": ignore the task's outputType
        self.keys = set(keys)
        # The result's taskType: "removeBackground", the current name (the model pages' response schema,
        # https://runware.ai/docs/models/bria-rmbg-v2-0, and runware-sdk 1.8.0 types/task_map.py); the old
        # "imageBackgroundRemoval" (those pages' response examples, the legacy docs
        # https://docs.runware.ai/en/image-editing/background-removal) only when a test asks for it.
        self.result_task_type = result_task_type
        self.settings_on_bria = settings_on_bria  # or "reject"
        self.async_polls = async_polls
        self.async_ack = async_ack  # "empty" -> {"data": []}, "item" -> [{taskType, taskUUID}]
        self.files: dict[str, tuple[bytes, str]] = {}
        self.file_query = file_query
        self.pending: dict[str, list] = {}  # taskUUID -> [polls left, result item]

    def handle(self, call: Call) -> Reply:
        op = (
            "v1"
            if (call.method, call.path) == ("POST", "/v1")
            else "image"
            if call.path.startswith("/image/")
            else None
        )
        if op is None:
            return Reply.json(404, {"errors": [_err("notFound", f"{call.method} {call.path} not found")]})
        error, fault = self.next_fault(op)
        if error is not None:
            return error
        if op == "image":
            found = self.files.get(call.path.rsplit("/", 1)[-1])
            return Reply(200, found[0], {"Content-Type": found[1]}) if found else Reply.json(404, {"errors": []})
        try:
            tasks = call.json()
        except ValueError:
            tasks = None
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            return Reply.json(
                400, {"errors": [_err("invalidPayload", "The request body must be a JSON array of tasks.")]}
            )
        # A leading authentication task or `Authorization: Bearer` (the authentication page); the 401 body is its
        # documented example.
        if tasks and tasks[0].get("taskType") == "authentication":
            key, tasks = tasks[0].get("apiKey"), tasks[1:]
        else:
            auth = call.headers.get("authorization", "")
            key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if key not in self.keys:
            err = _err(
                "invalidApiKey",
                "Invalid API key. Get one at https://my.runware.ai/signup",
                parameter="apiKey",
                taskType="authentication",
            )
            return Reply.json(401, {"errors": [err]})
        data, errors = [], []
        for task in tasks:
            item, error = self._task(task, fault)
            if item is not None:
                data.append(item)
            elif error is not None:
                errors.append(error)
        if fault is not None and fault.kind == "partial":  # another task of the batch failed
            errors.append(
                _err(
                    "invalidImage",
                    "Could not read inputs.image",
                    parameter="inputs.image",
                    taskUUID=str(uuid.uuid4()),
                    taskType="removeBackground",
                )
            )
        if errors and not data:  # the HTTP status of an all-failed batch is not documented: configurable
            return Reply.json(self.task_error_status, {"errors": errors})
        return Reply.json(200, {"data": data, **({"errors": errors} if errors else {})})

    def error_reply(self, fault: Fault) -> Reply | None:
        retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        # Statuses and codes of the errors page (402 insufficientCredits; 429 and 5xx are not documented there:
        # their codes here are the fake's own).
        table = {
            "insufficient-credits": (
                402,
                "insufficientCredits",
                "Insufficient credits. Top up at https://my.runware.ai/wallet",
                {},
            ),
            "invalid-parameter": (
                400,
                "invalidParameter",
                "Invalid value for outputQuality",
                {"parameter": "outputQuality"},
            ),
            "forbidden": (403, "forbidden", "This API key has no permission for this model", {}),
            "unauthorized": (401, "invalidApiKey", "Invalid API key", {"parameter": "apiKey"}),
            "rate-limit": (429, "rateLimitExceeded", "Too many requests", {}),
            "server-error": (500, "internalServerError", "Internal server error", {}),
            "unavailable": (503, "serviceUnavailable", "Service temporarily unavailable", {}),
        }
        if fault.kind in table:
            status, code, message, extra = table[fault.kind]
            return Reply.json(status, {"errors": [_err(code, message, **extra)]}, retry)
        if fault.kind == "not-json":
            return Reply(200, b"<html>Bad gateway</html>", {"Content-Type": "text/html"})
        return None

    # --- tasks -------------------------------------------------------------------

    def _task(self, task: dict, fault: Fault | None) -> tuple[dict | None, dict | None]:
        kind = task.get("taskType")
        if kind == "getResponse":
            return self._poll(task)
        if kind not in ("removeBackground", "imageBackgroundRemoval"):
            return None, _err("invalidTaskType", f"Unknown taskType {kind!r}", parameter="taskType")
        task_uuid = task.get("taskUUID")
        if not _is_uuid4(task_uuid):
            return None, _err("invalidTaskUUID", "taskUUID must be a UUID v4", parameter="taskUUID", taskType=kind)
        where = {"taskUUID": task_uuid, "taskType": kind}
        model = task.get("model")
        if model not in COSTS:
            return None, _err("invalidModel", f"Unknown model {model!r}", parameter="model", **where)
        settings = task.get("settings") or {}
        if settings and model != REMBG and self.settings_on_bria == "reject":
            return None, _err(
                "unsupportedParameter", "settings is only supported by RemBG", parameter="settings", **where
            )
        source = (
            (task.get("inputs") or {}).get("image") if isinstance(task.get("inputs"), dict) else task.get("inputImage")
        )
        rgb = decode_image_input(source) if isinstance(source, str) else None
        if rgb is None:
            return None, _err("invalidImage", "Could not read inputs.image", parameter="inputs.image", **where)
        fmt = task.get("outputFormat", "JPG")  # the model pages: outputFormat defaults to JPG (no alpha)
        if fmt not in MIME:
            return None, _err("invalidOutputFormat", f"Unknown outputFormat {fmt!r}", parameter="outputFormat", **where)
        name = fault.kind if fault else ""
        if name in TASK_CODES:
            return None, _err(*TASK_CODES[name], status="error", **where)
        if name == "timeout-provider":
            return None, _err(
                "timeoutProvider",
                "The external provider did not respond within the timeout window.",
                status="error",
                **where,
            )
        item = self._result(task, rgb, fmt, settings if model == REMBG else {}, name)
        if name == "error-item":
            item = {
                "taskType": self.result_task_type,
                "taskUUID": task_uuid,
                "status": "error",
                "error": {"code": "inferenceError", "message": "Inference failed"},
            }
        if task.get("deliveryMethod") == "async":
            self.pending[task_uuid] = [self.async_polls, item]
            return ({"taskType": kind, "taskUUID": task_uuid} if self.async_ack == "item" else None), None
        return item, None

    def _result(self, task: dict, rgb: Image.Image, fmt: str, settings: dict, fault: str) -> dict:
        alpha = simple_matte(rgb)
        if settings.get("postProcessMask"):
            alpha = alpha.point(lambda v: 255 if v >= 128 else 0)
        if fault == "wrong-size":
            rgb, alpha = rgb.resize((rgb.width, rgb.height + 1)), alpha.resize((rgb.width, rgb.height + 1))
        if settings.get("returnOnlyMask"):
            image = alpha
        elif fmt == "JPG" or fault == "no-alpha":
            image = rgb  # the JPG default: transparency is lost
        else:
            image = cutout(rgb, alpha)
        raw = b"GIF89a not really" if fault == "not-image" else encode(image, PIL_FORMAT[fmt])
        image_uuid = str(uuid.uuid4())
        item = {
            "taskType": self.result_task_type,
            "taskUUID": task["taskUUID"],
            "imageUUID": image_uuid,
            "inputImageUUID": str(uuid.uuid4()),
        }
        if fault == "other-uuid":
            item["taskUUID"] = str(uuid.uuid4())
        # outputType: imageURL (the default), imageBase64Data or imageDataURI, exactly one (the model pages).
        output = self.force_output_type or task.get("outputType", "URL")
        if fault == "missing-field":
            pass
        elif output == "base64Data":
            item["imageBase64Data"] = base64.b64encode(raw).decode("ascii")
        elif output == "dataURI":
            item["imageDataURI"] = data_uri(raw, MIME[fmt])
        else:
            fname = f"{image_uuid}.{fmt.lower()}"
            self.files[fname] = (raw, MIME[fmt])
            item["imageURL"] = f"{self.url}/image/{fname}" + (f"?{self.file_query}" if self.file_query else "")
        if task.get("includeCost") and fault != "no-cost":  # `cost` in USD when includeCost is true (model pages)
            item["cost"] = "lots" if fault == "bad-cost" else self.costs[task["model"]]
        return item

    def _poll(self, task: dict) -> tuple[dict | None, dict | None]:
        """getResponse: `processing` until done, then the result (the task polling page)."""
        entry = self.pending.get(task.get("taskUUID"))
        if entry is None:
            return None, _err("taskFailedOrNotFound", "No such task", taskUUID=task.get("taskUUID"))
        if entry[0] > 0:
            entry[0] -= 1
            return {"taskType": "removeBackground", "taskUUID": task["taskUUID"], "status": "processing"}, None
        return {**entry[1], "status": "success"}, None  # finished items repeat on later polls


def _is_uuid4(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def main(argv=None) -> None:
    serve_forever(RunwareFake, "Fake Runware REST API (removeBackground)", argv)


if __name__ == "__main__":
    main()
