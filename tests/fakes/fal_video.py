"""A fake fal.ai for `bria/video/background-removal/v3` (Bria VRMBG 3.0), its
queue and fal's storage, as fal documents them (fal's model page and queue
docs; fal_client 1.0.3 as the reference client: tests/test_hosted_video_sdk.py
drives this fake with it over https).

  POST /bria/video/background-removal/v3           submit -> request_id + URLs (app "bria/video")
  GET  /bria/video/requests/{id}/status?logs=      202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED
  GET  /bria/video/requests/{id}                   {"video": {url, content_type, file_name, file_size}}
  PUT  /bria/video/requests/{id}/cancel            202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED
  POST /storage/auth/token?storage_type=fal-cdn-v3 {token, token_type, base_url, expires_at}
  POST /files/upload                               the raw bytes -> {"access_url"}
  GET  /files/{name}                               uploads and results

Input: video_url (required; a data URI, or a URL this fake serves),
output_container_and_codec (webm_vp9 default, mov_proresks and mkv_vp9 with
alpha; mp4_h264 and the rest of fal's enum come back as an MP4 without
alpha), preserve_audio
(bool, default true). A bad field is a 422 with fal's `detail` list at submit;
a clip that is not a video, or over 60 s, fails in the queue (COMPLETED with
an error, its result a 422), as a job fal took.

Billing, as fal says it bills: whole seconds of successful outputs (`billed`
records each job's seconds, rounded up, when its result is fetched); nothing
for errors (5xx) or failed jobs.
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass, field

from .common import Call, FakeServer, Fault, Reply, serve_forever
from .fal import TEST_KEY
from .fal import FalFake as _ImageFal
from .video import MIME, NOT_A_VIDEO, Clip, cut_out, read_clip

ENDPOINT = "bria/video/background-removal/v3"
APP = "bria/video"
CODECS = {
    "webm_vp9": "webm", "mov_proresks": "mov", "mp4_h264": "mp4", "mp4_h265": "mp4", "mov_h265": "mp4",
    "mkv_h265": "mp4", "mkv_h264": "mp4", "mkv_vp9": "mkv", "avi_h264": "mp4", "gif": "mp4",
}  # fmt: skip
MAX_SECONDS = 60.0
PRICE = 0.042  # USD per second
_REQ = re.compile(rf"^/{APP}/requests/([0-9a-f-]+)(/status|/cancel)?$")


@dataclass
class VideoJob:
    body: dict
    clip: Clip | None
    polls_left: int
    fault: str = ""
    cancelled: bool = False
    result: dict | None = None
    error: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.polls_left <= 0


class FalVideoFake(FakeServer):
    """Faults (op = submit | status | result | cancel | file | token | upload | *): the
    image fake's HTTP ones (unauthorized, locked, admin-lock, invalid, rate-limit,
    server-error, unavailable, ingress, start-timeout, request-timeout, not-json,
    drop, slow) and, on submit, what the finished job does: failed (COMPLETED with
    an error), stuck (never completes), queued (never leaves the queue; a cancel removes it, and
    nothing is billed), no-alpha, short (half the frames),
    not-video, wrong-type (served as text/html), huge (a file over any limit, its
    size declared), huge-undeclared (the same with no file_size), private-url (the
    result on a private address), missing-field (no video in the result)."""

    FAULTS = frozenset(
        "unauthorized locked admin-lock invalid rate-limit server-error unavailable ingress start-timeout "
        "request-timeout not-json drop slow failed stuck queued no-alpha short not-video wrong-type huge "
        "huge-undeclared private-url missing-field".split()
    )
    JOB_FAULTS = frozenset(
        "failed stuck queued no-alpha short not-video wrong-type huge huge-undeclared private-url missing-field".split()
    )

    def __init__(self, host="127.0.0.1", port=0, *, keys=(TEST_KEY,), polls_before_done: int = 1):
        super().__init__(host, port)
        self.keys = set(keys)
        self.polls_before_done = polls_before_done
        self.jobs: dict[str, VideoJob] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tokens: set[str] = set()
        self.billed: list[int] = []  # seconds billed, one entry per successful result
        self.received: list[Clip | None] = []  # every clip a paid request brought, as read
        self.huge_bytes = 40 * 2**20

    @property
    def usd_billed(self) -> float:
        return round(sum(self.billed) * PRICE, 6)

    # --- dispatch -----------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        op, rid = self._route(call)
        if op is None:
            return self._reply(404, {"detail": f"Path {call.path} not found"})
        error, fault = self.next_fault(op)
        if error is not None:
            return error
        if op == "file":
            found = self.files.get(call.path.rsplit("/", 1)[-1])
            return Reply(200, found[0], {"Content-Type": found[1]}) if found else self._reply(404, {"detail": "no"})
        if op == "upload":
            return self._upload(call)
        if call.headers.get("authorization") not in {f"Key {k}" for k in self.keys}:
            return self._reply(401, {"detail": "No user found for Key ID and Secret"})
        if op == "token":
            return self._token(call)
        if op == "submit":
            return self._submit(call, fault)
        job = self.jobs.get(rid)
        if job is None:
            return self._reply(404, {"status": "NOT_FOUND"} if op == "cancel" else {"detail": "Request not found"})
        return {"status": self._status, "result": self._result, "cancel": self._cancel}[op](call, rid, job)

    def _route(self, call: Call) -> tuple[str | None, str]:
        if call.method == "POST" and call.path == f"/{ENDPOINT}":
            return "submit", ""
        if call.method == "POST" and call.path == "/storage/auth/token":
            return "token", ""
        if call.method == "POST" and call.path == "/files/upload":
            return "upload", ""
        if call.method == "GET" and call.path.startswith("/files/"):
            return "file", ""
        match = _REQ.match(call.path)
        if not match:
            return None, ""
        wanted = {None: ("GET", "result"), "/status": ("GET", "status"), "/cancel": ("PUT", "cancel")}[match.group(2)]
        return (wanted[1], match.group(1)) if call.method == wanted[0] else (None, match.group(1))

    def _reply(self, status: int, obj, headers=None, rid: str | None = None) -> Reply:
        return Reply.json(status, obj, {"x-fal-request-id": rid or str(uuid.uuid4()), **(headers or {})})

    def error_reply(self, fault: Fault) -> Reply | None:
        if fault.kind in self.JOB_FAULTS:
            return None  # what the job does, not an HTTP answer
        return _ImageFal.error_reply(self, fault)  # fal's own error shapes, shared with the image fake

    # --- storage --------------------------------------------------------------

    def _token(self, call: Call) -> Reply:
        if call.query.get("storage_type") != ["fal-cdn-v3"]:
            return self._reply(422, {"detail": [{"loc": ["query", "storage_type"], "msg": "bad", "type": "enum"}]})
        token = uuid.uuid4().hex
        self.tokens.add(token)
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body = {"token": token, "token_type": "Bearer", "base_url": self.url, "expires_at": expires.isoformat()}
        return self._reply(200, body)

    def _upload(self, call: Call) -> Reply:
        if call.headers.get("authorization") not in {f"Bearer {t}" for t in self.tokens}:
            return self._reply(401, {"detail": "Invalid CDN token"})
        name = f"{uuid.uuid4().hex}-{call.headers.get('x-fal-file-name', 'upload.bin')}"
        self.files[name] = (call.body, call.headers.get("content-type", "application/octet-stream"))
        return self._reply(200, {"access_url": f"{self.url}/files/{name}"})

    # --- queue ------------------------------------------------------------------

    def _submit(self, call: Call, fault: Fault | None) -> Reply:
        try:
            body = call.json()
        except ValueError:
            body = None
        problems = self._check(body)
        if problems:
            return self._reply(422, {"detail": problems}, {"X-Fal-Retryable": "false"})
        data = self._input_bytes(body["video_url"])
        clip = read_clip(data) if data is not None else None
        self.received.append(clip)
        rid = str(uuid.uuid4())
        job = VideoJob(body, clip, self.polls_before_done, fault.kind if fault else "")
        if clip is None:
            job.error = "Could not load the video"
        elif clip.seconds > MAX_SECONDS:
            job.error = f"Video is longer than {MAX_SECONDS:g} seconds"
        self.jobs[rid] = job
        base = f"{self.url}/{APP}/requests/{rid}"
        answer = {
            "request_id": rid, "status": "IN_QUEUE", "queue_position": 0, "response_url": base,
            "status_url": f"{base}/status", "cancel_url": f"{base}/cancel",
        }  # fmt: skip
        return self._reply(200, answer, rid=rid)

    def _check(self, body) -> list[dict]:
        if not isinstance(body, dict):
            return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
        problems = []
        if not isinstance(body.get("video_url"), str):
            problems.append({"loc": ["body", "video_url"], "msg": "Field required", "type": "missing"})
        codec = body.get("output_container_and_codec", "webm_vp9")
        if codec not in CODECS:
            problems.append(
                {"loc": ["body", "output_container_and_codec"], "msg": f"Input should be one of {list(CODECS)}",
                 "type": "enum"}
            )  # fmt: skip
        if not isinstance(body.get("preserve_audio", True), bool):
            problems.append({"loc": ["body", "preserve_audio"], "msg": "Input should be a boolean", "type": "bool"})
        return problems

    def _input_bytes(self, url: str) -> bytes | None:
        if url.startswith("data:"):
            import base64
            import binascii

            try:
                return base64.b64decode(url.partition(",")[2], validate=True)
            except (binascii.Error, ValueError):
                return None
        found = self.files.get(url.rsplit("/", 1)[-1]) if url.startswith(f"{self.url}/files/") else None
        return found[0] if found else None

    def _status(self, call: Call, rid: str, job: VideoJob) -> Reply:
        base = f"{self.url}/{APP}/requests/{rid}"
        if job.fault == "queued":
            return self._reply(202, {"status": "IN_QUEUE", "queue_position": 3, "response_url": base}, rid=rid)
        if job.fault == "stuck" or job.cancelled:
            return self._reply(202, {"status": "IN_PROGRESS", "logs": [], "response_url": base}, rid=rid)
        if not job.done:
            job.polls_left -= 1
            if job.polls_left > 0:
                body = {"status": "IN_QUEUE", "queue_position": job.polls_left, "response_url": base}
                return self._reply(202, body, rid=rid)
            return self._reply(202, {"status": "IN_PROGRESS", "logs": [], "response_url": base}, rid=rid)
        answer = {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 0.5}, "response_url": base}
        if job.error or job.fault == "failed":
            answer.update(error=job.error or "Inference failed", error_type="video_processing_error")
        return self._reply(200, answer, rid=rid)

    def _result(self, call: Call, rid: str, job: VideoJob) -> Reply:
        if not job.done or job.fault in ("stuck", "queued"):
            return self._reply(400, {"detail": "Request is still in progress"}, rid=rid)
        if job.error or job.fault == "failed":
            detail = [{"loc": ["body", "video_url"], "msg": job.error or "Inference failed", "type": "video_error"}]
            return self._reply(422, {"detail": detail}, rid=rid)
        if job.result is None:
            job.result = self._output(rid, job)
            assert job.clip is not None
            self.billed.append(job.clip.billed_seconds)
        return self._reply(200, job.result, rid=rid)

    def _output(self, rid: str, job: VideoJob) -> dict:
        assert job.clip is not None
        fmt = CODECS[job.body.get("output_container_and_codec", "webm_vp9")]
        kind = job.fault
        if kind == "missing-field":
            return {"videos": []}
        if kind == "not-video":
            data = NOT_A_VIDEO
        elif kind in ("huge", "huge-undeclared"):
            data = cut_out(job.clip, fmt) + b"\0" * self.huge_bytes
        else:
            data = cut_out(job.clip, fmt, alpha=kind != "no-alpha", keep=0.5 if kind == "short" else 1.0)
        name = f"{rid}.{fmt}"
        self.files[name] = (data, "text/html" if kind == "wrong-type" else MIME[fmt])
        host = "http://10.11.12.13:8080" if kind == "private-url" else self.url
        video = {"url": f"{host}/files/{name}", "content_type": MIME[fmt], "file_name": name, "file_size": len(data)}
        if kind == "huge-undeclared":
            del video["file_size"]
        return {"video": video}

    def _cancel(self, call: Call, rid: str, job: VideoJob) -> Reply:
        if job.done and job.fault not in ("stuck", "queued"):
            return self._reply(400, {"status": "ALREADY_COMPLETED"}, rid=rid)
        job.cancelled = True
        return self._reply(202, {"status": "CANCELLATION_REQUESTED"}, rid=rid)


def main(argv=None) -> None:
    serve_forever(FalVideoFake, "Fake fal.ai for bria/video/background-removal/v3", argv)


if __name__ == "__main__":
    main()
