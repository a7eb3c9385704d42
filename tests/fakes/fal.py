"""A fake fal.ai queue for `fal-ai/bria/background/remove`,
`fal-ai/bria/background/replace` (fal's queue API as docs/providers.md describes it; the replace model's
checks and outputs are in tests.fakes.fal_replace) and `bria/rmbg-3` (the
remove model's input and output under its own app, `bria/rmbg-3/requests/...`).

Paths (the subpath rule: submit uses the full endpoint id, the rest only
owner/app):
  POST /fal-ai/bria/background/remove          submit -> request_id + URLs
  POST /fal-ai/bria/background/replace         submit (checked like fal: 422 with a detail list)
  GET  /fal-ai/bria/requests/{id}/status?logs=  202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED
  GET  /fal-ai/bria/requests/{id}              the output (400 before completion)
  PUT  /fal-ai/bria/requests/{id}/cancel       202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED | 404 NOT_FOUND
  GET  /files/{name}.png                       results when sync_mode is false
Every answer carries `x-fal-request-id` (except the injected nginx error).
Auth: `Authorization: Key <id>:<secret>` in KEYS, else 401.

Run alone: python -m tests.fakes.fal --port 8765  (key: fal-test-id:fal-test-secret)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from PIL import Image

from . import fal_replace
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

ENDPOINT = "fal-ai/bria/background/remove"
REPLACE_ENDPOINT = "fal-ai/bria/background/replace"
RMBG3_ENDPOINT = "bria/rmbg-3"  # same input and output as ENDPOINT; its app is "bria/rmbg-3"
TEST_KEY = "fal-test-id:fal-test-secret"
# The owner/app part of each endpoint id: where its status, result and cancel URLs live.
APPS = {ENDPOINT: "fal-ai/bria", REPLACE_ENDPOINT: "fal-ai/bria", RMBG3_ENDPOINT: "bria/rmbg-3"}
_REQ = re.compile(r"^/(fal-ai/bria|bria/rmbg-3)/requests/([0-9a-f-]+)(/status|/cancel)?$")


@dataclass
class Job:
    rgb: Image.Image
    sync_mode: bool
    polls_left: int
    error: bool = False
    cancelled: bool = False
    queued: bool = False  # still in the queue at its last status answer ("queued" fault)
    endpoint: str = ENDPOINT
    body: dict | None = None  # a replace request as sent
    ref: Image.Image | None = None

    @property
    def done(self) -> bool:
        return self.polls_left <= 0


class FalFake(FakeServer):
    """Fake fal queue. Faults (op = submit | status | result | cancel | file | *):
    unauthorized (401), locked (403 exhausted balance), admin-lock (403),
    invalid (422 detail list), rate-limit (429, Retry-After if given),
    server-error (500), unavailable (503 runner_scheduling_failure),
    ingress (502 nginx, no request id), start-timeout (504 with
    X-Fal-Request-Timeout-Type), request-timeout (408), slow (hold `delay`
    s, then answer normally), stuck (status: IN_PROGRESS regardless), queued (status: IN_QUEUE
    regardless: a queue that never moves; cancelling such a job removes it, as fal does),
    failed (submit: the job ends COMPLETED with error, its result is 422),
    not-json, missing-field (submit: no status_url; status: no status;
    result: no image), not-image / wrong-size / no-alpha (result; the last
    two for remove only), wrong-type (result: the image is served or
    data-URI-typed as text/html), foreign-url (submit: URLs on another host),
    quote-secret (401 whose body quotes only the secret half of the key sent,
    as a careless proxy might).
    The same faults apply to both endpoints' operations.
    """

    FAULTS = frozenset(
        "unauthorized locked admin-lock invalid rate-limit server-error unavailable ingress start-timeout "
        "request-timeout drop slow stuck queued failed not-json missing-field not-image wrong-size no-alpha "
        "foreign-url wrong-type quote-secret".split()
    )

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        keys=(TEST_KEY,),
        polls_before_done: int = 1,
        file_urls: bool = False,
        file_query: str = "",
    ):
        """polls_before_done: status polls answered 202 before COMPLETED.
        file_urls: answer with a /files/ URL even when sync_mode is true; file_query: a query those
        URLs carry (a signed URL's token)."""
        super().__init__(host, port)
        self.file_urls, self.file_query = file_urls, file_query
        self.keys = set(keys)
        self.polls_before_done = polls_before_done
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # name -> (bytes, content type)

    # --- dispatch -----------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        op, rid = self._route(call)
        if op is None:
            return self._reply(404, {"detail": f"Path {call.path} not found"})
        error, fault = self.next_fault(op)
        if error is not None:
            return error
        if fault is not None and fault.kind == "quote-secret":
            secret = call.headers.get("authorization", "").removeprefix("Key ").partition(":")[2]
            return self._reply(401, {"detail": f"Key secret {secret} does not match this key id"})
        if op == "file":
            found = self.files.get(call.path.rsplit("/", 1)[-1])
            return (
                Reply(200, found[0], {"Content-Type": found[1]}) if found else self._reply(404, {"detail": "Not found"})
            )
        if call.headers.get("authorization") not in {f"Key {k}" for k in self.keys}:
            return self._reply(401, {"detail": "No user found for Key ID and Secret"})
        if op == "submit":
            return self._submit(call, fault)
        job = self.jobs.get(rid)
        if job is not None and not call.path.startswith(f"/{APPS[job.endpoint]}/requests/"):
            job = None  # a request id is only found under its own app
        if job is None:
            return self._reply(404, {"status": "NOT_FOUND"} if op == "cancel" else {"detail": "Request not found"})
        return {"status": self._status, "result": self._result, "cancel": self._cancel}[op](call, rid, job, fault)

    def _route(self, call: Call) -> tuple[str | None, str]:
        if call.method == "POST" and call.path.lstrip("/") in APPS:
            return "submit", ""
        if call.method == "GET" and call.path.startswith("/files/"):
            return "file", ""
        match = _REQ.match(call.path)
        if not match:
            return None, ""
        rid, tail = match.group(2), match.group(3)
        wanted = {None: ("GET", "result"), "/status": ("GET", "status"), "/cancel": ("PUT", "cancel")}[tail]
        return (wanted[1], rid) if call.method == wanted[0] else (None, rid)

    def _reply(self, status: int, obj, headers=None, rid: str | None = None) -> Reply:
        return Reply.json(status, obj, {"x-fal-request-id": rid or str(uuid.uuid4()), **(headers or {})})

    def error_reply(self, fault: Fault) -> Reply | None:
        retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        kind = fault.kind
        if kind == "unauthorized":
            return self._reply(401, {"detail": "No user found for Key ID and Secret"})
        if kind == "locked":
            return self._reply(
                403,
                {
                    "detail": "User is locked. Reason: Exhausted balance. "
                    "Top up your balance at fal.ai/dashboard/billing."
                },
            )
        if kind == "admin-lock":
            return self._reply(403, {"detail": "User is locked. Reason: Admin lock. Please contact support@fal.ai"})
        if kind == "invalid":
            detail = [{"loc": ["body", "image_url"], "msg": "Image is too large", "type": "image_too_large"}]
            return self._reply(422, {"detail": detail}, {"X-Fal-Retryable": "false"})
        if kind == "rate-limit":
            body = {"detail": "Concurrent requests limit reached", "error_type": "concurrent_requests_limit"}
            return self._reply(429, body, {"X-Fal-Needs-Retry": "true", **retry})
        if kind == "server-error":
            return self._reply(500, {"detail": "Internal server error"}, retry)
        if kind == "unavailable":
            body = {"detail": "No runner could be scheduled", "error_type": "runner_scheduling_failure"}
            return self._reply(503, body, {"X-Fal-Error-Type": "runner_scheduling_failure", **retry})
        if kind == "ingress":
            html = b"<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
            return Reply(502, html, {"Content-Type": "text/html"})
        if kind == "start-timeout":
            body = {"detail": "Request timed out before it started", "error_type": "startup_timeout"}
            return self._reply(504, body, {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "startup_timeout"})
        if kind == "request-timeout":
            return self._reply(408, {"detail": "Request timeout"}, retry)
        if kind == "not-json":
            return Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html", "x-fal-request-id": "x"})
        return None  # content faults are applied by the operation itself

    # --- operations ------------------------------------------------------------

    def _submit(self, call: Call, fault: Fault | None) -> Reply:
        try:
            body = call.json()
        except ValueError:
            return self._reply(422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON", "type": "json_invalid"}]})
        if call.path == f"/{REPLACE_ENDPOINT}":
            errors, rgb, ref = fal_replace.check(body)
            if errors:
                return self._reply(422, {"detail": errors}, {"X-Fal-Retryable": "false"})
            job = Job(
                rgb, bool(body.get("sync_mode")), self.polls_before_done, endpoint=REPLACE_ENDPOINT, body=body, ref=ref
            )
        else:
            image_url = body.get("image_url") if isinstance(body, dict) else None
            if not isinstance(image_url, str):
                return self._reply(
                    422, {"detail": [{"loc": ["body", "image_url"], "msg": "Field required", "type": "missing"}]}
                )
            rgb = decode_image_input(image_url) if image_url.startswith("data:") else None
            if rgb is None:
                detail = [{"loc": ["body", "image_url"], "msg": "Could not load the image", "type": "image_load_error"}]
                return self._reply(422, {"detail": detail})
            job = Job(rgb, bool(body.get("sync_mode")), self.polls_before_done, endpoint=call.path.lstrip("/"))
        rid = str(uuid.uuid4())
        kind = fault.kind if fault else ""
        job.error = kind == "failed"
        self.jobs[rid] = job
        base = ("http://other.invalid" if kind == "foreign-url" else self.url) + f"/{APPS[job.endpoint]}/requests/{rid}"
        answer = {
            "request_id": rid,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        if kind == "missing-field":
            del answer["status_url"]
        return self._reply(200, answer, rid=rid)

    def _file(self, image: Image.Image, name: str, sync_mode: bool, kind: str) -> dict:
        """fal's Image object for one output: a data URI (sync_mode) or a /files/ URL we serve."""
        png = b"this is not a PNG" if kind == "not-image" else encode(image, "PNG")
        mime = "text/html" if kind == "wrong-type" else "image/png"
        if sync_mode and not self.file_urls:
            url = data_uri(png, mime)
        else:
            self.files[name] = (png, mime)
            url = f"{self.url}/files/{name}" + (f"?{self.file_query}" if self.file_query else "")
        return {
            "url": url,
            "content_type": "image/png",
            "file_name": name,
            "file_size": len(png),
            "width": image.width,
            "height": image.height,
        }

    def _output(self, job: Job, rid: str, kind: str) -> dict:
        if job.endpoint == REPLACE_ENDPOINT:
            assert job.body is not None
            seed, images = fal_replace.outputs(job.body, job.rgb, job.ref)
            if kind == "missing-field":
                return {"seed": seed}
            return {
                "images": [self._file(img, f"{rid}-{k}.png", job.sync_mode, kind) for k, img in enumerate(images)],
                "seed": seed,
            }
        rgb = job.rgb
        alpha = simple_matte(rgb)
        if kind == "wrong-size":
            rgb, alpha = rgb.resize((rgb.width + 1, rgb.height)), alpha.resize((rgb.width + 1, rgb.height))
        image = rgb if kind == "no-alpha" else cutout(rgb, alpha)
        if kind == "missing-field":
            return {"images": []}
        return {"image": self._file(image, f"{rid}.png", job.sync_mode, kind)}

    def _status(self, call: Call, rid: str, job: Job, fault: Fault | None) -> Reply:
        logs = call.query.get("logs", ["0"])[0]
        if logs not in ("0", "1", "true", "false"):
            return self._reply(
                422, {"detail": [{"loc": ["query", "logs"], "msg": "Invalid bool", "type": "bool_parsing"}]}
            )
        base = f"{self.url}/{APPS[job.endpoint]}/requests/{rid}"
        if fault is not None and fault.kind == "missing-field":
            return self._reply(200, {"response_url": base}, rid=rid)
        if fault is not None and fault.kind == "stuck":
            return self._reply(202, {"status": "IN_PROGRESS", "logs": [], "response_url": base}, rid=rid)
        if fault is not None and fault.kind == "queued":
            job.queued = True
            return self._reply(202, {"status": "IN_QUEUE", "queue_position": 3, "response_url": base}, rid=rid)
        if not job.done:
            job.polls_left -= 1
            if job.polls_left > 0:
                return self._reply(
                    202, {"status": "IN_QUEUE", "queue_position": job.polls_left, "response_url": base}, rid=rid
                )
            return self._reply(202, {"status": "IN_PROGRESS", "logs": [], "response_url": base}, rid=rid)
        answer = {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 0.01}, "response_url": base}
        if job.error:
            answer.update(error="Unprocessable image", error_type="image_load_error")
        return self._reply(200, answer, rid=rid)

    def _result(self, call: Call, rid: str, job: Job, fault: Fault | None) -> Reply:
        if not job.done:
            return self._reply(400, {"detail": "Request is still in progress"}, rid=rid)
        if job.error:
            detail = [{"loc": ["body", "image_url"], "msg": "Unprocessable image", "type": "image_load_error"}]
            return self._reply(422, {"detail": detail}, rid=rid)
        return self._reply(200, self._output(job, rid, fault.kind if fault else ""), rid=rid)

    def _cancel(self, call: Call, rid: str, job: Job, fault: Fault | None) -> Reply:
        if job.done:
            return self._reply(400, {"status": "ALREADY_COMPLETED"}, rid=rid)
        job.cancelled = True
        return self._reply(202, {"status": "CANCELLATION_REQUESTED"}, rid=rid)


def main(argv=None) -> None:
    serve_forever(FalFake, "Fake fal.ai queue for fal-ai/bria/background/remove and .../replace", argv)


if __name__ == "__main__":
    main()
