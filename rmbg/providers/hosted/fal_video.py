"""fal.ai: Bria's video background removal, VRMBG 3.0 (`bria/video/background-removal/v3`).

Schema (fal's model page, https://fal.ai/models/bria/video/background-removal/v3/llms.txt):
  input   video_url (required: a URL or a base64 data URI, as every fal file input),
          output_container_and_codec (webm_vp9 default, mov_proresks, mp4_h264, mp4_h265,
          mov_h265, mkv_*, avi_h264, gif), preserve_audio (default true);
  output  {"video": {"url", "content_type", "file_name", "file_size"}};
  price   $0.042 per second of video.

The clip goes up as fal documents its file inputs: a data URI in `video_url`
for a small clip; above `data_uri_max` bytes (fal warns that large data URIs
slow the request) through fal's storage, as its own client uploads
(`fal_client.SyncClient.upload`): POST {rest}/storage/auth/token?storage_type=fal-cdn-v3
with the key -> a CDN token and its base_url; POST {base_url}/files/upload with
the bytes and the token -> {"access_url"}. Neither is the paid request.

The paid request is the queue submit (rmbg.providers.hosted.fal.FalQueue):
charged once fal answers with a request id, cancelled while the job may still
run if a later step fails. We ask for a transparent format (webm_vp9, or
mov_proresks) and no audio: the cut-out is written from our own copy of the
clip, sound included, so the vendor's sound is never needed.

Configuration: key from `api_key=` or FAL_KEY; queue host RMBG_FAL_QUEUE_URL;
storage host `rest_url=` or RMBG_FAL_REST_URL (default https://rest.fal.ai).
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ...errors import InvalidRequestError, ProviderResponseError, RmbgError
from ...settings import current
from .base import Connection, HostedClient, connected
from .fal import DEFAULT_QUEUE_URL, URL_ENV, VENDOR, FalQueue, fal_reason
from .http import json_body, same_origin
from .payload import excerpt
from .retry import Deadline, RetryPolicy
from .video_job import DeclaredVideo, HostedVideo, VideoJob, mib

ENDPOINT_ID = "bria/video/background-removal/v3"
REST_URL_ENV = "RMBG_FAL_REST_URL"
DEFAULT_REST_URL = "https://rest.fal.ai"
CODECS = {"webm": "webm_vp9", "mov": "mov_proresks"}  # the transparent outputs fal documents
DATA_URI_MAX = 8 * 2**20  # larger clips go through fal's storage
UPLOAD_MAX = 100 * 2**20  # fal's single-request upload; above it fal's client splits the file
# A clip takes minutes: poll every 1-5 s, for up to 15 minutes.
VIDEO_RETRY = RetryPolicy(deadline_s=900.0, poll_interval=1.0, max_poll_interval=5.0)


class FalBriaVideo(DeclaredVideo, HostedClient):
    """Bria VRMBG 3.0 on fal's queue: one paid request per clip, priced per second."""

    id = "fal-bria-video"
    UPLOAD_MAX = UPLOAD_MAX
    PRICE_WORDS = "fal's price"  # fal reports no cost: the estimate is what is counted
    kind: ClassVar[Literal["hosted"]] = "hosted"
    ENDPOINT = ENDPOINT_ID
    VENDOR = VENDOR
    URL_ENV = URL_ENV
    DEFAULT_URL = DEFAULT_QUEUE_URL

    def __init__(self, connection: Connection | None = None, /, *, rest_url: str | None = None, **settings: Any):
        connection = connection or Connection(**settings)
        super().__init__(connection)
        if connection.retry is None:
            self.retry = VIDEO_RETRY if connection.deadline_s is None else replace(
                VIDEO_RETRY, deadline_s=connection.deadline_s
            )  # fmt: skip
        self.rest_url = (rest_url or current().raw(REST_URL_ENV) or DEFAULT_REST_URL).rstrip("/")
        self.data_uri_max = DATA_URI_MAX

    def options(self) -> dict[str, object]:
        return {"endpoint": self.ENDPOINT}

    def remove(self, job: VideoJob, folder: Path) -> HostedVideo:
        """The clip cut out by fal, downloaded into `folder` (module doc for the steps)."""
        self.check(job)
        key = self._require_key()
        started = time.perf_counter()
        video_url = self._upload(job, key)
        queue = FalQueue(self, self.ENDPOINT)
        payload = {"video_url": video_url, "output_container_and_codec": CODECS[job.output], "preserve_audio": False}
        handle, body, endpoint, deadline = queue.run(payload)
        try:
            url = self._result_url(body, job)
            dest = folder / f"result.{job.output}"
            mime = self._download(url, job, dest, deadline.remaining)
        except RmbgError as exc:
            raise queue.failed(exc)
        meta = {
            "model": "Bria VRMBG 3.0",
            "endpoint": self.ENDPOINT,
            "request_id": handle.request_id,
            "seconds": f"{time.perf_counter() - started:.1f}",
        }
        return HostedVideo(dest, mime, self.estimate(job.billed_seconds), meta)

    # --- steps ------------------------------------------------------------

    def _result_url(self, body: object, job: VideoJob) -> str:
        video = body.get("video") if isinstance(body, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderResponseError(self.id, "the result has no video.url.", excerpt=excerpt(str(body)[:400]))
        declared = video.get("file_size") if isinstance(video, dict) else None
        if isinstance(declared, int) and declared > job.max_result_bytes:
            raise ProviderResponseError(
                self.id,
                f"returned a result of {mib(declared)}, over the {mib(job.max_result_bytes)} limit; refused before "
                "downloading it.",
            )
        return url

    def _upload(self, job: VideoJob, key: str) -> str:
        """The clip as fal's file input: a data URI, or a URL on fal's CDN (not billed)."""
        data = job.path.read_bytes()
        if len(data) <= self.data_uri_max:
            return f"data:{job.content_type};base64," + base64.b64encode(data).decode("ascii")
        endpoint = self._endpoint(fal_reason)
        deadline = Deadline(self.retry)
        token_url = f"{self.rest_url}/storage/auth/token?storage_type=fal-cdn-v3"
        headers = {"Authorization": f"Key {key}", "Accept": "application/json"}
        answer = self._send(endpoint, deadline, "POST", token_url, json={}, headers=headers, paid=False)
        token = json_body(answer, self.id, "the storage token answer", (key,))
        fields = {name: token.get(name) if isinstance(token, dict) else None for name in ("token", "token_type")}
        base = token.get("base_url") if isinstance(token, dict) else None
        if not all(isinstance(v, str) and v for v in fields.values()) or not isinstance(base, str):
            raise ProviderResponseError(self.id, "the storage token answer has no token or base_url.")
        self._check_upload_host(base)
        upload_headers = {
            "Authorization": f"{fields['token_type']} {fields['token']}",
            "Content-Type": job.content_type,
            "X-Fal-File-Name": f"clip{job.path.suffix.lower() or '.mp4'}",
            "Accept": "application/json",
        }
        stored = self._send(
            endpoint, deadline, "POST", f"{base.rstrip('/')}/files/upload", content=data, headers=upload_headers,
            paid=False,
        )  # fmt: skip
        body = json_body(stored, self.id, "the upload answer", (key, str(fields["token"])))
        access = body.get("access_url") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access.startswith(("https://", "http://")):
            raise ProviderResponseError(self.id, "the upload answer has no access_url.", excerpt=excerpt(str(body)))
        return access

    def _check_upload_host(self, base: str) -> None:
        """The clip is only sent to fal's storage host (as configured) or a public https host."""
        if same_origin(base, self.rest_url):
            return
        from ...image.fetch import check_url

        try:
            if not base.startswith("https://"):
                raise InvalidRequestError("not https")
            check_url(base)
        except RmbgError:
            raise ProviderResponseError(
                self.id, "the storage token names an upload host this server will not send a clip to; refused."
            ) from None


@connected
def fal_bria_video(connection: Connection, *, rest_url: str | None = None) -> FalBriaVideo:
    """Factory for "fal-bria-video" (rmbg.video.providers)."""
    return FalBriaVideo(connection, rest_url=rest_url)
