"""Every value a visitor sends to a handler, type-checked in one place.

The page's widgets only send what they hold, but the same handlers answer
raw API calls, gradio_client, MCP and REST, where any JSON value can arrive
in any slot: a list for the provider, NaN for a count, "inf" for a seed.
Handlers then read them with str/int/float conversions that were written
for the widgets' values. `check()` runs before a handler (app.py's
readable_errors, rest.py's work) and refuses a value of the wrong kind with
a sentence naming the field, so no conversion deeper in can raise a
TypeError, ValueError or OverflowError.

Only the kind is checked here; the meaning (a known provider, a colour that
parses, a margin in range) stays with the code that owns it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..errors import InvalidRequestError

MAX_TEXT = 10_000  # characters in any one text field (a prompt is the longest)


def _text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be text, got {_kind(value)}.")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise InvalidRequestError(f"{name} is too long ({len(value)} characters; at most {MAX_TEXT}).")


def _number(value: object) -> float | None:
    """A finite number from a number or its text; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _whole(low: int, high: int, blank_ok: bool = True, said: str = "") -> Callable[[str, object], None]:
    """A whole number low..high (its text too); `said`: the message, if not the generic one."""

    def check_whole(name: str, value: object) -> None:
        if value is None or (blank_ok and isinstance(value, str) and not value.strip()):
            return
        number = _number(value)
        if number is None or number != int(number) or not low <= number <= high:
            raise InvalidRequestError(
                (said or f"{name} must be a whole number from {low} to {high}, got {{}}.").format(
                    repr(str(value)[:40]) if said else _shown(value)
                )
            )

    return check_whole


VOLUME = "Images per month must be a whole number (0 or more), got {}."
SEED = "The seed must be a whole number 0..2147483647, got {}."


def _flag(name: str, value: object) -> None:
    if isinstance(value, str):
        if len(value) <= 10:  # "true", "false", "yes", ...: read by look.flag
            return
    elif value is None or isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return
    raise InvalidRequestError(f"{name} must be true or false, got {_shown(value)}.")


def _size(name: str, value: object) -> None:
    """A margin or canvas: text such as "10%", or a finite number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if _number(value) is None:
            raise InvalidRequestError(f"{name} must be a size such as '10%' or '40px', got {_shown(value)}.")
        return
    _text(name, value)


def _texts(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 200 for v in value):
        raise InvalidRequestError(f"{name} must be a list of provider names, got {_kind(value)}.")
    if len(value) > 50:
        raise InvalidRequestError(f"{name} names {len(value)} providers; at most 50.")


CHECKS: dict[str, Callable[[str, object], None]] = {
    **{
        n: _text
        for n in (
            "provider",
            "background",
            "colour",
            "format",
            "align",
            "prompt",
            "negative_prompt",
            "fal_key",
            "runware_key",
            "removebg_key",
            "photoroom_key",
            "points",
            "box",
            "url",
            "a",
            "b",
            "text",
        )
    },
    **{n: _flag for n in ("mask_only", "refine_edges", "clean_edges", "crop", "vitmatte", "fast")},
    **{n: _size for n in ("margin", "canvas")},
    "monthly_volume": _whole(0, 1_000_000_000, said=VOLUME),
    "volume": _whole(0, 1_000_000_000, said=VOLUME),
    "num_images": _whole(1, 4, blank_ok=False),
    "seed": _whole(0, 2_147_483_647, said=SEED),
    "providers": _texts,
}


def check(values: Mapping[str, object]) -> None:
    """Refuse the first value whose kind is wrong for its field (fields not
    listed here, such as images and session state, are checked where used)."""
    for name, value in values.items():
        if (checker := CHECKS.get(name)) is not None:
            checker(name, value)


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
