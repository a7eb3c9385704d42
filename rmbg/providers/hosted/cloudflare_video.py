"""Cloudflare Workers AI: Bria's video background removal, VRMBG 3.0 (`bria/v-rmbg-3.0`).

What this relies on, and from which page (as published in October 2026):
- The model page, https://developers.cloudflare.com/ai/models/bria/v-rmbg-3.0/ (and its
  schema-input.json): a video-to-video model, no image input (Cloudflare lists Bria's image
  remover apart, bria/remove-background: RMBG 2.0, $0.018 per image; not a provider here).
  Input `video` (required, "Public URL of the input video: MP4, MOV, WEBM, AVI, or GIF, up to
  60 seconds and 16000x16000", `format: uri`), `background_color` (Transparent, Black, White,
  ...; "set it explicitly"; Transparent needs mov_proresks, else Bria uses Black and returns a
  `warning`), `output_container_and_codec` (mp4_h264 default, mp4_h265, mov_h265, mov_proresks:
  "the preset that keeps transparency"), `preserve_audio` (default true), `auto_zoom`,
  `spill_suppression`; `additionalProperties: false`. Output `video` (URL of the processed
  video) and `warning`. Price: "Default (per second) $0.0225". The REST call, as its curl:
  POST https://api.cloudflare.com/client/v4/accounts/$CLOUDFLARE_ACCOUNT_ID/ai/run with
  `Authorization: Bearer $CLOUDFLARE_API_TOKEN` and {"model": "bria/v-rmbg-3.0", "input": {...}},
  answered {"state": "Completed", "result": {"video": "https://..."}}.
- Cloudflare's API envelope, {success, errors: [{code, message}], messages, result} (its API
  reference's responses); a bad token is code 10000 "Authentication error" (as Cloudflare's
  support pages quote it; the HTTP status, 401 or 403, is not documented: both are read).
- The Workers AI errors page, https://developers.cloudflare.com/workers-ai/workers-ai-errors:
  3003/5007 (400), 3023/3041/5016/5018 (403), 3042 (404), 3006 "Request too large" (413),
  3007 "Request timeout" (408), 3036 "Account limited" and 3040 "Out of capacity" (429).

Where the docs are silent, what rmbg assumes:
- The clip goes in `video` as a data: URI (a URI; Cloudflare's bria/remove-background and
  pruna/p-video-animate pages say data URIs are taken): rmbg has no public host to serve a
  visitor's clip from, and never uploads it to a third place. Capped at UPLOAD_MAX (70 MiB, 93 MiB
  in base64): the page names no size limit, so rmbg keeps under the 100 MB that Cloudflare's
  plans take in one request body elsewhere; a 413 (3006) is reported as a refusal.
- The call is synchronous: the page shows no queued state and no poll endpoint (the batch API,
  `?queueRequest=true`, is documented for @cf models only). An answer whose state is not
  "Completed" is read as a failure that may be billed.
- Billing: per second of video, whole seconds rounded up (as for fal and Runware: never less
  than the bill). A 2xx answer may be billed whatever it says; a 4xx is not, except 408 (the
  inference may have run: kept, not re-sent); 429 is refused before running and may be re-sent;
  a 5xx or a dropped connection may be billed and is never re-sent.
- The request id is the `CF-Ray` header Cloudflare puts on every answer.
- No content-moderation error is documented for this model: a refusal (4xx with its errors)
  is reported in Cloudflare's own words as a rejection of the clip.

We ask for mov_proresks with a Transparent background and no audio: the cut-out is written
from our own copy of the clip, sound included; the vendor's file is only read for its alpha.

Configuration: the token from `api_key=` or CLOUDFLARE_API_TOKEN; the account id from
`account_id=`, CLOUDFLARE_ACCOUNT_ID, or the key itself as "ACCOUNT_ID:API_TOKEN" (how a visitor
gives both in one key box); host RMBG_CLOUDFLARE_URL (default https://api.cloudflare.com/client/v4).
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ...errors import (
    MissingCredentialsError,
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRejectedError,
    ProviderResponseError,
    RmbgError,
)
from ...money.charging import Charge, charge_of_status, current
from ...vendors import vendor
from ..base import ProviderStatus
from .base import Connection, HostedClient, connected, key_digest
from .http import json_body
from .payload import error_object, excerpt, read_key, scrub
from .retry import Deadline
from .video_job import DeclaredVideo, HostedVideo, VideoJob

MODEL = "bria/v-rmbg-3.0"
VENDOR = vendor("cloudflare")  # the vendor its key is paid to (rmbg.vendors)
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
ACCOUNT_PAGE = "https://dash.cloudflare.com/ (the account id is in the dashboard's address)"
URL_ENV, DEFAULT_URL = VENDOR.host or ("", "")  # RMBG_CLOUDFLARE_URL, https://api.cloudflare.com/client/v4
UPLOAD_MAX = 70 * 2**20  # 4/3 of it in base64 stays under 100 MB (module doc: an assumption)
# Workers AI codes that say the account, not the clip, is the problem (the errors page).
NOT_ALLOWED = {3023, 3041, 5016, 5018}
USED_UP = 3036  # "Account limited": the free allocation is used up


class CloudflareBriaVideo(DeclaredVideo, HostedClient):
    """Bria VRMBG 3.0 on Cloudflare Workers AI: one synchronous paid request per clip, priced per second."""

    id = "cloudflare-bria-video"
    UPLOAD_MAX = UPLOAD_MAX
    kind: ClassVar[Literal["hosted"]] = "hosted"
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_URL

    def __init__(self, connection: Connection | None = None, /, *, account_id: str | None = None, **settings: Any):
        from .fal_video import VIDEO_RETRY

        connection = connection or Connection(**settings)
        retry = connection.retry or replace(VIDEO_RETRY, deadline_s=connection.deadline_s or VIDEO_RETRY.deadline_s)
        # The answer comes when the clip is done: reads may wait as long as the call's deadline.
        super().__init__(replace(connection, retry=retry, timeout=connection.timeout or retry.deadline_s))
        self._account = account_id

    def status(self) -> ProviderStatus:
        """Ready with a token and an account id (the key's "ACCOUNT_ID:" prefix, account_id= or the variable)."""
        key = self._key()
        if key and ":" not in key and not read_key(self._account, ACCOUNT_ENV):
            return ProviderStatus(
                "needs_key", f"needs {ACCOUNT_ENV} with {self.KEY_ENV} (or a key ACCOUNT_ID:API_TOKEN)"
            )
        return super().status()

    def key_scope(self) -> str:
        """The account pays, not the token alone: one token may reach several accounts."""
        return key_digest(self.base_url, read_key(self._account, ACCOUNT_ENV) or "", self._key() or "")

    def options(self) -> dict[str, object]:
        return {"model": MODEL}

    def payload(self, job: VideoJob) -> dict[str, object]:
        """The request body for one clip (its bytes as a data: URI)."""
        video = f"data:{job.content_type};base64," + base64.b64encode(job.path.read_bytes()).decode("ascii")
        return {
            "model": MODEL,
            "input": {
                "video": video,
                "background_color": "Transparent",
                "output_container_and_codec": "mov_proresks",
                "preserve_audio": False,
            },
        }

    def remove(self, job: VideoJob, folder: Path) -> HostedVideo:
        """The clip cut out by Cloudflare, downloaded into `folder` (module doc for the steps)."""
        self.check(job)
        account, token = self._credentials()
        started = time.perf_counter()
        deadline = Deadline(self.retry)
        endpoint = self._endpoint(
            cloudflare_reason, self._classify, not_accepted=lambda status: status == 429, charge_of=_charge
        )
        url = f"{self.base_url}/accounts/{account}/ai/run"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        response = self._send(endpoint, deadline, "POST", url, json=self.payload(job), headers=headers, paid=True)
        meter = current()
        ray = response.headers.get("cf-ray", "")
        try:
            result = self._result(json_body(response, self.id, "the answer", endpoint.secrets))
            meter.accepted(self.id, ray)  # a finished job: billed
            dest = folder / "result.mov"  # mov_proresks whichever output was asked: our writers make the file
            mime = self._download(result["video"], job, dest, deadline.remaining)
        except RmbgError as exc:
            raise meter.annotate(exc)
        meta = {"model": "Bria VRMBG 3.0", "endpoint": MODEL, "request_id": ray or "-"}
        meta["seconds"] = f"{time.perf_counter() - started:.1f}"
        if isinstance(result.get("warning"), str):
            meta["warning"] = scrub(result["warning"], endpoint.secrets)[:200]
        return HostedVideo(dest, mime, self.estimate(job.billed_seconds), meta)

    # --- steps ------------------------------------------------------------

    def _credentials(self) -> tuple[str, str]:
        """(account id, API token): the key may carry both as "ACCOUNT_ID:API_TOKEN"."""
        key = self._require_key()
        account, colon, token = key.partition(":")
        if not colon:
            account, token = read_key(self._account, ACCOUNT_ENV) or "", key
        if not account:
            raise MissingCredentialsError(self.id, ACCOUNT_ENV, ACCOUNT_PAGE)
        if not account.isalnum() or not account.isascii() or not token:
            why = "the account id must be letters and digits (a key with both: ACCOUNT_ID:API_TOKEN)"
            raise ProviderAuthError(self.id, f"{why}. Check {ACCOUNT_ENV}.")
        return account, token

    def _result(self, body: object) -> dict:
        """The model's output from an answer: the page's {state, result} or Cloudflare's envelope around it."""
        if isinstance(body, dict) and body.get("success") is False:
            raise ProviderResponseError(self.id, f"the run failed: {_errors_text(body)}", excerpt=_short(body))
        inner = body.get("result") if isinstance(body, dict) else None
        state = body.get("state") if isinstance(body, dict) else None
        if isinstance(inner, dict) and "state" in inner and "video" not in inner:  # {success, result: {state, result}}
            state, inner = inner.get("state"), inner.get("result")
        if state not in (None, "Completed"):
            ended = f"the run ended {str(state)[:40]!r}, not Completed."
            raise ProviderResponseError(self.id, ended, excerpt=_short(body))
        video = inner.get("video") if isinstance(inner, dict) else None
        if not isinstance(video, str) or not video:
            raise ProviderResponseError(self.id, "the result has no video URL.", excerpt=_short(body))
        return inner  # type: ignore[return-value]

    def _classify(self, response: Any) -> ProviderHTTPError | None:
        """Workers AI's codes where the HTTP status alone says the wrong thing (module doc)."""
        codes = {code for code, _ in _errors(_json(response))}
        reason = scrub(cloudflare_reason(response), self._secrets()) or f"HTTP {response.status_code}"
        body = excerpt(response.text, self._secrets())
        status = response.status_code
        if USED_UP in codes:
            return ProviderCreditError(
                self.id, f"the account has used up its Workers AI allocation ({reason}). Upgrade the plan or wait.",
                status=status, excerpt=body,
            )  # fmt: skip
        if codes & NOT_ALLOWED:
            return ProviderAuthError(
                self.id, f"the account may not use {MODEL} ({reason}). Check the token's account and plan.",
                status=status, excerpt=body,
            )  # fmt: skip
        if status in (400, 413, 415, 422):
            why = f"rejected the clip (HTTP {status}): {reason}"
            return ProviderRejectedError(self.id, why, status=status, excerpt=body)
        return None


def _charge(response: Any) -> Charge:
    """What an answer to the run says about its charge: 408 (an inference timeout) may have run."""
    return Charge.UNKNOWN if response.status_code == 408 else charge_of_status(response.status_code, lambda s: s == 429)


def _json(response: Any) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _errors(body: object) -> list[tuple[int | None, str]]:
    """(code, message) of each error in Cloudflare's envelope ({errors: [...]}) or the gateway's ({error: {...}})."""
    if not isinstance(body, dict):
        return []
    listed = body.get("errors")
    items: list[object] = listed if isinstance(listed, list) else [body.get("error")]
    found = []
    for item in items:
        if isinstance(item, dict):
            code = item.get("code")
            found.append((code if isinstance(code, int) else None, str(item.get("message") or "")[:200]))
        elif isinstance(item, str):
            found.append((None, item[:200]))
    return found


def _errors_text(body: object) -> str:
    return "; ".join(f"{code}: {text}" if code is not None else text for code, text in _errors(body)[:3]) or "no reason"


def _short(body: object) -> str:
    return excerpt(str(body)[:400])


def cloudflare_reason(response: Any) -> str:
    """Cloudflare's own error text: its errors' "code: message"."""
    body = error_object(response)
    if isinstance(body, str):
        return body
    return _errors_text(body) if _errors(body) else excerpt(str(body), limit=120)


@connected
def cloudflare_bria_video(connection: Connection, *, account_id: str | None = None) -> CloudflareBriaVideo:
    """Factory for "cloudflare-bria-video" (rmbg.video.providers)."""
    return CloudflareBriaVideo(connection, account_id=account_id)
