"""A fake Cloudflare Workers AI for Bria's `bria/v-rmbg-3.0`, as Cloudflare documents it (the model
page https://developers.cloudflare.com/ai/models/bria/v-rmbg-3.0/ and its schema-input.json; the
Workers AI errors page; the API's {success, errors, messages, result} envelope).

  POST /accounts/{account}/ai/run   Authorization: Bearer <token>;
                                    {"model": "bria/v-rmbg-3.0", "input": {video, background_color,
                                    output_container_and_codec, preserve_audio, auto_zoom, spill_suppression}}
                                    -> 200 {"state": "Completed", "result": {"video": url[, "warning"]}}
                                    (with `envelope=True`, inside {success, errors, messages, result})
  GET  /video/{name}                the results

Every answer carries a CF-Ray header. Input as the schema says it: `video` required (here a data:
URI, or a URL this fake serves), the enums checked, no other property (additionalProperties:
false): a bad one is a 400 with Cloudflare's errors list (the page documents no code for it:
none is given). Transparent needs mov_proresks: with another preset the result is Black (an MP4
without alpha here) and the answer has a `warning`, as the page says. A clip that is not a video,
or over 60 s, is a 400 (not billed). A bad token is a 401 with code 10000 ("Authentication
error"); a token for another account a 403, code 10000.

Billing: whole seconds of each Completed run, rounded up (`billed`); nothing for errors.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from .common import Call, FakeServer, Fault, Reply, serve_forever
from .video import MIME, NOT_A_VIDEO, Clip, cut_out, read_clip

MODEL = "bria/v-rmbg-3.0"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-test-token-0123456789abcdefghij"
TEST_KEY = f"{ACCOUNT}:{TOKEN}"  # the one-box form: ACCOUNT_ID:API_TOKEN
COLOURS = "Transparent Black White Gray Red Green Blue Yellow Cyan Magenta Orange".split()
CODECS = ("mp4_h264", "mp4_h265", "mov_h265", "mov_proresks")
MAX_SECONDS = 60.0
PRICE = 0.0225  # USD per second
_RUN = re.compile(r"^/accounts/([^/]+)/ai/run$")

# fault -> (HTTP status, Workers AI code, message): the errors page's rows, and the API's auth error
HTTP_FAULTS = {
    "unauthorized": (401, 10000, "Authentication error"),
    "forbidden": (403, 5018, "The account is not allowed to access this model"),
    "account-limited": (429, 3036, "You have used up your daily free allocation of 10,000 neurons."),
    "out-of-capacity": (429, 3040, "No more data centers to forward the request to"),
    "too-large": (413, 3006, "Request is too large"),
    "timeout": (408, 3007, "Request timeout"),
    "refused": (400, None, "The input video failed content moderation"),  # not documented for this model
    "server-error": (500, None, "Internal server error"),
    "unavailable": (503, None, "Service unavailable"),
}


def envelope(result, errors=(), success=True) -> dict:
    return {"success": success, "errors": list(errors), "messages": [], "result": result}


class CloudflareVideoFake(FakeServer):
    """Faults (op = run | video | *): the HTTP ones above, echo-key (a 400 quoting the Authorization header,
    as a careless proxy might), not-json, drop, slow; on a run that then
    succeeds: failed-state (200, state "Failed"), unsuccessful (200, success false), missing-field
    (no video), no-alpha, short, not-video, wrong-type, huge, private-url."""

    FAULTS = frozenset(HTTP_FAULTS) | frozenset(
        "echo-key not-json drop slow failed-state unsuccessful missing-field no-alpha short not-video wrong-type "
        "huge private-url".split()
    )

    def __init__(self, host="127.0.0.1", port=0, *, account=ACCOUNT, token=TOKEN, envelope: bool = False):
        super().__init__(host, port)
        self.account, self.token, self.envelope = account, token, envelope
        self.files: dict[str, tuple[bytes, str]] = {}
        self.billed: list[int] = []
        self.received: list[Clip | None] = []  # every clip a paid request brought, as read
        self.huge_bytes = 40 * 2**20

    @property
    def usd_billed(self) -> float:
        return round(sum(self.billed) * PRICE, 6)

    def _reply(self, status: int, body, headers: dict[str, str] | None = None) -> Reply:
        ray = {"CF-Ray": f"{uuid.uuid4().hex[:16]}-SJC", **(headers or {})}
        return Reply.json(status, body, ray)

    def error_reply(self, fault: Fault) -> Reply | None:
        if fault.kind == "not-json":
            return Reply(200, b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"})
        if fault.kind not in HTTP_FAULTS:
            return None
        status, code, message = HTTP_FAULTS[fault.kind]
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return self._reply(status, envelope(None, [{"code": code, "message": message}], success=False), extra)

    def handle(self, call: Call) -> Reply:
        if call.method == "GET" and call.path.startswith("/video/"):
            error, _ = self.next_fault("video")
            if error is not None:
                return error
            found = self.files.get(call.path.rsplit("/", 1)[-1])
            return Reply(200, found[0], {"Content-Type": found[1]}) if found else Reply.json(404, envelope(None))
        match = _RUN.match(call.path)
        if call.method != "POST" or match is None:
            return self._reply(404, envelope(None, [{"code": 7000, "message": "No route for that URI"}], False))
        error, fault = self.next_fault("run")
        if error is not None:
            return error
        if fault is not None and fault.kind == "echo-key":
            return self._refuse(400, f"Bad request with {call.headers.get('authorization')} on account {self.account}")
        if call.headers.get("authorization") != f"Bearer {self.token}":
            return self._reply(401, envelope(None, [{"code": 10000, "message": "Authentication error"}], False))
        if match.group(1) != self.account:
            return self._reply(403, envelope(None, [{"code": 10000, "message": "Authentication error"}], False))
        try:
            body = call.json()
        except ValueError:
            body = None
        problem = self._check(body)
        if problem:
            return self._refuse(400, problem)
        clip = read_clip(self._bytes(body["input"]["video"]) or b"")
        self.received.append(clip)
        if clip is None:
            return self._refuse(400, "Could not read the input video")
        if clip.seconds > MAX_SECONDS:
            return self._refuse(400, f"The video is longer than {MAX_SECONDS:g} seconds")
        return self._run(body["input"], clip, fault.kind if fault else "")

    def _refuse(self, status: int, message: str, code: int | None = None) -> Reply:
        return self._reply(status, envelope(None, [{"code": code, "message": message}], success=False))

    def _check(self, body) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return "Request is missing headers or body: input"
        if body.get("model") != MODEL:
            return f"No such model {body.get('model')!r} or task"
        given = body["input"]
        extra = set(given) - {"video", "background_color", "output_container_and_codec", "preserve_audio",
                              "auto_zoom", "spill_suppression"}  # fmt: skip
        if extra:
            return f"input: additional properties are not allowed ({', '.join(sorted(extra))})"
        if not isinstance(given.get("video"), str):
            return "input.video: required"
        if given.get("background_color", "Transparent") not in COLOURS:
            return "input.background_color: must be one of " + ", ".join(COLOURS)
        if given.get("output_container_and_codec", "mp4_h264") not in CODECS:
            return "input.output_container_and_codec: must be one of " + ", ".join(CODECS)
        if not all(isinstance(given.get(k, False), bool) for k in ("preserve_audio", "auto_zoom")):
            return "input.preserve_audio, input.auto_zoom: must be booleans"
        return ""

    def _bytes(self, video: str) -> bytes | None:
        if video.startswith("data:"):
            try:
                return base64.b64decode(video.partition(",")[2], validate=True)
            except (binascii.Error, ValueError):
                return None
        found = self.files.get(video.rsplit("/", 1)[-1]) if video.startswith(f"{self.url}/video/") else None
        return found[0] if found else None

    def _run(self, given: dict, clip: Clip, kind: str) -> Reply:
        if kind == "failed-state":
            return self._done({"state": "Failed", "result": {}, "error": "Inference failed"})
        if kind == "unsuccessful":
            return self._reply(200, envelope(None, [{"code": None, "message": "Inference failed"}], success=False))
        self.billed.append(clip.billed_seconds)
        if kind == "missing-field":
            return self._done({"state": "Completed", "result": {}})
        transparent = given.get("background_color") == "Transparent"
        prores = given.get("output_container_and_codec") == "mov_proresks"
        fmt = "mov" if prores else "mp4"
        if kind == "not-video":
            data = NOT_A_VIDEO
        elif kind == "huge":
            data = cut_out(clip, fmt) + b"\0" * self.huge_bytes
        else:
            alpha = transparent and prores and kind != "no-alpha"
            data = cut_out(clip, fmt, alpha=alpha, keep=0.25 if kind == "short" else 1.0)
        name = f"{uuid.uuid4().hex}.{fmt}"
        self.files[name] = (data, "text/html" if kind == "wrong-type" else MIME[fmt])
        host = "http://10.11.12.13:8080" if kind == "private-url" else self.url
        result: dict = {"video": f"{host}/video/{name}"}
        if transparent and not prores:
            result["warning"] = "Transparent needs mov_proresks: the background is Black"
        return self._done({"state": "Completed", "result": result})

    def _done(self, answer: dict) -> Reply:
        return self._reply(200, envelope(answer) if self.envelope else answer)


def main(argv=None) -> None:
    serve_forever(CloudflareVideoFake, "Fake Cloudflare Workers AI for bria/v-rmbg-3.0", argv)


if __name__ == "__main__":
    main()
