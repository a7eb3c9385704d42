"""The "AI background" tab: fal's Bria background replace, under the same
key rules and spending caps as removal.

Order of a request: every argument and both images are checked, the key is
chosen (the visitor's, or the server's where allowed), then the estimated
price (price per image x number of images) is reserved against the session
and daily caps, and only then is anything sent. Afterwards the hold is
settled with the request's cost, released only when the request was not
sent or refused, and counted in full when fal accepted it or its fate is
unknown (rmbg.money.charging).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidRequestError
from ...image.io import load_image
from ...replace import DEFAULT_REPLACER, replace_estimate, run_replacer
from ...types import ReplaceRequest, check_replace_args
from ...wording import number_text
from ..catalog import Keys, build_replacer, close
from ..context import App
from ..inputs import require_image
from ..look import safe_stem, stem_of
from ..spending import hosted_text


@dataclass(frozen=True)
class Replaced:
    """What the tab shows: the generated files, the seed and the cost line."""

    files: list[Path]
    seed: int | None
    line: str


def seed_of(value) -> int | None:
    """The seed box: empty = none (the provider picks); a whole number otherwise
    (range checked with the other arguments)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    typed = number_text("Seed", value, InvalidRequestError) if isinstance(value, str) else value
    try:
        number = float(typed)
    except (TypeError, ValueError):
        number = float("nan")
    if number != number or number != int(number):
        raise InvalidRequestError(f"The seed must be a whole number 0..2147483647, got {str(value)[:40]!r}.")
    return int(number)


def replace(
    image,
    prompt,
    ref_image,
    negative_prompt,
    seed,
    num_images,
    keys: Keys,
    app: App,
    *,
    session_id: str = "local",
    provider_id: str = DEFAULT_REPLACER,
) -> Replaced:
    """One AI background request from the page; raises an RmbgError with a
    message for a person (nothing sent when the request is wrong)."""
    require_image(image)
    prompt = prompt if (prompt or "").strip() else None
    count = int(num_images) if isinstance(num_images, (int, float)) and num_images == int(num_images) else num_images
    check_replace_args(prompt, bool(ref_image), negative_prompt or "", seed_of(seed), count, True)
    rgb = load_image(image).rgb
    ref = load_image(ref_image).rgb if ref_image else None
    request = ReplaceRequest(prompt, ref, negative_prompt or "", seed_of(seed), count, True)
    replacer = build_replacer(provider_id, keys, app.config)
    estimate = replace_estimate(count, provider_id)
    try:
        payer = app.ledger.payer(session_id, server_key=not keys.for_provider(provider_id))
        unit = f"for {count} generated image{'s' if count != 1 else ''}"
        payment = payer.payment(provider_id, estimate.usd, unit=unit)
        result = payer.pay(payment, lambda: run_replacer(rgb, request, replacer), lambda done: done.cost.usd)
    finally:
        close(replacer)
    files = [
        app.store.write(f"{safe_stem(stem_of(image))}-ai-{n}.png", result.encode(n - 1))
        for n in range(1, len(result.images) + 1)
    ]
    spent = app.ledger.session_spent(session_id)
    line = (
        f"**{getattr(replacer, 'label', provider_id)}** · {result.seconds:.1f} s · "
        f"{len(result.images)} image{'s' if len(result.images) != 1 else ''}: {result.cost.label()}"
        f" · seed {result.seed if result.seed is not None else 'not reported'}"
        f" · {hosted_text(spent, app.config.cap_usd)}"
    )
    return Replaced(files, result.seed, line)
