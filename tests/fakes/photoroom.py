"""A fake Photoroom Remove Background API ("Basic" plan).

  POST /v1/segment   multipart: image_file (required), format (png | jpg |
                     webp), channels (rgba | alpha), bg_color, size (preview |
                     medium | hd | full), crop, despill -> the result's bytes

Auth: `x-api-key` in KEYS, else 403. Errors are JSON; the 402 body is the
documented {"error": {"detail": "API credits exhausted. ..."}}, the others
(undocumented) use the same shape. Billing as documented: each successful
call consumes one image credit, counted in `.images_billed`; a call that ends
in an error consumes none.

Run alone: python -m tests.fakes.photoroom --port 8768  (key: pr-test-key)
"""

from __future__ import annotations

import re

from PIL import Image

from .common import Call, FakeServer, Fault, Reply, cutout, encode, form_fields, read_image, serve_forever, simple_matte

TEST_KEY = "pr-test-key"
SIZES = {"preview": 250_000, "medium": 1_500_000, "hd": 4_000_000, "full": 25_000_000}
FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
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

    def __init__(self, host="127.0.0.1", port=0, *, keys=(TEST_KEY,), credits: int = 100):
        super().__init__(host, port)
        self.keys = set(keys)
        self.balance = credits
        self.images_billed = 0

    def handle(self, call: Call) -> Reply:
        if (call.method, call.path) != ("POST", "/v1/segment"):
            return error(404, f"{call.method} {call.path} not found")
        failed, fault = self.next_fault("segment")
        if failed is not None:
            return failed
        if call.headers.get("x-api-key") not in self.keys:
            return error(403, "Invalid API key")
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
        if self.balance <= 0:
            return error(402, EXHAUSTED)
        body, mime = self._render(rgb, SIZES[size], fmt, values, kind)
        self.balance -= 1
        self.images_billed += 1
        return Reply(200, body, {"Content-Type": mime})

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

    def _render(self, rgb: Image.Image, limit: int, fmt: str, values: dict, fault: str) -> tuple[bytes, str]:
        if rgb.width * rgb.height > limit:
            scale = (limit / (rgb.width * rgb.height)) ** 0.5
            rgb = rgb.resize(
                (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))), Image.Resampling.BILINEAR
            )
        alpha = simple_matte(rgb)
        if values["crop"] == "true" and alpha.getbbox():
            rgb, alpha = rgb.crop(alpha.getbbox()), alpha.crop(alpha.getbbox())
        out: Image.Image = alpha if values["channels"] == "alpha" else cutout(rgb, alpha)
        if fault == "not-image":
            return b"not an image at all", "image/png"
        if fault == "json-200":
            return b'{"result": "see elsewhere"}', "application/json"
        pil, mime = FORMATS[fmt]
        return encode(out if pil != "JPEG" else out.convert("RGB"), pil), mime


def main(argv=None) -> None:
    serve_forever(PhotoroomFake, "Fake Photoroom Remove Background API (POST /v1/segment)", argv)


if __name__ == "__main__":
    main()
