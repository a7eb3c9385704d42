"""A fake Photoroom Remove Background API ("Basic" plan).

  POST /v1/segment   multipart: image_file (required), format (png | jpg |
                     webp), channels (rgba | alpha), bg_color, size (preview |
                     medium | hd | full), crop, despill -> the result's bytes

As Photoroom documents it (each claim cited where the code makes it):
auth by `x-api-key` in KEYS, else 403; a key with the `sandbox_` prefix is a
sandbox key (free, watermarked results); errors are JSON, the 402 body the
documented {"error": {"detail": "API credits exhausted. ..."}} and the
others (undocumented) the same shape; each successful call consumes one
image credit, a preview 0.25, counted in `.images_billed`; a call that ends
in an error consumes none; at most `rate_limit` calls a minute per key
(sandbox calls included), else 429.

Run alone: python -m tests.fakes.photoroom --port 8768  (key: pr-test-key)
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from PIL import Image, ImageDraw

from .common import Call, FakeServer, Fault, Reply, cutout, encode, form_fields, read_image, serve_forever, simple_matte

TEST_KEY = "pr-test-key"
FAQ = "https://docs.photoroom.com/getting-started/frequently-asked-questions"
# Pixels per size; preview: "up to 0.25 megapixels" (FAQ); full: "We recommend limiting to 25MP" (FAQ).
SIZES = {"preview": 250_000, "medium": 1_500_000, "hd": 4_000_000, "full": 25_000_000}
# "They require 0.25 credit to be processed through PhotoRoom API instead of 1 credit for higher resolution" (FAQ).
CREDITS = {"preview": Decimal("0.25")}
# "To use sandbox mode, prepend `sandbox_` to your API key" ... "will produce an image with a watermark"
# (https://docs.photoroom.com/remove-background-api-basic-plan/sandbox-mode); free ("make free API calls",
# https://docs.photoroom.com/getting-started/pricing).
SANDBOX_PREFIX = "sandbox_"
# "The default rate limit is 500 images per minute" (FAQ); "When the rate limit has been reached, an error code
# 429 will be returned" and "API calls made using Sandbox mode also count towards the rate limit"
# (https://photoroom.discourse.group/t/is-there-a-rate-limiting/11). The 429 body is not documented.
RATE_LIMIT = 500
WINDOW_S = 60.0
FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
# The 402 body of Photoroom's OpenAPI document (its payment-error example; https://docs.photoroom.com, mirrored at
# https://apis.apis.io/apis/photoroom/platform/).
EXHAUSTED = "API credits exhausted. Visit https://app.photoroom.com/api-dashboard to purchase more API credits"


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"error": {"detail": detail}}, headers)


class PhotoroomFake(FakeServer):
    """Fake Photoroom. Faults (op = segment | *): credits-exhausted (402),
    rate-limit (429, Retry-After if given), server-error (500), bad-gateway
    (502 HTML), drop, slow, not-image (200, bytes that are no image),
    json-200 (200 with a JSON body).
    """

    FAULTS = frozenset("credits-exhausted rate-limit server-error bad-gateway drop slow not-image json-200".split())

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        keys=(TEST_KEY,),
        credits: int = 100,
        rate_limit: int = RATE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sandbox_quota: int = 100,
    ):
        """sandbox_quota: the sandbox calls a key may make (Photoroom's: 100 a day, 1,000 a month; the
        fake lives less than a day, so one count); past it a 402 (its body is not documented)."""
        super().__init__(host, port)
        self.sandbox_quota = sandbox_quota
        self.sandbox_refused = 0
        self.keys = set(keys)
        self.balance = Decimal(credits)
        self.images_billed = Decimal(0)
        self.sandbox_calls = 0
        self.rate_limit, self.clock = rate_limit, clock
        self.rate_limited = 0  # 429s answered for the rate limit
        self._recent: dict[str, deque[float]] = {}  # key (its sandbox form folded in) -> start times

    def handle(self, call: Call) -> Reply:
        if (call.method, call.path) != ("POST", "/v1/segment"):
            return error(404, f"{call.method} {call.path} not found")
        failed, fault = self.next_fault("segment")
        if failed is not None:
            return failed
        key = call.headers.get("x-api-key") or ""
        sandbox = key.startswith(SANDBOX_PREFIX)
        if key.removeprefix(SANDBOX_PREFIX) not in self.keys:
            return error(403, "Invalid API key")
        if not self._admit(key.removeprefix(SANDBOX_PREFIX)):
            self.rate_limited += 1
            return error(429, "Too many requests")
        kind = fault.kind if fault else ""
        fields = form_fields(call)
        if fields is None or not call.headers.get("content-type", "").startswith("multipart/form-data"):
            return error(400, "The body must be multipart/form-data with an image_file")
        if "image_file" not in fields:
            return error(400, "image_file is required")
        values = {
            k: fields[k].text.strip().lower() if k in fields else ""
            for k in ("format", "channels", "bg_color", "size", "crop", "despill")
        }
        fmt, size = values["format"] or "png", values["size"] or "full"
        if fmt not in FORMATS or size not in SIZES or values["channels"] not in ("", "rgba", "alpha"):
            return error(400, "Invalid value for format, size or channels")
        if values["bg_color"] and not re.fullmatch(r"#?[0-9a-f]{6}([0-9a-f]{2})?|[a-z]+", values["bg_color"]):
            return error(400, "Invalid bg_color")
        rgb = read_image(fields["image_file"].data)
        if rgb is None:
            return error(400, "Could not read the image")
        if sandbox and self.sandbox_calls >= self.sandbox_quota:
            self.sandbox_refused += 1
            return error(402, "Sandbox quota exceeded: 100 calls a day, 1,000 a month")
        credit = Decimal(0) if sandbox else CREDITS.get(size, Decimal(1))
        if credit > self.balance:
            return error(402, EXHAUSTED)
        body, mime = self._render(rgb, SIZES[size], fmt, values, kind, watermark=sandbox)
        self.balance -= credit
        self.images_billed += credit
        self.sandbox_calls += sandbox
        return Reply(200, body, {"Content-Type": mime})

    def _admit(self, key: str) -> bool:
        """Whether one more call of `key` fits in the last minute's `rate_limit` (then counted)."""
        now = self.clock()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            return False
        recent.append(now)
        return True

    def error_reply(self, fault: Fault) -> Reply | None:
        retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.kind == "credits-exhausted":
            return error(402, EXHAUSTED)
        if fault.kind == "rate-limit":
            return error(429, "Too many requests", retry)
        if fault.kind == "server-error":
            return error(500, "Internal server error")
        if fault.kind == "bad-gateway":
            return Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
        return None

    def _render(
        self, rgb: Image.Image, limit: int, fmt: str, values: dict, fault: str, *, watermark: bool = False
    ) -> tuple[bytes, str]:
        if rgb.width * rgb.height > limit:
            scale = (limit / (rgb.width * rgb.height)) ** 0.5
            rgb = rgb.resize(
                (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))), Image.Resampling.BILINEAR
            )
        alpha = simple_matte(rgb)
        if values["crop"] == "true" and alpha.getbbox():
            rgb, alpha = rgb.crop(alpha.getbbox()), alpha.crop(alpha.getbbox())
        if watermark:
            alpha = watermarked(alpha)
        out: Image.Image = alpha if values["channels"] == "alpha" else cutout(rgb, alpha)
        if fault == "not-image":
            return b"not an image at all", "image/png"
        if fault == "json-200":
            return b'{"result": "see elsewhere"}', "application/json"
        pil, mime = FORMATS[fmt]
        return encode(out if pil != "JPEG" else out.convert("RGB"), pil), mime


def watermarked(alpha: Image.Image) -> Image.Image:
    """The sandbox's watermark, visible on the cut-out: a half-opaque band across the middle fifth with the
    word PHOTOROOM in it (the documented sandbox sample shows a watermark over the result; its exact look is
    not documented, so this one is the fake's own)."""
    marked = alpha.copy()
    w, h = marked.size
    band = Image.new("L", (w, max(1, h // 5)), 128)
    ImageDraw.Draw(band).text((2, 0), "PHOTOROOM", fill=255)
    top = (h - band.height) // 2
    region = (0, top, w, top + band.height)
    marked.paste(Image.eval(marked.crop(region), lambda v: max(v, 128)), region)
    marked.paste(band, region, band.point(lambda v: 255 if v == 255 else 0))
    return marked


def main(argv=None) -> None:
    serve_forever(PhotoroomFake, "Fake Photoroom Remove Background API (POST /v1/segment)", argv)


if __name__ == "__main__":
    main()
