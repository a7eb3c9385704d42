"""The fake fal's `fal-ai/bria/background/replace` model: input checks and outputs.

Input (fal's API page for the endpoint; docs/providers.md): image_url
(required), ref_image_url ("" = none), prompt, negative_prompt (""),
refine_prompt (true), seed (0..2147483647), num_images (1..4), sync_mode
(false), original_quality (false: the output is scaled to about 1 MP, as
Bria V2 on fal does; true: the input's size). `fast` is gone (deprecated in
Bria V2, ignored by fal): the fake refuses it, so the client never sends it. Either prompt or ref_image_url, not both.
Output: {"images": [Image, ...], "seed": int}.

Validation answers like fal's model errors (422, {"detail": [{loc, msg,
type}]}, pydantic v2 wording). One deliberate difference: unknown fields are
refused (`extra_forbidden`), so a typo in our client shows up in the tests
instead of being silently ignored.

Generated images are deterministic: the input's subject (tests.fakes.common.
simple_matte) over a flat tint that depends on the prompt (or the reference
image's mean colour), the seed and the image's index. `expected_image()`
computes the same picture for tests.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from .common import decode_image_input, simple_matte

SEED_MAX = 2_147_483_647
FAKE_SEED = 1_234_567  # what the fake "draws" when no seed is sent
ONE_MP = 1024 * 1024  # Bria V2's output size without original_quality
FIELDS = {
    "image_url",
    "ref_image_url",
    "prompt",
    "negative_prompt",
    "refine_prompt",
    "seed",
    "original_quality",
    "num_images",
    "sync_mode",
}


def _error(loc: list, msg: str, kind: str) -> dict:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _typed(body: dict, name: str, kind: type, type_name: str) -> list[dict]:
    value = body.get(name)
    if name not in body or (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        return []
    return [_error([name], f"Input should be a valid {type_name}", f"{type_name}_type")]


def _ranged(body: dict, name: str, low: int, high: int) -> list[dict]:
    if name not in body:
        return []
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        return [_error([name], "Input should be a valid integer", "int_type")]
    if value < low:
        return [_error([name], f"Input should be greater than or equal to {low}", "greater_than_equal")]
    if value > high:
        return [_error([name], f"Input should be less than or equal to {high}", "less_than_equal")]
    return []


def check(body) -> tuple[list[dict], Image.Image | None, Image.Image | None]:
    """(validation errors, input image, reference image or None)."""
    if not isinstance(body, dict):
        return [_error([], "Input should be a valid dictionary", "model_type")], None, None
    errors = [
        _error([name], "Extra inputs are not permitted", "extra_forbidden") for name in sorted(set(body) - FIELDS)
    ]
    for name in ("image_url", "ref_image_url", "prompt", "negative_prompt"):
        errors += _typed(body, name, str, "string")
    for name in ("refine_prompt", "original_quality", "sync_mode"):
        errors += _typed(body, name, bool, "boolean")
    errors += _ranged(body, "seed", 0, SEED_MAX) + _ranged(body, "num_images", 1, 4)
    if "image_url" not in body:
        errors.append(_error(["image_url"], "Field required", "missing"))
    if errors:
        return errors, None, None
    prompt, ref_url = body.get("prompt") or "", body.get("ref_image_url") or ""
    if bool(prompt.strip()) == bool(ref_url):
        return [_error([], "Either ref_image_url or prompt has to be provided but not both", "value_error")], None, None
    image = decode_image_input(body["image_url"]) if body["image_url"].startswith("data:") else None
    if image is None:
        return [_error(["image_url"], "Could not load the image", "image_load_error")], None, None
    ref = None
    if ref_url:
        ref = decode_image_input(ref_url) if ref_url.startswith("data:") else None
        if ref is None:
            return [_error(["ref_image_url"], "Could not load the image", "image_load_error")], None, None
    return [], image, ref


def tint(prompt: str, ref: Image.Image | None, seed: int, index: int) -> tuple[int, int, int]:
    """The flat background colour of generated image `index` (0-based)."""
    if ref is not None:
        base = [int(v) for v in np.asarray(ref.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)]
    else:
        code = zlib.crc32(prompt.encode("utf-8"))
        base = [code & 255, (code >> 8) & 255, (code >> 16) & 255]
    shift = (seed * 7 + index * 53) % 256
    r, g, b = ((value + shift * (1 + i)) % 256 for i, value in enumerate(base))
    return r, g, b


def expected_image(
    rgb: Image.Image, prompt: str = "", ref: Image.Image | None = None, seed: int = FAKE_SEED, index: int = 0
) -> Image.Image:
    """What the fake generates: the subject kept, the background a flat tint."""
    alpha = np.asarray(simple_matte(rgb), dtype=np.float64)[..., None] / 255.0
    colour = np.array(tint(prompt, ref, seed, index), dtype=np.float64)
    out = np.asarray(rgb.convert("RGB"), dtype=np.float64) * alpha + colour * (1.0 - alpha)
    return Image.fromarray(np.clip(out.round(), 0, 255).astype(np.uint8), "RGB")


def outputs(body: dict, image: Image.Image, ref: Image.Image | None) -> tuple[int, list[Image.Image]]:
    """(seed used, the generated images) for a checked request."""
    seed = body["seed"] if "seed" in body else FAKE_SEED
    prompt = body.get("prompt") or ""
    count = body.get("num_images", 1)
    made = [expected_image(image, prompt.strip(), ref, seed, k) for k in range(count)]
    if not body.get("original_quality", False) and image.width * image.height > ONE_MP:
        scale = (ONE_MP / (image.width * image.height)) ** 0.5
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        made = [generated.resize(size, Image.Resampling.BILINEAR) for generated in made]
    return seed, made
