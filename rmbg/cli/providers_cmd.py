"""`rmbg providers`: every declared provider and replacer with its state, price and licence, then
the default and why (the one place the CLI says the default's whole reason without --verbose)."""

from __future__ import annotations

from typing import TextIO

from ..defaults import default_provider
from ..errors import LicenceError, RmbgError
from ..registry import get_provider, get_replacer
from ..types import format_usd


def cmd_providers(args, out: TextIO, err: TextIO) -> int:
    """One row per declared provider and replacer (rmbg.registry) with its licence, then the default
    and why; under RMBG_COMMERCIAL_ONLY=1 the ones it refuses are listed as refused, with the reason."""
    from ..licences import SETTING, commercial_only
    from ..money.pricing import hourly_rate
    from ..registry import declarations

    local_price = f"compute estimate (CPU ${hourly_rate('cpu')}/h, GPU ${hourly_rate('cuda')}/h)"
    rows = [("provider", "kind", "state", "price", "download", "licence", "note")]
    for declared in declarations():
        kind: str = declared.kind
        state: str
        try:
            built = _built(declared)
            status = built.status()
            kind, state, note = declared.kind if declared.kind == "video" else built.kind, status.state, status.message
            cost = built.estimate()
            unit = {"replace": "generated image", "video": "s of video"}.get(kind, "image")
            price = local_price if kind == "local" else f"${format_usd(cost.usd)}/{unit} ({cost.note or cost.source})"
        except LicenceError as exc:
            state, price, note = "refused", "-", exc.remedy.situation if exc.remedy else str(exc)
        except (RmbgError, ImportError) as exc:
            state, price, note = "unavailable", "?", str(exc)
        link = f" ({declared.licence.link})" if declared.licence.link else ""
        note += f" · licence: {declared.licence}{link}"
        rows.append((declared.id, kind, state, price, declared.download or "-", declared.licence.short, note))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:6], widths)) + "  " + row[6], file=out)
    default_id, reason = default_provider()
    print(f"\ndefault: {default_id} ({reason})", file=out)
    if commercial_only():
        print(f"{SETTING}=1: the providers whose licence does not allow commercial use are refused.", file=out)
    return 0


def _built(declared):
    """The provider a declaration builds (no network): a removal provider, a replacer or a video service."""
    if declared.kind == "video":
        from ..video.providers import get_video_provider

        return get_video_provider(declared.id)
    return get_replacer(declared.id) if declared.kind == "replace" else get_provider(declared.id)
