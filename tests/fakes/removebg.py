"""A fake remove.bg API (its OpenAPI document, version 1.0).

  POST /v1.0/removebg   multipart, urlencoded or JSON -> the result's bytes
                        (or {"data": {"result_b64", "foreground_*"}} with
                        Accept: application/json), billing headers
  GET  /v1.0/account    the credit balance

Auth: `X-Api-Key` in KEYS, else 403 {"errors": [{"title": ...}]}.
Exactly one image source (image_file, image_file_b64 or image_url; URLs are
looked up in `.url_images`, else 400 failed_image_download); `size`, `type`,
`format`, `channels`, `bg_color` and `crop` are checked and applied. Every
error has the shape {"errors": [{"title", "code", "detail"}]} and charges
nothing; a success charges 0.25 credit (preview, or auto for an input of
0.25 MP or less) or 1 (full, 50MP, auto), sent in X-Credits-Charged and
counted in `.credits_charged`. Limits as documented: an upload over 12 MB
(12,000,000 bytes) is 400 file_too_large, an input over 50 MP 400
resolution_too_high; a PNG result is at most 10 MP, a ZIP (colour JPG +
alpha PNG) or JPG one 25 MP ("full") or 50 MP ("50MP").

Run alone: python -m tests.fakes.removebg --port 8767  (key: rbg-test-key)
"""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
from decimal import Decimal

from PIL import Image

from .common import Call, FakeServer, Fault, Reply, cutout, encode, form_fields, read_image, serve_forever, simple_matte

TEST_KEY = "rbg-test-key"
# Sources, cited once here: remove.bg's OpenAPI document (https://www.remove.bg/api/swagger.yaml, mirrored in
# github.com/paragonsean/openapi-directory APIs/remove.bg/1.0.0) for the sizes, formats, limits, headers and
# error shapes; its current reference (mirrored at https://registry.lap.sh/v1/apis/remove-bg.lap) for size "50MP".
SIZES = {  # `size` and its documented aliases -> what it does
    "preview": "preview",
    "small": "preview",
    "regular": "preview",
    "full": "full",
    "4k": "full",
    "medium": "full",
    "hd": "full",
    "auto": "auto",
    "50mp": "50mp",  # "up to 50 megapixels ... with formats ZIP / JPG / WebP, or up to 10 megapixels ... with PNG"
}
TYPES = ("auto", "person", "product", "car")
FORMATS = ("auto", "png", "jpg", "zip")
COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255)}
PREVIEW_PIXELS = 250_000  # "preview": "Resize image to 0.25 megapixels ... 0.25 credits per image"
PNG_FULL_PIXELS = 10_000_000  # "full": "up to 10 megapixels (e.g. 4000x2500) with PNG"
FULL_PIXELS = 25_000_000  # "full": "up to 25 megapixels (e.g. 6250x4000) with formats ZIP or JPG"
MAX_FILE = 12_000_000  # "File size: up to 12 MB"; file_too_large: "File exceeds limit of 12MB" (decimal, as written)
MAX_PIXELS = 50_000_000  # resolution_too_high: "maximum supported input resolution is 50 megapixels"
RATE_LIMIT = 500  # images a minute at 1 MP, weighted by megapixels (remove.bg's API reference, "Rate Limit")


def error(status: int, title: str, code: str, detail: str = "", headers: dict[str, str] | None = None) -> Reply:
    """remove.bg's documented error shape, {"errors": [{"title", "code", "detail"}]}; every error status is
    documented "(no credits charged)"."""
    item = {"title": title, "code": code, **({"detail": detail} if detail else {})}
    return Reply.json(status, {"errors": [item]}, headers)


class RemoveBgFake(FakeServer):
    """Fake remove.bg. Faults (op = removebg | account | *):
    insufficient-credits (402), rate-limit (429 with X-RateLimit-* and
    Retry-After if given), server-error (500, remove.bg's error shape),
    bad-gateway (502 HTML from a proxy), unknown-foreground (400), drop,
    slow, no-credits-header, not-image (200, bytes that are no image),
    json-200 (200 with a JSON body where an image was asked for).
    """

    FAULTS = frozenset(
        "insufficient-credits rate-limit server-error bad-gateway unknown-foreground drop slow "
        "no-credits-header not-image json-200".split()
    )

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        keys=(TEST_KEY,),
        credits: Decimal = Decimal(50),
        report: str | None = None,
        rate_limit: int = RATE_LIMIT,
        clock=time.time,
    ):
        """rate_limit: images a minute, weighted by megapixels as remove.bg counts them (`clock`: a test's)."""
        super().__init__(host, port)
        self.rate_limit, self.clock = rate_limit, clock
        self.window: list[tuple[float, int]] = []  # (time, weight) of the images of the last minute
        self.rate_limited = 0  # requests answered 429 for the weighted limit
        self.keys = set(keys)
        self.balance = credits
        self.report = report  # a misbehaving vendor: X-Credits-Charged as this text, whatever was charged
        self.credits_charged = Decimal(0)
        self.url_images: dict[str, bytes] = {}

    def handle(self, call: Call) -> Reply:
        op = {("POST", "/v1.0/removebg"): "removebg", ("GET", "/v1.0/account"): "account"}.get((call.method, call.path))
        if op is None:
            return error(404, "Not found", "not_found", f"{call.method} {call.path}")
        failed, fault = self.next_fault(op)
        if failed is not None:
            return failed
        if call.headers.get("x-api-key") not in self.keys:  # 403 AuthFailed, its example title "Missing API Key"
            title = "Missing API Key" if "x-api-key" not in call.headers else "Invalid API Key"
            return error(403, title, "auth_failed")
        if op == "account":  # GET /account: data.attributes.credits {total, subscription, payg, enterprise}, api
            credits = {"total": float(self.balance), "subscription": 0, "payg": float(self.balance), "enterprise": 0}
            return Reply.json(
                200, {"data": {"attributes": {"credits": credits, "api": {"free_calls": 0, "sizes": "all"}}}}
            )
        return self._remove(call, fault.kind if fault else "")

    def error_reply(self, fault: Fault) -> Reply | None:
        # Retry-After on a 429 is not documented (the fake sends it only when a test asks); the X-RateLimit-*
        # headers are the ones remove.bg's Ruby client reads (github.com/remove-bg/ruby, rate_limit_info.rb).
        retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.kind == "insufficient-credits":  # 402 "Insufficient credits (no credits charged)"
            return error(402, "Insufficient credits", "insufficient_credits")
        if fault.kind == "rate-limit":
            limits = {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + 60),
            }
            return error(429, "Rate limit exceeded", "rate_limit_exceeded", headers={**limits, **retry})
        if fault.kind == "server-error":  # 5xx is not documented: remove.bg's error shape, the fake's own code
            return error(500, "Internal server error", "internal_error")
        if fault.kind == "bad-gateway":
            return Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
        if fault.kind == "unknown-foreground":
            return error(400, "Could not identify foreground in image", "unknown_foreground")
        return None

    # --- the paid call -----------------------------------------------------------

    def _remove(self, call: Call, fault: str) -> Reply:
        fields = form_fields(call)
        if fields is None:
            return error(400, "Unsupported request", "invalid_request", "Send multipart/form-data, urlencoded or JSON.")
        source, failed = self._source(fields)
        if failed is not None:
            return failed
        values = {
            k: fields[k].text.strip().lower() if k in fields else ""
            for k in ("size", "type", "format", "channels", "bg_color", "crop")
        }
        size = SIZES.get(values["size"] or "preview")
        if size is None:
            return error(400, "Invalid size", "invalid_size", f"Unknown size {values['size']!r}.")
        for name, allowed in (("type", TYPES), ("format", FORMATS), ("channels", ("rgba", "alpha"))):
            if values[name] and values[name] not in allowed:
                return error(400, f"Invalid {name}", f"invalid_{name}", f"Unknown {name} {values[name]!r}.")
        colour = _colour(values["bg_color"]) if values["bg_color"] else None
        if values["bg_color"] and colour is None:
            return error(400, "Invalid bg_color", "invalid_bg_color")
        if values["crop"] not in ("", "true", "false", "1", "0"):
            return error(400, "Invalid crop", "invalid_crop")
        assert source is not None
        rgb = read_image(source)
        if rgb is None:
            return error(400, "Failed to read image", "failed_to_read_image")
        if rgb.width * rgb.height > MAX_PIXELS:
            detail = (
                f"Input image has {rgb.width * rgb.height / 1e6:.0f} megapixels, "
                "maximum supported input resolution is 50 megapixels"
            )
            return error(400, "Image resolution too high", "resolution_too_high", detail)
        charged = (  # X-Credits-Charged: 0.25 for a preview, 1 for the full sizes ("credits per image" in `size`)
            Decimal("0.25")
            if size == "preview" or (size == "auto" and rgb.width * rgb.height <= PREVIEW_PIXELS)
            else Decimal(1)
        )
        if charged > self.balance:
            return error(402, "Insufficient credits", "insufficient_credits")
        weight = megapixel_weight(rgb.width, rgb.height)
        with self._lock:
            now = self.clock()
            self.window = [(t, w) for t, w in self.window if t > now - 60]
            used = sum(w for _, w in self.window)
            if used + weight > self.rate_limit:
                self.rate_limited += 1
                reset = {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": str(int(self.window[0][0] + 60))}  # fmt: skip
                return error(429, "Rate limit exceeded", "rate_limit_exceeded", headers=reset)
            self.window.append((now, weight))
            remaining = self.rate_limit - used - weight
        body, mime, out = self._render(rgb, size, values, colour, call.headers.get("accept", ""), fault)
        self.balance -= charged
        self.credits_charged += charged
        headers = {  # the 200's documented headers: X-Credits-Charged, X-Width, X-Height, X-Type (+ rate limits)
            "Content-Type": mime,
            "X-Width": str(out.width),
            "X-Height": str(out.height),
            "X-Type": values["type"] if values["type"] not in ("", "auto") else "product",
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(self.clock()) + 60),
        }
        if fault != "no-credits-header":
            headers["X-Credits-Charged"] = f"{charged:g}" if self.report is None else self.report
        return Reply(200, body, headers)

    def _source(self, fields) -> tuple[bytes | None, Reply | None]:
        given = [name for name in ("image_file", "image_file_b64", "image_url") if name in fields]
        if not given:
            return None, error(400, "No image given", "missing_source")
        if len(given) > 1:
            return None, error(400, "Multiple image sources given", "multiple_sources")
        part = fields[given[0]]
        if given[0] == "image_url":
            found = self.url_images.get(part.text.strip())
            if found is None:
                return None, error(400, "Failed to download image", "failed_image_download")
            data = found
        elif given[0] == "image_file_b64":
            try:
                data = base64.b64decode(part.data, validate=True)
            except ValueError:
                return None, error(400, "Failed to read image", "failed_to_read_image")
        else:
            data = part.data
        if len(data) > MAX_FILE:
            return None, error(400, "File too large", "file_too_large", "File exceeds limit of 12MB")
        return data, None

    def _render(
        self, rgb: Image.Image, size: str, values: dict, colour, accept: str, fault: str
    ) -> tuple[bytes, str, Image.Image]:
        fmt = values["format"] or "auto"
        limit = (
            PREVIEW_PIXELS
            if size == "preview"
            else PNG_FULL_PIXELS
            if fmt in ("png", "auto")
            else MAX_PIXELS
            if size == "50mp"
            else FULL_PIXELS
        )
        if rgb.width * rgb.height > limit:
            scale = (limit / (rgb.width * rgb.height)) ** 0.5
            rgb = rgb.resize(
                (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))), Image.Resampling.BILINEAR
            )
        alpha = simple_matte(rgb)
        if values["crop"] in ("true", "1") and alpha.getbbox():
            box = alpha.getbbox()
            rgb, alpha = rgb.crop(box), alpha.crop(box)
        out: Image.Image = alpha if values["channels"] == "alpha" else cutout(rgb, alpha)
        if colour is not None and values["channels"] != "alpha":
            out = Image.alpha_composite(Image.new("RGBA", out.size, colour + (255,)), out.convert("RGBA"))
        if fault == "not-image":
            return b"GIF89a not really", "image/png", out
        if fault == "json-200" or "application/json" in accept:
            box = alpha.getbbox() or (0, 0, 0, 0)
            data = {
                "result_b64": base64.b64encode(encode(out, "PNG")).decode(),
                "foreground_top": box[1],
                "foreground_left": box[0],
                "foreground_width": box[2] - box[0],
                "foreground_height": box[3] - box[1],
            }
            return Reply.json(200, {"data": data}).body, "application/json", out
        if fmt == "zip":  # "ZIP format, contains color image and alpha matte image": color.jpg, alpha.png
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as archive:
                archive.writestr("color.jpg", encode(rgb, "JPEG"))
                archive.writestr("alpha.png", encode(alpha, "PNG"))
            return buf.getvalue(), "application/zip", out
        transparent = out.mode == "RGBA" and out.getchannel("A").getextrema()[0] < 255
        if fmt == "jpg" or (fmt == "auto" and not transparent and out.mode != "L"):
            return encode(out.convert("RGB"), "JPEG"), "image/jpeg", out
        return encode(out, "PNG"), "image/png", out


def megapixel_weight(width: int, height: int) -> int:
    """How much of the rate limit an image uses: its megapixels rounded up, at least one
    (remove.bg's API reference: 500 images a minute at 1 MP, 50 at 10 MP, 20 at 25 MP)."""
    return max(1, -(-width * height // 1_000_000))


def _colour(value: str) -> tuple[int, int, int] | None:
    if value in COLOURS:
        return COLOURS[value]
    text = value.lstrip("#")
    if not re.fullmatch(r"[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8}", text):
        return None
    if len(text) in (3, 4):
        text = "".join(c * 2 for c in text)
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def main(argv=None) -> None:
    serve_forever(RemoveBgFake, "Fake remove.bg API (POST /v1.0/removebg)", argv)


if __name__ == "__main__":
    main()
